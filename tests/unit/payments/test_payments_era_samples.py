"""Parse and balance real (LinuxForHealth) and project-authored 835 files."""

from __future__ import annotations

import io
import logging
from datetime import date
from decimal import Decimal as D
from pathlib import Path

import pytest

from services.payments.domain import check_era, parse_835

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "x12" / "835"
LFH = FIXTURES / "linuxforhealth"
AUTHORED = FIXTURES / "authored"


def load(path: Path):
    return parse_835(path.read_text())


# --------------------------------------------------------------- LinuxForHealth samples

BALANCED = [
    "cob-contractural-adjustment.835",
    "managed-care.835",
    "medicare-part-a.835",
    "secondary-payment.835",
]


@pytest.mark.parametrize("name", BALANCED)
def test_real_samples_balance(name):
    assert check_era(load(LFH / name)) == []


def test_tertiary_sample_has_shifted_svc_and_only_the_line_check_flags_it():
    # The file writes "SVC*HC*24599.00*1766.50*187.50**1": the element separator
    # where the component separator belongs, so every SVC element shifts one place
    # (charge 24599.00, paid 1766.50, revenue code 187.50). The claim still
    # balances (1766.50 - 187.50 = 1579.00 of line CAS) and so does BPR; only the
    # per-line identity fails, and the parser warns that SVC01-2 is missing.
    era = load(LFH / "tertiary-payment.835")
    assert check_era(era) == [
        "transaction 0001 claim 0001000054 line 1: charge 24599.00 - paid 1766.50 = "
        "22832.50 but line adjustments total 1579.00"
    ]
    tx = era.transactions[0]
    assert "segment 20 (SVC): SVC01-2 procedure code is missing" in tx.warnings
    line = tx.claims[0].service_lines[0]
    assert (line.qualifier, line.code, line.charge, line.paid) == (
        "HC",
        "",
        D("24599.00"),
        D("1766.50"),
    )
    assert tx.claims[0].status_code == "3"


def test_managed_care_payment_payer_payee_and_claims():
    era = load(LFH / "managed-care.835")
    assert era.interchange_control_number == "000000907"
    tx = era.transactions[0]
    assert (tx.st_control_number, tx.isa_control_number, tx.gs_control_number) == (
        "112233",
        "000000907",
        "1",
    )
    p = tx.payment
    assert (p.amount, p.method, p.credit_debit, p.trace_number, p.originator) == (
        D("945.00"),
        "ACH",
        "C",
        "7170066655",
        "1935665544",
    )
    # BPR16 = 20002316 is not a date: kept as a warning, the money still parses.
    assert p.date is None
    assert tx.warnings == ["segment 4 (BPR): BPR16 is not a valid CCYYMMDD date"]
    assert tx.payer.name == "RUSHMORE LIFE"
    assert (tx.payee.name, tx.payee.npi, tx.payee.tax_id) == (
        "ACME MEDICAL CENTER",
        "5544667733",
        "777667755",
    )
    c1, c2 = tx.claims
    assert (
        c1.patient_control_number,
        c1.status_code,
        c1.charge,
        c1.paid,
        c1.patient_responsibility,
    ) == ("5554555444", "1", D("800.00"), D("450.00"), D("300.00"))
    assert c1.payer_claim_control_number == "94060555410000"
    assert [(a.group, a.reason, a.amount, a.level) for a in c1.adjustments] == [
        ("CO", "A2", D("50.00"), "claim")
    ]
    line = c1.service_lines[0]
    assert (line.qualifier, line.code, line.charge, line.paid, line.units) == (
        "HC",
        "99211",
        D("800.00"),
        D("500.00"),
        D(1),
    )
    assert (line.service_date, line.service_end_date) == (date(2002, 3, 1), date(2002, 3, 4))
    assert [(a.group, a.reason, a.amount) for a in c2.service_lines[0].adjustments] == [
        ("PR", "1", D("600.00")),
        ("CO", "45", D("50.00")),
    ]
    # PHI is kept on the object but never shown in its repr.
    assert c1.patient.last_or_org == "BUDD"
    assert "BUDD" not in repr(c1) and "33344555510" not in repr(c1)


def test_medicare_part_a_plb_mia_moa_and_ref_2u_payer_id():
    tx = load(LFH / "medicare-part-a.835").transactions[0]
    assert tx.payer.payer_id == "999"  # REF*2U, no N104
    assert tx.payment.date == date(2002, 9, 13)
    assert tx.production_date == date(2002, 9, 16)
    (plb,) = tx.provider_adjustments
    assert plb == ("6543210903", date(2002, 12, 31), "CV", "CP", D("-1.27"))
    c1, c2 = tx.claims
    assert (c1.filing_indicator, c1.facility_type, c1.frequency) == ("MA", "11", "1")
    assert (c1.statement_from, c1.statement_to) == (date(2002, 8, 16), date(2002, 8, 24))
    assert c1.quantities == {"CA": D("8.00")}
    assert c2.remarks == ["MA02"]  # MOA03
    # 138018.40 + 11980.33 - (-1.27) = 150000.00
    assert sum(c.paid for c in tx.claims) - plb.amount == tx.payment.amount


def test_secondary_sample_wrong_component_separator_is_read_with_a_warning():
    tx = load(LFH / "secondary-payment.835").transactions[0]
    line1, line2 = tx.claims[1].service_lines
    assert (line1.code, line1.modifiers, line1.units) == ("12345", ("26",), D("1.00"))
    assert (line2.code, line2.revenue_code) == ("66543", "220")
    assert [(a.group, a.reason, a.amount) for a in line2.adjustments] == [
        ("PR", "1", D("150.00")),
        ("PR", "2", D("70.00")),
        ("CO", "42", D("85.00")),
    ]
    assert line2.amounts == {"B6": D("500.00")}
    assert (
        "segment 29 (SVC): SVC01 uses '>' as component separator, ISA16 declares ':'" in tx.warnings
    )
    assert tx.claims[0].rendering_provider.id == "987"


def test_cob_sample_negative_line_adjustment():
    tx = load(LFH / "cob-contractural-adjustment.835").transactions[0]
    line = tx.claims[0].service_lines[0]
    assert [(a.group, a.reason, a.amount) for a in line.adjustments] == [
        ("OA", "23", D("516.00")),
        ("OA", "94", D("-9.00")),
    ]
    assert line.refs == {"1B": "44280"}
    assert tx.payee.tax_id == "3UR334563"


# --------------------------------------------------------------- authored files

AUTHORED_FILES = sorted(p.name for p in AUTHORED.glob("*.835"))


def test_authored_fixtures_exist():
    assert len(AUTHORED_FILES) == 6


@pytest.mark.parametrize("name", AUTHORED_FILES)
def test_authored_files_are_valid_for_pyx12(name):
    import pyx12.params
    import pyx12.x12n_document

    logging.getLogger("pyx12").setLevel(logging.CRITICAL)
    ok = pyx12.x12n_document.x12n_document(
        param=pyx12.params.params(),
        src_file=str(AUTHORED / name),
        fd_997=io.StringIO(),
        fd_html=None,
        fd_xmldoc=None,
        xslt_files=None,
        map_path=None,
    )
    assert ok is True


@pytest.mark.parametrize("name", AUTHORED_FILES)
def test_authored_files_parse_cleanly_and_balance(name):
    era = load(AUTHORED / name)
    assert check_era(era) == []
    assert all(tx.warnings == [] for tx in era.transactions)


def test_reversal_then_corrected_payment():
    tx = load(AUTHORED / "reversal-corrected.835").transactions[0]
    rev, new = tx.claims
    assert (rev.status_code, rev.charge, rev.paid, rev.patient_responsibility) == (
        "22",
        D(-150),
        D(-80),
        D(-20),
    )
    assert rev.is_reversal and not new.is_reversal
    assert [(a.group, a.amount) for a in rev.adjustments] == [("CO", D(-50)), ("PR", D(-20))]
    assert new.patient_control_number == rev.patient_control_number == "CLM1001"
    assert (new.frequency, new.refs) == ("7", {"F8": "ICN7001"})
    assert new.service_lines[0].line_control_number == "CLM1001-1"
    assert tx.payment.amount == D(15)


def test_plb_interest_recoupment_forward_balance():
    tx = load(AUTHORED / "plb-interest-recoupment.835").transactions[0]
    assert [(a.reason, a.reference, a.amount) for a in tx.provider_adjustments] == [
        ("L6", "ICN8001", D("-4.25")),
        ("WO", "ICN6001", D(100)),
        ("FB", "FB0001", D(25)),
    ]
    assert tx.payment.amount == D("39.25") and tx.payment.handling_code == "C"


def test_claim_level_vs_line_level_cas_and_multiple_triplets():
    (claim,) = load(AUTHORED / "claim-and-line-cas.835").transactions[0].claims
    assert [(a.group, a.reason, a.amount, a.level) for a in claim.adjustments] == [
        ("CO", "45", D(15), "claim")
    ]
    l1, l2 = claim.service_lines
    assert l1.modifiers == ("25", "59", "XS", "GT")
    assert [(a.group, a.reason, a.amount, a.quantity, a.level) for a in l1.adjustments] == [
        ("CO", "45", D(60), None, "line"),
        ("CO", "253", D(5), None, "line"),
        ("PR", "1", D(20), D(1), "line"),
        ("PR", "2", D(5), None, "line"),
    ]
    assert (l2.code, l2.original_code, l2.original_modifiers, l2.units) == (
        "29540",
        "29530",
        ("LT",),
        D(2),
    )
    assert (l2.billed_code, l2.remarks) == ("29530", ["M15"])
    assert claim.remarks == ["MA01"]
    assert claim.rendering_provider.id == "1234567893"


def test_denied_claims_with_lq_remarks():
    tx = load(AUTHORED / "denied-lq.835").transactions[0]
    assert (tx.payment.method, tx.payment.handling_code, tx.payment.amount) == ("NON", "H", D(0))
    c1, c2 = tx.claims
    assert (c1.status_code, c1.paid, c1.remarks) == ("4", D(0), ["MA130"])
    assert c1.service_lines[0].remarks == ["N115", "M127"]
    assert c1.service_lines[0].adjustments[0].quantity == D(4)
    assert [(a.group, a.reason, a.amount) for a in c2.service_lines[0].adjustments] == [
        ("PR", "96", D(150))
    ]


def test_multiple_st_in_one_group():
    era = load(AUTHORED / "multi-st.835")
    assert [t.st_control_number for t in era.transactions] == ["0001", "0002"]
    assert [t.payment.trace_number for t in era.transactions] == ["CHK2051", "CHK2052"]
    assert [c.patient_control_number for c in era.claims] == ["CLM5001", "CLM5002"]


def test_two_interchanges_in_one_file():
    era = load(AUTHORED / "two-interchanges.835")
    assert era.interchange_control_numbers == ["000000301", "000000302"]
    assert era.interchange_control_number == "000000301"
    assert [(t.isa_control_number, t.gs_control_number) for t in era.transactions] == [
        ("000000301", "10"),
        ("000000302", "11"),
    ]
    assert [c.paid for c in era.claims] == [D(70), D(45)]


def test_separators_come_from_isa():
    text = (AUTHORED / "claim-and-line-cas.835").read_text()
    other = text.replace("*", "|").replace(":", ">").replace("~\n", "\n").replace("~", "\n")
    assert other.count("\n") > 30 and "*" not in other
    era = parse_835(other)
    line = era.claims[0].service_lines[0]
    assert (line.code, line.modifiers) == ("99214", ("25", "59", "XS", "GT"))
    assert check_era(era) == []
