"""Claim scrubber: every reason a claim would be rejected, found before it is sent.

``scrub`` returns all findings (an empty list means clean); it never stops at the first.
Reason codes are stable identifiers (``MEMBER_ID_MISSING``...), ``field`` is a path into
the claim (``lines[2].diagnosis_pointers``). Messages never contain PHI.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from shared.events import Coverage, Person, Reason
from shared.npi import is_valid_npi

from . import codesets, scrub_lines
from .claim import Claim
from .ncci import NcciTables, ncci_findings, parse_mue, parse_ncci_ptp
from .payer_rules import PayerRules, load_payer_rules, load_sample_payer_rules
from .scrub_lines import IsBillable

__all__ = [
    "NcciTables",
    "PayerRules",
    "load_payer_rules",
    "load_sample_payer_rules",
    "parse_mue",
    "parse_ncci_ptp",
    "scrub",
]

_X12_SEPARATORS = set("*~:^|>")


def scrub(
    claim: Claim,
    *,
    is_billable: IsBillable,
    payer_rules: PayerRules | None = None,
    ncci: NcciTables | None = None,
    as_of: date | None = None,
) -> list[Reason]:
    """All scrub findings for ``claim``.

    ``is_billable(code, date_of_service)`` answers for an ICD-10-CM code: True billable,
    False a non-billable header, None unknown. ``as_of`` (the submission date) enables the
    future-date and timely-filing checks. Does not raise for bad claim data.
    """
    found: list[Reason] = []
    checks = (_header, _billing_provider, _payer_and_parties, _place_or_bill_type, _eligibility)
    for check in checks:
        found.extend(check(claim))
    found.extend(scrub_lines.diagnoses(claim, is_billable))
    found.extend(scrub_lines.lines(claim, as_of))
    if payer_rules is not None:
        found.extend(scrub_lines.payer_rules(claim, payer_rules, as_of))
    if ncci is not None:
        found.extend(ncci_findings(claim, ncci))
    return found


def _r(code: str, message: str, field: str | None = None) -> Reason:
    return Reason(code=code, message=message, field=field)


def _header(c: Claim) -> Iterator[Reason]:
    if not (1 <= len(c.claim_id) <= 38) or _X12_SEPARATORS & set(c.claim_id):
        yield _r(
            "CLAIM_ID_INVALID",
            "claim id must be 1-38 characters without X12 separators",
            "claim_id",
        )
    if c.frequency_code not in codesets.FREQUENCY_CODES:
        yield _r(
            "FREQUENCY_CODE_INVALID", "claim frequency code must be 1, 7 or 8", "frequency_code"
        )
    elif c.frequency_code in ("7", "8") and not c.payer_claim_control_number:
        yield _r(
            "PAYER_CLAIM_CONTROL_NUMBER_MISSING",
            "replacement/void claims need the payer claim control number of the original (REF*F8)",
            "payer_claim_control_number",
        )


def _billing_provider(c: Claim) -> Iterator[Reason]:
    bp = c.billing_provider
    if not (bp.name or "").strip():
        yield _r(
            "BILLING_NAME_MISSING", "billing provider name is missing", "billing_provider.name"
        )
    if not bp.npi:
        yield _r("BILLING_NPI_MISSING", "billing provider NPI is missing", "billing_provider.npi")
    elif not is_valid_npi(bp.npi):
        yield _r(
            "BILLING_NPI_INVALID",
            "billing provider NPI fails the check digit",
            "billing_provider.npi",
        )
    tax = (bp.tax_id or "").replace("-", "")
    if not tax:
        yield _r(
            "BILLING_TAX_ID_MISSING",
            "billing provider tax id (EIN) is missing",
            "billing_provider.tax_id",
        )
    elif len(tax) != 9 or not tax.isdigit():
        yield _r(
            "BILLING_TAX_ID_INVALID",
            "billing provider tax id must be 9 digits",
            "billing_provider.tax_id",
        )
    if bp.address is None:
        yield _r(
            "BILLING_ADDRESS_MISSING",
            "billing provider address is missing",
            "billing_provider.address",
        )
    elif len(bp.address.postal_code.replace("-", "")) != 9:
        # 837 TR3: the billing provider ZIP must be the full ZIP+4.
        yield _r(
            "BILLING_ZIP_NOT_ZIP4",
            "billing provider ZIP code must be 9 digits (ZIP+4)",
            "billing_provider.address.postal_code",
        )
    rp = c.rendering_provider
    if rp is not None and not is_valid_npi(rp.npi):
        yield _r(
            "RENDERING_NPI_INVALID",
            "rendering provider NPI fails the check digit",
            "rendering_provider.npi",
        )
    if c.claim_type == "institutional":
        attending = c.institutional.attending if c.institutional else None
        if attending is None and rp is None:
            yield _r(
                "ATTENDING_MISSING",
                "institutional claim needs an attending provider",
                "institutional.attending",
            )
        elif attending is not None and not is_valid_npi(attending.npi):
            yield _r(
                "ATTENDING_NPI_INVALID",
                "attending provider NPI fails the check digit",
                "institutional.attending.npi",
            )


def _person(person: Person, path: str, role: str) -> Iterator[Reason]:
    """Name and birth date an 837 needs for a patient or subscriber (NM103/NM104, DMG02)."""
    for name, label in (("last_name", "last name"), ("first_name", "first name")):
        if not (getattr(person, name) or "").strip():
            yield _r(f"{role.upper()}_NAME_MISSING", f"{role} {label} is missing", f"{path}.{name}")
    if person.birth_date is None:
        yield _r(
            f"{role.upper()}_BIRTH_DATE_MISSING",
            f"{role} birth date is missing",
            f"{path}.birth_date",
        )


def payer_id_missing(p: Coverage) -> bool:
    """True when the coverage has no payer id.

    Intake leaves the id empty when neither the EHR nor the payer registry gives one (the
    payer is then known by name only), and a biller supplies it. A payer whose id happens to
    read like its name is a payer with an id.
    """
    return not p.payer_id.strip()


def _payer_and_parties(c: Claim) -> Iterator[Reason]:
    yield from _person(c.patient, "patient", "patient")
    if c.patient.address is None:
        yield _r("PATIENT_ADDRESS_MISSING", "patient address is missing", "patient.address")
    p = c.payer
    if p is None:
        # A self-pay encounter has no coverage either; it is never billed to a payer, so a
        # claim without one is held the same way (a biller supplies the coverage or closes it).
        yield _r("PAYER_MISSING", "no primary coverage: payer unknown", "payer")
        return
    if payer_id_missing(p):
        yield _r("PAYER_ID_MISSING", "payer id is missing", "payer.payer_id")
    if not (p.member_id or "").strip():
        yield _r("MEMBER_ID_MISSING", "subscriber member id is missing", "payer.member_id")
    if p.relationship != "self" and p.subscriber is None:
        yield _r(
            "SUBSCRIBER_MISSING",
            f"patient is the subscriber's {p.relationship} but no subscriber is given",
            "payer.subscriber",
        )
    elif p.relationship != "self" and p.subscriber is not None:
        yield from _person(p.subscriber, "payer.subscriber", "subscriber")
    for i, other in enumerate(c.other_coverages):
        if payer_id_missing(other):  # the 837's other payer (2330B NM1*PR) needs its id too
            yield _r(
                "OTHER_PAYER_ID_MISSING",
                "other coverage payer id is missing",
                f"other_coverages[{i}].payer_id",
            )
        if not (other.member_id or "").strip():
            yield _r(
                "OTHER_MEMBER_ID_MISSING",
                "other coverage member id is missing",
                f"other_coverages[{i}].member_id",
            )
        if other.relationship != "self" and other.subscriber is None:
            yield _r(
                "OTHER_SUBSCRIBER_MISSING",
                "other coverage subscriber is missing",
                f"other_coverages[{i}].subscriber",
            )


def _place_or_bill_type(c: Claim) -> Iterator[Reason]:
    if c.claim_type == "professional":
        if not c.place_of_service:
            yield _r("PLACE_OF_SERVICE_MISSING", "place of service is missing", "place_of_service")
        elif c.place_of_service not in codesets.PLACE_OF_SERVICE:
            yield _r(
                "PLACE_OF_SERVICE_INVALID",
                f"place of service {c.place_of_service!r} is not a CMS code",
                "place_of_service",
            )
        return
    inst = c.institutional
    if inst is None:
        return
    if not codesets.is_type_of_bill(inst.type_of_bill):
        yield _r(
            "TYPE_OF_BILL_INVALID",
            f"type of bill {inst.type_of_bill!r} is not valid",
            "institutional.type_of_bill",
        )
    elif inst.type_of_bill[2] in "18" and inst.admission_date is None:
        # Inpatient bills need the admission date: bill classification (the third of the four
        # digits, after facility type) 1 = inpatient, 8 = swing bed. 013x is hospital outpatient.
        yield _r(
            "ADMISSION_DATE_MISSING",
            "inpatient claim needs an admission date",
            "institutional.admission_date",
        )
    if len(inst.discharge_status) != 2 or not inst.discharge_status.isdigit():
        yield _r(
            "DISCHARGE_STATUS_INVALID",
            "patient discharge status must be 2 digits",
            "institutional.discharge_status",
        )
    for i, proc in enumerate(c.icd10pcs):
        if not codesets.is_icd10pcs_format(proc.code.upper()):
            yield _r(
                "ICD10PCS_INVALID", f"{proc.code} is not an ICD-10-PCS code", f"icd10pcs[{i}].code"
            )


_RANK = {"primary": 0, "secondary": 1, "tertiary": 2}


def _eligibility(c: Claim) -> Iterator[Reason]:
    """What intake's 270/271 check found for the billed coverage (``Coverage.eligibility``):
    coverage inactive on the date of service, or another payer named primary (2120 NM1*PRP)
    that is not a coverage ahead of this one. Unverified or unchecked coverage goes out."""
    p = c.payer
    found = p.eligibility if p is not None else None
    if p is None or found is None:
        return
    when = f" (checked {found.checked_on.isoformat()})" if found.checked_on else ""
    if found.status == "inactive":
        yield _r(
            "COVERAGE_INACTIVE",
            f"the payer's eligibility response{when} says the {p.sequence} coverage was not"
            " active on the date of service: verify the patient's insurance and update the"
            " coverage, or bill the next payer or the patient",
            "payer.eligibility.status",
        )
    named_id = (found.other_primary_payer_id or "").strip().upper()
    named = (found.other_primary_payer or "").strip().upper()
    if not (named_id or named):
        return
    ahead = [o for o in c.other_coverages if _RANK[o.sequence] < _RANK[p.sequence]]
    known = {o.payer_id.strip().upper() for o in ahead} | {
        o.payer_name.strip().upper() for o in ahead
    }
    if (named_id and named_id in known) or (not named_id and named in known):
        return
    who = found.other_primary_payer or found.other_primary_payer_id
    yield _r(
        "OTHER_PAYER_PRIMARY",
        f"the payer's eligibility response{when} names {who} as the primary payer: update the"
        " coverages' order (coordination of benefits) and bill that payer first",
        "payer.eligibility.other_primary_payer",
    )
