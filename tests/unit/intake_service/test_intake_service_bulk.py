"""Bulk NDJSON lines: what each is, what it is filed under, how a group becomes a Bundle."""

from __future__ import annotations

import json

from services.intake.domain.bulk import (
    Bad,
    Skipped,
    assemble,
    conditional,
    keys_of,
    parse_reference,
    read_line,
    references_in,
)

UUID = "3f6fd0bb-6cd3-eb3f-4401-cd38ace25f2b"


def line(resource: dict) -> bytes:
    return json.dumps(resource).encode() + b"\n"


def test_types_billing_never_reads_are_skipped_without_being_decoded():
    # Not valid JSON after the type: only a skip that never decodes can pass it.
    raw = b'{"resourceType": "Observation", "id": "o1", "value": <not json>}\n'
    assert read_line(raw, "Observation.ndjson:1") == Skipped("Observation")


def test_a_line_with_a_nested_resource_type_is_decoded_before_it_is_skipped():
    raw = line(
        {
            "resourceType": "Observation",
            "id": "o1",
            "contained": [{"resourceType": "Patient", "id": "p"}],
        }
    )
    assert read_line(raw, "x:1") == Skipped("Observation")
    enc = line(
        {
            "contained": [{"resourceType": "Observation", "id": "o"}],
            "resourceType": "Encounter",
            "id": "e1",
        }
    )
    keys, res = read_line(enc, "x:2")
    assert keys.rtype == "Encounter" and res["id"] == "e1"


def test_bad_lines_name_the_file_and_line_never_the_value():
    secret = b'{"resourceType": "Patient", "name": "Zqx Secret'
    got = read_line(secret, "Patient.ndjson:7")
    assert got == Bad("Patient.ndjson:7", "expected one JSON resource on the line")
    assert read_line(b"[1, 2]", "f:1") == Bad("f:1", "expected a JSON object")
    assert read_line(b'{"id": "x"}', "f:2") == Bad("f:2", "expected a resourceType")
    assert read_line(b'{"resourceType": "Patient"}', "f:3") == Bad(
        "f:3", "expected an id on the Patient"
    )
    assert read_line(b"  \n", "f:4") is None
    assert read_line(b"\xff\xfe{", "f:5") == Bad("f:5", "expected one JSON resource on the line")


def test_keys_of_a_grouped_resource():
    cond = {
        "resourceType": "Condition",
        "id": "c1",
        "subject": {"reference": "Patient/p1"},
        "encounter": {"reference": "Encounter/e1"},
        "recordedDate": "2024-03-02T10:00:00Z",
    }
    k = keys_of(cond)
    assert (k.rtype, k.rid, k.patient, k.encounters, k.day) == (
        "Condition",
        "c1",
        "p1",
        ("e1",),
        "2024-03-02",
    )
    doc = {
        "resourceType": "DocumentReference",
        "id": "d1",
        "subject": {"reference": f"urn:uuid:{UUID}"},
        "context": {
            "encounter": [{"reference": "Encounter/e1"}, {"reference": "Encounter/e2"}],
            "period": {"start": "2024-03-01"},
        },
    }
    k = keys_of(doc)
    assert k.patient == UUID and k.encounters == ("e1", "e2") and k.day == "2024-03-01"
    claim = {
        "resourceType": "Claim",
        "id": "cl",
        "patient": {"reference": "Patient/p1"},
        "item": [
            {"encounter": [{"reference": "Encounter/e1"}]},
            {"encounter": [{"reference": "Encounter/e1"}]},
        ],
        "billablePeriod": {"start": "2024-03-01T09:00:00Z"},
    }
    assert keys_of(claim).encounters == ("e1",)


def test_keys_of_an_encounter_coverage_and_shared_resources():
    enc = {
        "resourceType": "Encounter",
        "id": "e1",
        "subject": {"reference": "Patient/p1"},
        "period": {"start": "2024-03-01T09:00:00Z", "end": "2024-03-03T09:00:00Z"},
        "partOf": {"reference": "Encounter/e0"},
    }
    k = keys_of(enc)
    assert (k.patient, k.encounters, k.day, k.end_day) == ("p1", (), "2024-03-01", "2024-03-03")
    cov = {"resourceType": "Coverage", "id": "cv", "beneficiary": {"reference": "Patient/p1"}}
    assert keys_of(cov).patient == "p1"
    org = {
        "resourceType": "Organization",
        "id": "o1",
        "identifier": [
            {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1245873900"},
            {"value": "no system"},
            "junk",
        ],
    }
    assert keys_of(org).identifiers == (("http://hl7.org/fhir/sid/us-npi", "1245873900"),)
    assert keys_of({"resourceType": "Patient", "id": "p9"}).patient == "p9"
    # Ends default to the start: a one-day encounter.
    one = keys_of({"resourceType": "Encounter", "id": "e", "period": {"start": "2024-01-05"}})
    assert one.end_day == "2024-01-05"


def test_reference_forms():
    assert parse_reference("Patient/p1") == ("Patient", "p1")
    assert parse_reference("https://ehr.example/fhir/Patient/p1/_history/3") == ("Patient", "p1")
    assert parse_reference(f"urn:uuid:{UUID}") == (None, UUID)
    assert parse_reference("urn:uuid:not-a-uuid") is None
    assert parse_reference("#contained") is None
    assert parse_reference("Organization?identifier=sys|1") is None
    assert conditional(
        "Organization?identifier=https://github.com/synthetichealth/synthea|abc"
    ) == (
        "Organization",
        "https://github.com/synthetichealth/synthea",
        "abc",
    )
    assert conditional("Organization?name=x") is None
    assert conditional("Patient/p1") is None


def test_references_in_finds_every_reference_and_binary_urls():
    body = json.dumps(
        {
            "resourceType": "DocumentReference",
            "id": "d",
            "author": [{"reference": 'Practitioner?identifier=http://x|a"b'}],
            "content": [
                {"attachment": {"url": "Binary/b1"}},
                {"attachment": {"url": "https://x/y.pdf"}},
            ],
            "contained": [
                {
                    "resourceType": "Organization",
                    "id": "o",
                    "partOf": {"reference": "Organization/o2"},
                }
            ],
        }
    )
    assert references_in(body) == [
        'Practitioner?identifier=http://x|a"b',
        "Organization/o2",
        "Binary/b1",
    ]


def test_assemble_gives_uuid_ids_their_full_url():
    text = assemble(
        [
            (UUID, '{"resourceType":"Patient","id":"' + UUID + '"}'),
            ("e1", '{"resourceType":"Encounter","id":"e1"}'),
        ]
    )
    bundle = json.loads(text)
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    assert bundle["entry"][0]["fullUrl"] == f"urn:uuid:{UUID}"
    assert "fullUrl" not in bundle["entry"][1]
    assert [e["resource"]["id"] for e in bundle["entry"]] == [UUID, "e1"]
