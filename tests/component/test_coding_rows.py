"""What coding stores for a documented encounter: coded at once, or queued for a coder without a final coding."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from services.coding.domain import engine
from services.coding.handlers import encounter_row
from services.intake.domain.fhir import parse_intake

VIGNETTE = (
    Path(__file__).resolve().parents[1] / "fixtures" / "vignettes" / "ed_ankle_sprain_right.json"
)
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def _row(threshold: Decimal):
    enc = parse_intake(json.loads(VIGNETTE.read_text()))
    result = engine.code_encounter(enc, threshold=threshold)
    return enc, encounter_row(enc, result, "{}", "[]", NOW)


def test_an_auto_coded_encounter_is_stored_coded_with_its_final_coding():
    enc, (row, payload) = _row(Decimal("0.80"))
    assert payload is not None and payload.coded_by == "auto"
    assert (row.status, row.route, row.coded_by, row.coded_at) == ("coded", "auto", "auto", NOW)
    final = json.loads(row.final_coding)
    assert "encounter" not in final  # the row holds the document already
    assert [d["code"] for d in final["diagnoses"]] == [d.code for d in payload.diagnoses]
    assert (row.encounter_id, row.site_id, row.service_date) == (
        enc.encounter_id,
        enc.site_id,
        enc.service_date,
    )


def test_an_encounter_for_review_waits_for_a_coder():
    _, (row, payload) = _row(Decimal("1.01"))  # no confidence reaches it
    assert payload is None
    assert (row.status, row.route, row.coded_by, row.final_coding, row.coded_at) == (
        "review",
        "review",
        None,
        None,
        None,
    )
