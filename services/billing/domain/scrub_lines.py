"""Scrub checks on diagnoses, service lines and payer rules (see ``scrubber.scrub``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal

from shared.events import Reason

from . import codesets
from .claim import MAX_INSTITUTIONAL_DIAGNOSES, MAX_PROFESSIONAL_DIAGNOSES, Claim
from .payer_rules import PayerRules

IsBillable = Callable[[str, date], bool | None]


def _r(code: str, message: str, field: str | None = None) -> Reason:
    return Reason(code=code, message=message, field=field)


def diagnoses(c: Claim, is_billable: IsBillable) -> Iterator[Reason]:
    if not c.diagnoses:
        yield _r("DIAGNOSIS_MISSING", "claim has no diagnosis", "diagnoses")
    limit = (
        MAX_INSTITUTIONAL_DIAGNOSES
        if c.claim_type == "institutional"
        else MAX_PROFESSIONAL_DIAGNOSES
    )
    if len(c.diagnoses) > limit:
        yield _r(
            "TOO_MANY_DIAGNOSES",
            f"more than {limit} diagnoses are pointed to by service lines",
            "diagnoses",
        )
    for i, dx in enumerate(c.diagnoses):
        code = dx.code.replace(".", "").upper()
        where = f"diagnoses[{i}].code"
        if not codesets.is_icd10cm_format(code):
            yield _r("DIAGNOSIS_INVALID", f"{code} is not an ICD-10-CM code", where)
            continue
        ok = is_billable(code, c.service_date)
        if ok is None:
            yield _r(
                "DIAGNOSIS_UNKNOWN",
                f"{code} is not in the ICD-10-CM code set for the date of service",
                where,
            )
        elif ok is False:
            yield _r(
                "DIAGNOSIS_NOT_BILLABLE",
                f"{code} is a category header, not billable: code to the highest specificity",
                where,
            )


def lines(c: Claim, as_of: date | None) -> Iterator[Reason]:
    if not c.lines:
        yield _r("NO_SERVICE_LINES", "claim has no billable service lines", "lines")
    n_dx = len(c.diagnoses)
    for i, ln in enumerate(c.lines):
        at = f"lines[{i}]"
        if not codesets.is_procedure_code(ln.code):
            yield _r("PROCEDURE_CODE_INVALID", f"{ln.code} is not a CPT/HCPCS code", f"{at}.code")
        for m in ln.modifiers:
            if not codesets.is_modifier(m):
                yield _r(
                    "MODIFIER_INVALID", f"modifier {m!r} is not 2 letters/digits", f"{at}.modifiers"
                )
        if ln.units <= 0:
            yield _r("UNITS_NOT_POSITIVE", "units must be positive", f"{at}.units")
        if ln.unit_price is None:
            yield _r(
                "NO_CHARGEMASTER_PRICE", f"no chargemaster price for {ln.code}", f"{at}.charge"
            )
        elif ln.charge is None or ln.charge <= Decimal(0):
            yield _r("CHARGE_NOT_POSITIVE", "line charge must be greater than zero", f"{at}.charge")
        if c.claim_type == "professional":
            yield from _pointers(ln.diagnosis_pointers, n_dx, f"{at}.diagnosis_pointers")
        else:  # 837I lines carry no diagnosis pointers, but need a revenue code
            if not ln.revenue_code:
                yield _r(
                    "REVENUE_CODE_MISSING", f"no revenue code for {ln.code}", f"{at}.revenue_code"
                )
            elif not codesets.is_revenue_code(ln.revenue_code):
                yield _r(
                    "REVENUE_CODE_INVALID",
                    f"revenue code {ln.revenue_code!r} is not valid",
                    f"{at}.revenue_code",
                )
        if ln.ndc and codesets.ndc_11(ln.ndc) is None:
            yield _r("NDC_INVALID", "NDC must be 11 digits (5-4-2) or hyphenated", f"{at}.ndc")
        if as_of is not None and ln.service_date > as_of:
            yield _r(
                "SERVICE_DATE_IN_FUTURE",
                "service date is after the submission date",
                f"{at}.service_date",
            )


def _pointers(pointers: tuple[int, ...], n_dx: int, where: str) -> Iterator[Reason]:
    if not pointers:
        yield _r("POINTER_MISSING", "line has no diagnosis pointer", where)
    if len(pointers) > 4:
        yield _r("TOO_MANY_POINTERS", "a line may point to at most 4 diagnoses", where)
    for p in pointers:
        if not 1 <= p <= min(n_dx, MAX_PROFESSIONAL_DIAGNOSES):
            yield _r(
                "POINTER_INVALID",
                f"diagnosis pointer {p} refers to no diagnosis on the claim",
                where,
            )
    if len(set(pointers)) != len(pointers):
        yield _r("POINTER_DUPLICATE", "a diagnosis pointer is repeated", where)


def payer_rules(c: Claim, rules: PayerRules, as_of: date | None) -> Iterator[Reason]:
    if c.payer is None:
        return
    rule = rules.for_payer(c.payer.payer_id, c.filing_indicator)
    if rule.requires_group_number and not c.payer.group_number:
        yield _r(
            "PAYER_GROUP_NUMBER_REQUIRED",
            "this payer requires the group number",
            "payer.group_number",
        )
    if rule.requires_rendering_provider and c.rendering_provider is None:
        yield _r(
            "PAYER_RENDERING_REQUIRED",
            "this payer requires a rendering provider",
            "rendering_provider",
        )
    for i, ln in enumerate(c.lines):
        if ln.code in rule.prior_auth_codes and not c.prior_authorization:
            yield _r(
                "PRIOR_AUTH_REQUIRED",
                f"payer requires a prior authorization number for {ln.code}",
                "prior_authorization",
            )
        if ln.code in rule.non_covered_codes:
            yield _r(
                "PAYER_NON_COVERED", f"{ln.code} is not covered by this payer", f"lines[{i}].code"
            )
    limit = rule.filing_limit
    if as_of is not None and limit is not None and as_of > limit.deadline(c.service_date):
        yield _r("TIMELY_FILING_EXCEEDED", f"past the payer's {limit} filing limit", "service_date")
