"""Staging a bulk export on disk and regrouping it: each Encounter with what belongs to it."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from services.intake.bulk_import import Summary, groups, ndjson_files, stage_files
from services.intake.staging import Staging
from tests.conftest import FIXTURES

REAL_NDJSON = FIXTURES / "realworld" / "fhir" / "ndjson"
SYNTHEA_ORG = "https://github.com/synthetichealth/synthea"
NPI = "http://hl7.org/fhir/sid/us-npi"


def _write(path: Path, resources: list[dict], gz: bool = False) -> None:
    text = "".join(json.dumps(r) + "\n" for r in resources)
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)


def _export(tmp_path: Path) -> Path:
    """Two patients: p1 with three encounters (two on one day), p2 with one."""
    d = tmp_path / "export"
    d.mkdir()
    org = {
        "resourceType": "Organization",
        "id": "org1",
        "identifier": [{"system": SYNTHEA_ORG, "value": "o-1"}],
    }
    payer = {"resourceType": "Organization", "id": "payer1", "name": "Aster Health"}
    doc_ = {
        "resourceType": "Practitioner",
        "id": "dr1",
        "identifier": [{"system": NPI, "value": "1538204672"}],
    }
    role = {
        "resourceType": "PractitionerRole",
        "id": "role1",
        "practitioner": {"reference": "Practitioner/dr1"},
    }
    unused = {"resourceType": "Organization", "id": "nobody-uses-me"}

    def enc(eid, patient, start, end=None, **extra):
        return {
            "resourceType": "Encounter",
            "id": eid,
            "subject": {"reference": f"Patient/{patient}"},
            "period": {"start": start, **({"end": end} if end else {})},
            "serviceProvider": {"reference": f"Organization?identifier={SYNTHEA_ORG}|o-1"},
            **extra,
        }

    encounters = [
        enc(
            "e1",
            "p1",
            "2024-03-01T09:00:00Z",
            "2024-03-03T10:00:00Z",
            participant=[
                {"individual": {"reference": f"Practitioner?identifier={NPI}|1538204672"}}
            ],
        ),
        enc("e2", "p1", "2024-05-10T09:00:00Z"),
        enc(
            "e3",
            "p1",
            "2024-05-10T15:00:00Z",
            participant=[{"individual": {"reference": "PractitionerRole/role1"}}],
        ),
        enc("e4", "p2", "2024-06-01T09:00:00Z"),
    ]
    conditions = [
        # linked by reference
        {
            "resourceType": "Condition",
            "id": "c1",
            "subject": {"reference": "Patient/p1"},
            "encounter": {"reference": "Encounter/e1"},
        },
        # unlinked, inside e1's dates: matched by date
        {
            "resourceType": "Condition",
            "id": "c2",
            "subject": {"reference": "Patient/p1"},
            "recordedDate": "2024-03-02",
        },
        # unlinked, on the day of e2 and e3: fits both, attached to neither
        {
            "resourceType": "Condition",
            "id": "c3",
            "subject": {"reference": "Patient/p1"},
            "recordedDate": "2024-05-10",
        },
        # names an encounter the export does not hold, on e4's day: matched by date
        {
            "resourceType": "Condition",
            "id": "c4",
            "subject": {"reference": "Patient/p2"},
            "encounter": {"reference": "Encounter/gone"},
            "onsetDateTime": "2024-06-01T08:00:00Z",
        },
        # p2 has one encounter: an undated unlinked condition is its
        {"resourceType": "Condition", "id": "c5", "subject": {"reference": "Patient/p2"}},
    ]
    docs = [
        {
            "resourceType": "DocumentReference",
            "id": "d1",
            "subject": {"reference": "Patient/p1"},
            "context": {"encounter": [{"reference": "Encounter/e2"}]},
            "content": [{"attachment": {"url": "Binary/b1"}}],
        },
    ]
    _write(d / "Organization.ndjson", [org, payer, unused])
    _write(d / "Practitioner.ndjson", [doc_])
    _write(d / "PractitionerRole.ndjson", [role])
    _write(
        d / "Patient.ndjson",
        [{"resourceType": "Patient", "id": "p1"}, {"resourceType": "Patient", "id": "p2"}],
    )
    _write(
        d / "Coverage.ndjson",
        [
            {
                "resourceType": "Coverage",
                "id": "cov1",
                "beneficiary": {"reference": "Patient/p1"},
                "payor": [{"reference": "Organization/payer1"}],
            },
        ],
    )
    _write(d / "Encounter.ndjson.gz", encounters, gz=True)
    _write(d / "Condition.ndjson", conditions)
    _write(d / "DocumentReference.ndjson", docs)
    _write(
        d / "Binary.ndjson", [{"resourceType": "Binary", "id": "b1", "contentType": "text/plain"}]
    )
    obs = [
        {"resourceType": "Observation", "id": f"o{i}", "encounter": {"reference": "Encounter/e1"}}
        for i in range(50)
    ]
    _write(d / "Observation.ndjson", obs)
    (d / "notes.txt").write_text("not an export file")
    return d


@pytest.fixture
def staged(tmp_path):
    files = ndjson_files([_export(tmp_path)])
    summary = Summary()
    staging = Staging(tmp_path / "staging.sqlite", batch=3)  # small batches: several flushes
    seen: list[int] = []
    stage_files(files, staging, summary, seen.append)
    yield staging, files, summary, seen
    staging.close()


def _ids(group) -> set[str]:
    return {f"{m.rtype}/{m.rid}" for m in group.members}


def test_every_encounter_gets_what_belongs_to_it(staged):
    staging, files, summary, _ = staged
    got = {g.members[0].rid: g for g in groups(staging, files)}
    assert list(got) == ["e1", "e2", "e3", "e4"]  # patient by patient, by date
    assert all(g.members[0].rtype == "Encounter" for g in got.values())
    assert _ids(got["e1"]) == {
        "Encounter/e1",
        "Patient/p1",
        "Coverage/cov1",
        "Organization/payer1",  # the coverage's payor, one reference further
        "Organization/org1",  # conditional reference, resolved by identifier
        "Practitioner/dr1",
        "Condition/c1",  # by reference
        "Condition/c2",  # by patient and date
    }
    assert _ids(got["e2"]) == {
        "Encounter/e2",
        "Patient/p1",
        "Coverage/cov1",
        "Organization/payer1",
        "Organization/org1",
        "DocumentReference/d1",
        "Binary/b1",
    }
    assert _ids(got["e3"]) == {
        "Encounter/e3",
        "Patient/p1",
        "Coverage/cov1",
        "Organization/payer1",
        "Organization/org1",
        "PractitionerRole/role1",
        "Practitioner/dr1",
    }  # c3 fits e2 and e3 by date: neither gets it
    assert _ids(got["e4"]) == {
        "Encounter/e4",
        "Patient/p2",
        "Organization/org1",
        "Condition/c4",
        "Condition/c5",
    }


def test_the_summary_counts_what_was_read(staged):
    staging, _, summary, seen = staged
    assert summary.files == 10 and summary.lines == 69
    assert summary.skipped == {"Observation": 50}
    assert summary.resources["Encounter"] == 4 and summary.resources["Condition"] == 5
    assert summary.unmatched == 1  # c4
    assert summary.bad_lines == 0 and summary.duplicates == 0
    assert seen[-1] == summary.bytes > 0
    assert staging.encounter_count() == 4


def test_a_group_locates_mapping_paths_in_the_export(staged):
    staging, files, _, _ = staged
    g = next(iter(groups(staging, files)))
    bundle = json.loads(g.bundle_text())
    assert bundle["entry"][0]["resource"]["id"] == "e1"
    assert (
        g.locate("entry[0].resource.period.start")
        == "Encounter.ndjson.gz:1 (Encounter/e1).period.start"
    )
    assert g.locate("entry[0].resource") == "Encounter.ndjson.gz:1 (Encounter/e1)"
    assert g.locate("$").startswith("Encounter.ndjson.gz:1 (Encounter/e1): $")


def test_repeated_ids_keep_the_first_and_bad_lines_are_listed(tmp_path):
    d = tmp_path / "x"
    d.mkdir()
    (d / "Patient.ndjson").write_text(
        '{"resourceType": "Patient", "id": "p1", "gender": "female"}\n'
        '{"resourceType": "Patient", "id": "p1", "gender": "male"}\n'
        '{"resourceType": "Patient", "name": "Zqx"}\n'
        "not json at all\n"
    )
    summary = Summary()
    staging = Staging(tmp_path / "s.sqlite")
    stage_files(ndjson_files([d]), staging, summary)
    assert summary.duplicates == 1 and summary.bad_lines == 2
    assert summary.examples == [
        {"path": "Patient.ndjson:3", "message": "expected an id on the Patient"},
        {"path": "Patient.ndjson:4", "message": "expected one JSON resource on the line"},
    ]
    assert "Zqx" not in json.dumps(summary.as_json())
    body = staging.db.execute("SELECT body FROM resource WHERE rid = 'p1'").fetchone()[0]
    assert '"female"' in body
    staging.close()


def test_files_and_directories(tmp_path):
    with pytest.raises(ValueError, match="no NDJSON files"):
        ndjson_files([tmp_path])
    with pytest.raises(ValueError, match="no such file"):
        ndjson_files([tmp_path / "missing"])
    f = tmp_path / "anything.txt"
    f.write_text("")
    assert ndjson_files([f]) == [f]


def test_the_real_exports_stage_and_hold_no_encounter(tmp_path):
    """pathling's Synthea Patient and Condition exports and fhir-data-pipes' patients (written
    by others): every line is read; their Conditions name Encounters the exports lack."""
    files = ndjson_files([REAL_NDJSON])
    assert len(files) == 5
    summary = Summary()
    staging = Staging(tmp_path / "s.sqlite")
    stage_files(files, staging, summary)
    assert summary.lines == 822 and summary.bad_lines == 0
    assert summary.resources == {"Patient": 112, "Condition": 710}
    assert summary.unmatched == 710
    assert list(groups(staging, files)) == []
    staging.close()
