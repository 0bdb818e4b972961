"""Per-note and per-encounter size limits at intake (issue 18, item 5): a note or encounter
above its limit is named with its size, never its content; everything else passes."""

from __future__ import annotations

import copy
import json

from services.intake.limits import IntakeLimits, oversized
from services.intake.mapping import parse
from tests.integration.pipeline_support import RECENT

MARKER = "ZQXNOTEMARKER"


def _native(eid: str, note: str | None) -> dict:
    return {
        "encounter_id": eid,
        "site_id": "north-clinic",
        "service_date": RECENT.isoformat(),
        "visit_type": "established",
        "billing_provider": {
            "name": "QA Clinic",
            "npi": "1234567893",
            "tax_id": "123456789",
            "address": {
                "line1": "1 Main St",
                "city": "Columbus",
                "state": "OH",
                "postal_code": "432151407",
            },
        },
        "patient": {
            "first_name": "Ada",
            "last_name": "Limit",
            "birth_date": "1980-02-03",
            "gender": "F",
        },
        "coverages": [{"payer_id": "AETNA1", "payer_name": "Aster", "member_id": "M-1"}],
        "note": note,
    }


def _parsed(*bodies: dict):
    encounters = []
    for b in bodies:
        mapped = parse(json.dumps(b).encode())
        assert mapped.encounters, mapped.problems
        encounters += mapped.encounters
    return encounters


def test_a_note_above_the_limit_is_named_with_its_size_only():
    limits = IntakeLimits(max_note_bytes=4096, max_encounter_bytes=64 * 1024)
    small = _native("E-1", "Sore throat. " * 100)
    big = _native("E-2", MARKER + "é" * 3000)  # 2 bytes a character in UTF-8: 6013 bytes
    problems = oversized(_parsed(small, big), limits)
    assert problems == [
        {
            "path": "encounters[1].note",
            "message": "the note is 6013 bytes; at most 4096 (RCM_INTAKE_MAX_NOTE_BYTES)",
        }
    ]
    assert MARKER not in json.dumps(problems)


def test_an_encounter_above_its_limit_with_a_note_that_fits():
    limits = IntakeLimits(max_note_bytes=4096, max_encounter_bytes=8192)
    body = _native("E-3", "x" * 4000)
    body["coverages"] = [
        copy.deepcopy(body["coverages"][0]) | {"member_id": f"M-{i}"} for i in range(60)
    ]
    [problem] = oversized(_parsed(body), limits)
    assert problem["path"] == "encounters[0]"
    assert problem["message"].endswith("at most 8192 (RCM_INTAKE_MAX_ENCOUNTER_BYTES)")


def test_defaults_and_the_environment(monkeypatch):
    assert IntakeLimits().max_note_bytes == 256 * 1024
    monkeypatch.setenv("RCM_INTAKE_MAX_NOTE_BYTES", "10000")
    assert IntakeLimits().max_note_bytes == 10000
    assert oversized(_parsed(_native("E-4", None)), IntakeLimits()) == []
