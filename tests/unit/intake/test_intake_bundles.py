"""Every input shape: Bundle types, several Encounters, single resources, NDJSON, BOMs."""

import base64
import json
from datetime import date

from services.intake.domain.fhir import IntakeError, parse_fhir, parse_intake
from tests.unit.intake.test_intake_references import DOC, ORG, PATIENT, bundle, entry, visit

ICD = "http://hl7.org/fhir/sid/icd-10-cm"


def note(rid, text, *, day=None, encounter=None):
    body = {
        "status": "current",
        "subject": {"reference": "Patient/p1"},
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain",
                    "data": base64.b64encode(text.encode()).decode(),
                }
            }
        ],
    }
    if day:
        body["date"] = f"{day}T10:00:00Z"
    if encounter:
        body["context"] = {"encounter": [{"reference": f"Encounter/{encounter}"}]}
    return entry("DocumentReference", rid, **body)


def condition(rid, code, *, encounter=None, recorded=None):
    body = {
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": ICD, "code": code}]},
    }
    if encounter:
        body["encounter"] = {"reference": f"Encounter/{encounter}"}
    if recorded:
        body["recordedDate"] = recorded
    return entry("Condition", rid, **body)


def two_visits():
    first = visit(period={"start": "2026-03-02T09:00:00Z", "end": "2026-03-02T09:30:00Z"})
    second = visit(period={"start": "2026-04-10T14:00:00Z"})
    second["resource"]["id"] = "e2"
    return [first, second]


def test_searchset_with_several_encounters_gives_one_encounter_each_with_its_own_resources():
    b = bundle(
        *two_visits(),
        PATIENT,
        ORG,
        DOC,
        condition("c1", "J06.9", encounter="e1"),
        condition("c2", "S93.401A", encounter="e2"),
        condition("c3", "E11.9", recorded="2026-04-10"),  # by patient and date
        condition("c4", "I10", recorded="2025-01-01"),  # no encounter that day
        note("n1", "first visit note", encounter="e1"),
        note("n2", "second visit note", day="2026-04-10"),
        btype="searchset",
    )
    result = parse_fhir(b)
    assert result.problems == []
    by_id = {pe.fhir_id: pe.encounter for pe in result.encounters}
    assert [(d.code) for d in by_id["e1"].diagnoses] == ["J06.9"]
    assert [(d.code) for d in by_id["e2"].diagnoses] == ["S93.401A", "E11.9"]
    assert by_id["e1"].note == "first visit note"
    assert by_id["e2"].note == "second visit note"
    assert by_id["e2"].service_date == date(2026, 4, 10)
    assert [pe.source for pe in result.encounters] == ["entry[0].resource", "entry[1].resource"]


def test_a_resource_that_fits_two_encounters_by_date_is_not_guessed():
    first, second = two_visits()
    second["resource"]["period"] = {"start": "2026-03-02T15:00:00Z"}
    result = parse_fhir(
        bundle(first, second, PATIENT, condition("c", "I10", recorded="2026-03-02"))
    )
    assert all(pe.encounter.diagnoses == [] for pe in result.encounters)
    assert [w.message for w in result.warnings] == [
        "fits several encounters by patient and date: not attached to any"
    ]


def test_an_encounter_without_a_date_is_refused_alone():
    first, second = two_visits()
    del second["resource"]["period"]
    result = parse_fhir(bundle(first, second, PATIENT))
    assert [pe.fhir_id for pe in result.encounters] == ["e1"]
    assert [p.as_dict() for p in result.problems] == [
        {
            "path": "entry[1].resource.period.start",
            "message": "required: the date of service (Encounter.period, or a dated note of this encounter)",
        }
    ]
    try:
        parse_intake(bundle(first, second, PATIENT))
    except IntakeError as e:
        assert e.errors[0]["path"] == "entry[1].resource.period.start"
    else:
        raise AssertionError("parse_intake takes one encounter or raises")


def test_date_of_service_from_the_note_then_from_a_care_event():
    enc = visit()
    del enc["resource"]["period"]
    pe = parse_fhir(
        bundle(enc, PATIENT, note("n", "seen today", day="2026-05-05", encounter="e1"))
    ).encounters[0]
    assert pe.encounter.service_date == date(2026, 5, 5)
    shot = entry(
        "Immunization",
        "i",
        encounter={"reference": "Encounter/e1"},
        occurrenceDateTime="2026-06-01T08:00:00Z",
    )
    pe = parse_fhir(bundle(enc, PATIENT, shot)).encounters[0]
    assert pe.encounter.service_date == date(2026, 6, 1)


def test_history_bundle_keeps_the_newest_version_and_skips_deletes():
    newest = visit(period={"start": "2026-03-03"})
    older = visit(period={"start": "2026-03-01"})
    gone = {"request": {"method": "DELETE", "url": "Condition/x"}}
    result = parse_fhir(bundle(newest, older, gone, PATIENT, btype="history"))
    assert [pe.encounter.service_date for pe in result.encounters] == [date(2026, 3, 3)]
    assert result.warnings == []


def test_document_bundle_with_a_composition():
    comp = entry(
        "Composition",
        "c",
        status="final",
        date="2026-03-02",
        encounter={"reference": "Encounter/e1"},
        section=[{"title": "Plan", "text": {"div": "<div>Rest &amp; fluids</div>"}}],
    )
    pe = parse_fhir(bundle(comp, visit(), PATIENT, ORG, DOC, btype="document")).encounters[0]
    assert pe.encounter.note == "Plan:\nRest & fluids"


def test_single_resource_ndjson_array_and_bom():
    enc = visit()["resource"]
    assert len(parse_fhir(enc).encounters) == 1
    ndjson = "\n".join(json.dumps(r) for r in (enc, PATIENT["resource"])) + "\n"
    pe = parse_fhir(ndjson.encode()).encounters[0]
    assert pe.encounter.patient.last_name == "Okafor" and pe.source == "line[1]"
    assert len(parse_fhir([enc, PATIENT["resource"]]).encounters) == 1
    with_bom = b"\xef\xbb\xbf" + json.dumps(bundle(visit(), PATIENT)).encode()
    assert parse_intake(with_bom).patient.first_name == "Ada"


def test_r5_style_arrays_and_nested_bundles():
    enc = visit(
        **{
            "class": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                            "code": "EMER",
                        }
                    ]
                }
            ]
        }
    )
    inner = bundle(enc, PATIENT)
    outer = bundle({"resource": inner}, btype="searchset")
    pe = parse_fhir(outer).encounters[0]
    assert pe.encounter.encounter_class == "EMER" and pe.encounter.place_of_service == "23"
    assert pe.source == "entry[0].resource.entry[0].resource"
    r5 = visit(actualPeriod={"start": "2026-07-01T10:00:00Z"})
    del r5["resource"]["period"]
    assert parse_fhir(bundle(r5, PATIENT)).encounters[0].encounter.service_date == date(2026, 7, 1)


def test_no_encounter_and_not_fhir_are_refused():
    assert [p.as_dict() for p in parse_fhir(bundle(PATIENT, btype="batch-response")).problems] == [
        {"path": "entry", "message": "expected an Encounter resource; none found"}
    ]
    assert parse_fhir(b"\xff\xfe\x00garbage").problems[0].path == "$"
    assert parse_fhir("not json at all").problems[0].message.startswith("expected JSON text")
    assert parse_fhir(b"\x80\x81").problems[0].message == "expected UTF-8 text"


def test_a_cancelled_encounter_is_refused():
    result = parse_fhir(bundle(visit(status="entered-in-error"), PATIENT))
    assert result.encounters == [] and result.problems[0].path == "entry[0].resource.status"
