"""`rcm eligibility FILE`, `rcm eligibility --read FILE.271` and `rcm claim FILE --after
ERA.835`, run offline on a sample encounter, the simulator's files and real ones."""

from __future__ import annotations

import argparse
import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from rcm.cli import eligibility_cmds
from rcm.cli.main import UserError, main
from rcm.simulation.payer.domain import (
    AdjudicationRules,
    FeeSchedule,
    PayeeInfo,
    PayerInfo,
    adjudicate,
    build_835,
    read_837,
)
from rcm.simulation.payer.domain.eligibility import EligibilityRules, decide
from rcm.simulation.payer.domain.read_270 import read_270
from rcm.simulation.payer.domain.write_271 import build_271
from rcm.simulation.samples import generate_samples
from shared.events import Address
from shared.x12 import split_segments
from tests.unit.eligibility.pyx12_maps import pyx12_validate
from tests.x12_support import pyx12_validate as pyx12_validate_837

REAL = Path(__file__).resolve().parents[2] / "fixtures" / "x12" / "271"
RATES = ("payer_down", "invalid_id", "not_found", "inactive", "other_primary")
EVERYONE_COVERED = EligibilityRules(seed=7, **{f"{r}_rate": Decimal(0) for r in RATES})


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rcm")
    eligibility_cmds.add_parsers(p.add_subparsers(dest="command", required=True))
    return p


def run(argv: list[str], capsys) -> str:
    args = parser().parse_args(argv)
    assert args.func(args) == 0
    return capsys.readouterr().out


@pytest.fixture
def encounter_file(tmp_path: Path) -> Path:
    """A Medicare patient with a Blue Lakes supplemental plan, as a FHIR Bundle."""
    sample = generate_samples(8, seed=7)[6]
    assert [c.payer_id for c in sample.encounter.coverages] == ["MCR01", "BCBS01"]
    path = tmp_path / "encounter.json"
    path.write_text(json.dumps(sample.bundle))
    return path


def test_eligibility_prints_the_270(encounter_file, capsys):
    text = run(
        ["eligibility", str(encounter_file), "--service-type", "30", "--service-type", "98"], capsys
    )
    assert pyx12_validate(text) == (True, [])
    segs = split_segments(text)[0]
    assert [s[2] for s in segs if s[0] == "TRN"] == [
        "ENC-north-clinic-7000007-1",
        "ENC-north-clinic-7000007-2",
    ]
    assert [s[1] for s in segs if s[0] == "EQ"] == ["30", "98", "30", "98"]
    assert [s for s in segs if s[0] == "DTP"] == [["DTP", "291", "D8", "20260605"]] * 2


def test_read_prints_the_simulators_271_as_json(encounter_file, tmp_path, capsys):
    text270 = run(["eligibility", str(encounter_file)], capsys)
    inquiries = read_270(text270)
    decisions = {
        q.trace_number: decide(q, EVERYONE_COVERED, date(2026, 6, 1)) for q in inquiries.inquiries
    }
    path = tmp_path / "answer.271"
    path.write_text(
        build_271(
            inquiries,
            decisions,
            interchange_control_number=4,
            group_control_number=4,
            created_at=datetime(2026, 6, 1, 8, 0),
        )
    )
    doc = json.loads(run(["eligibility", "--read", str(path)], capsys))
    assert doc["interchange_control_number"] == "000000004"
    medicare, blue = doc["results"]
    assert medicare["trace_number"] == "ENC-north-clinic-7000007-1"
    assert (medicare["status"], medicare["payer"]["id"]) == ("active", "MCR01")
    assert medicare["cost_share"]["in_network"]["coinsurance"] == "0.2"
    assert medicare["cost_share"]["in_network"]["deductible"] == "257"
    assert blue["status"] == "active" and blue["payer"]["id"] == "BCBS01"
    copay = blue["cost_share"]["in_network"]["copay"]
    assert copay is not None and Decimal(copay) > 0
    for r in doc["results"]:
        assert r["errors"] == [] and r["actions"] == []


def test_read_prints_a_real_rejection(capsys):
    doc = json.loads(
        run(
            [
                "eligibility",
                "--read",
                str(REAL / "linuxforhealth" / "subscriber-health-benefit-check-error.271"),
            ],
            capsys,
        )
    )
    [r] = doc["results"]
    assert r["status"] == "rejected" and r["level"] == "information_receiver"
    assert r["errors"] == [
        {
            "loop": "2100B",
            "segment": 9,
            "reason": "50",
            "description": "provider ineligible for inquiries",
            "follow_up": "N",
            "action": "review",
            "valid_request": True,
        }
    ]
    assert doc["warnings"] == ["segment 10 (SE): SE02 does not match ST02"]


def test_bad_input_is_one_clear_line(tmp_path, capsys):
    bad = tmp_path / "bad.271"
    bad.write_text(
        (REAL / "linuxforhealth" / "subscriber-health-benefit-check.271")
        .read_text()
        .replace("ST*271", "ST*835")
    )
    with pytest.raises(UserError, match=r"bad.271: segment 3 \(ST\): transaction set is not a 271"):
        run(["eligibility", "--read", str(bad)], capsys)
    with pytest.raises(UserError, match="cannot read"):
        run(["eligibility", "--read", str(tmp_path / "missing.271")], capsys)
    assert main(["era", str(bad)]) == 2  # the same file is no 835 either: one line, exit 2


# --------------------------------------------------------------------------- claim --after


def _era_for(text837: str, path: Path, day: int) -> Path:
    """The payer simulator's 835 for the 837's one claim, written to ``path``."""
    [c] = read_837(text837).claims
    rules = AdjudicationRules(seed=5, denial_rate=Decimal(0), ack_reject_rate=Decimal(0))
    decision = adjudicate(c, rules, FeeSchedule.from_csv(), date(2026, 6, day))
    path.write_text(
        build_835(
            [decision],
            payer=PayerInfo(
                c.payer_id,
                c.payer_name,
                Address(line1="PO BOX 1", city="HARTFORD", state="CT", postal_code="06101"),
            ),
            payee=PayeeInfo(
                c.billing_provider_name,
                c.billing_provider_npi or "",
                c.billing_provider_tax_id or "",
            ),
            trace_number=f"T{day}",
            payment_date=date(2026, 6, day),
            interchange_control_number=day,
            group_control_number=day,
            created_at=datetime(2026, 6, day, 9, 0),
        )
    )
    return path


def after(file: Path, *eras: Path, capsys) -> str:
    args = argparse.Namespace(
        file=str(file), encounter=None, chargemaster=None, after=[str(e) for e in eras]
    )
    assert eligibility_cmds.cmd_claim_after(args) == 0
    return capsys.readouterr().out


def test_claim_after_the_primary_835_prints_the_secondary_837(encounter_file, tmp_path, capsys):
    assert main(["claim", str(encounter_file)]) == 0
    primary837 = capsys.readouterr().out
    era = _era_for(primary837, tmp_path / "primary.835", 20)
    text = after(encounter_file, era, capsys=capsys)
    assert pyx12_validate_837(text) == (True, [])
    segs = split_segments(text)[0]
    sbr = [s for s in segs if s[0] == "SBR"]
    assert [(s[1], s[9]) for s in sbr] == [("S", "BL"), ("P", "MB")]
    assert ["DTP", "573", "D8", "20260620"] in segs
    assert [s[1] for s in segs if s[0] == "SVD"] == ["MCR01"] * sum(1 for s in segs if s[0] == "LX")
    clm = next(s for s in segs if s[0] == "CLM")
    assert clm[1] == next(s for s in split_segments(primary837)[0] if s[0] == "CLM")[1]


def test_claim_after_too_many_835s_is_refused_with_the_reason(encounter_file, tmp_path, capsys):
    assert main(["claim", str(encounter_file)]) == 0
    era = _era_for(capsys.readouterr().out, tmp_path / "primary.835", 20)
    with pytest.raises(UserError, match=r"no claim for the next payer \(1 reason\(s\)\)"):
        after(encounter_file, era, era, capsys=capsys)
    assert "rcm: no tertiary coverage on file to bill" in capsys.readouterr().err


def test_claim_after_an_835_for_other_claims(encounter_file, capsys):
    era = REAL.parent / "835" / "linuxforhealth" / "secondary-payment.835"
    with pytest.raises(UserError, match="secondary-payment.835: no claim payment .CLP. for claim"):
        after(encounter_file, era, capsys=capsys)
