"""Shared helpers for the payer simulator tests (not a test module)."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal
from pathlib import Path

import pyx12.params
import pyx12.x12n_document

from rcm.simulation.payer.domain.model import SubmittedClaim, SubmittedLine

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "x12" / "payer_sim"
LFH = FIXTURES / "linuxforhealth"
PROFESSIONAL_SAMPLES = sorted((LFH / "837_005010X222A2").glob("*.837"))
INSTITUTIONAL_SAMPLES = sorted((LFH / "837_005010X223A3").glob("*.837i"))
RCM_837P = FIXTURES / "rcm_837p_two_claims.837"
RCM_837I = FIXTURES / "rcm_837i_outpatient.837"


def pyx12_check(text: str) -> tuple[bool, str]:
    """Validate X12 with pyx12; returns (ok, JSON error report) for assertion messages."""
    report = io.StringIO()
    ok = pyx12.x12n_document.x12n_document(
        param=pyx12.params.params(),
        src_file=io.StringIO(text),
        fd_997=None,
        fd_html=None,
        fd_xmldoc=None,
        fd_json=report,
        xslt_files=None,
        map_path=None,
    )
    return ok, report.getvalue()


def segments(text: str) -> list[list[str]]:
    return [s.strip().split("*") for s in text.split("~") if s.strip()]


def make_claim(
    claim_id: str = "C1",
    lines: list[tuple[str, str]] | None = None,
    *,
    filing_indicator: str = "MB",
    frequency_code: str = "1",
    service_date: date = date(2025, 3, 3),
    member_id: str | None = "M123",
    npi: str | None = "1245319599",
    total: Decimal | None = None,
    sequence: str = "P",
    payer_id: str = "PAYER1",
) -> SubmittedClaim:
    """A professional claim; ``lines`` are (code, charge) pairs."""
    lines = lines or [("99213", "125.00")]
    submitted = tuple(
        SubmittedLine(
            line_number=i,
            code=code,
            modifiers=(),
            charge=Decimal(charge),
            units=Decimal(1),
            service_date=service_date,
        )
        for i, (code, charge) in enumerate(lines, start=1)
    )
    line_total = sum((ln.charge for ln in submitted), Decimal("0.00"))
    return SubmittedClaim(
        claim_id=claim_id,
        total_charge=total if total is not None else line_total,
        frequency_code=frequency_code,
        facility_code="11",
        claim_type="professional",
        payer_id=payer_id,
        payer_name="TEST PAYER",
        billing_provider_npi=npi,
        billing_provider_tax_id="371234567",
        billing_provider_name="TEST CLINIC",
        subscriber_last_name="DOE",
        subscriber_first_name="JANE",
        patient_last_name="DOE",
        patient_first_name="JANE",
        member_id=member_id,
        service_date=service_date,
        service_end_date=service_date,
        diagnoses=("J069",),
        lines=submitted,
        st_control_number="0001",
        payer_sequence=sequence,
        filing_indicator=filing_indicator,
    )
