"""An HL7 v2 visit (ADT^A04 + MDM^T02 + DFT^P03) becomes a coded encounter and a valid 837P,
the way `rcm claim` codes and bills one offline (rcm/cli/main.py cmd_claim)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.billing.domain.chargemaster import load_sample_chargemaster
from services.billing.domain.claim import build_claim
from services.billing.domain.scrubber import load_sample_payer_rules, scrub
from services.billing.domain.x12_837 import build_837
from services.billing.handlers import claim_id_for
from services.coding.domain import engine
from services.intake.domain.hl7v2 import read_file
from shared import icd10cm
from tests.unit.intake_hl7v2.hl7v2_support import MESSAGES, registry, rules
from tests.x12_support import pyx12_validate


def claim_text(encounter) -> tuple[str, object]:
    result = engine.code_encounter(encounter)
    payload = result.to_payload(encounter, coded_by="auto")
    claim = build_claim(
        payload,
        claim_id=claim_id_for(encounter.encounter_id),
        chargemaster=load_sample_chargemaster(encounter.site_id),
    )
    findings = scrub(
        claim, is_billable=icd10cm.is_billable_on, payer_rules=load_sample_payer_rules()
    )
    assert findings == []
    batch = build_837(
        [claim], interchange_control_number=1, group_control_number=1, created_at=datetime.now(UTC)
    )
    return batch.text, result


@pytest.mark.parametrize("name", ["batch_v251.hl7", "visit_v23.hl7", "visit_v28.hl7"])
def test_hl7v2_visit_is_coded_and_billed(name):
    (visit,) = read_file((MESSAGES / name).read_bytes(), rules(), registry=registry()).visits
    assert visit.ready
    text, coded = claim_text(visit.encounter)
    # coded from the note: the sprain (the EHR's S93.401A confirmed), the E/M and the x-ray
    assert [d.code for d in coded.diagnoses] == ["S93401A"]
    assert [(p.code, p.modifiers) for p in coded.procedures] == [("99213", []), ("73610", ["RT"])]
    assert coded.route == "auto"
    ok, errors = pyx12_validate(text)
    assert ok, errors
    segments = text.split("~")
    assert "SBR*P*18*GRP-1200******CI" in segments  # Aster Health primary, the patient's own
    assert "SBR*S*01*GRP-4410******BL" in segments  # Blue Lakes secondary, the spouse's
    assert "NM1*IL*1*QUINLAN*RONAN****MI*BLX998877" in segments
    assert "REF*G1*PA-55821" in segments  # IN1-14 prior authorization of the primary
    assert "NM1*82*1*MARCHETTI*ELENA****XX*1538204672" in segments
    assert any(s.startswith("SV1*HC:73610:RT*") for s in segments)
    assert "HI*ABK:S93401A" in segments
