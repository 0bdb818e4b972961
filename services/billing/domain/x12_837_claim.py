"""837 loops for one claim: 2000B/2010BA/2010BB, 2000C/2010CA, 2300, 2310x, 2320/2330x, 2400.

Professional (X222A1) and institutional (X223A2) share the subscriber/patient/COB loops
and differ in CLM05, the dates, CL1, HI qualifiers, providers and the line segment.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from shared.events import Address, Coverage, Person
from shared.x12 import Transaction, amount, clean, x12_date

from .claim import Claim, ServiceLine
from .codesets import ndc_11

if TYPE_CHECKING:
    from .cob import PriorAdjudication, PriorAdjustment

# Service dates and amounts repeat across a batch; memoizing their formatting is a cheap
# throughput win (benchmarks/bench_837.py). Only non-identifying values are cached.
_service_date = lru_cache(maxsize=2048)(x12_date)
_amount = lru_cache(maxsize=8192)(amount)

# Patient's relationship to the insured: SBR02/PAT01 individual relationship codes.
RELATIONSHIP_CODES = {"self": "18", "spouse": "01", "child": "19", "other": "G8"}
PAYER_RESPONSIBILITY = {"primary": "P", "secondary": "S", "tertiary": "T"}
_PRIOR_INDEX = {"primary": 0, "secondary": 1}  # claim.prior_adjudications[i] is this payer's
_CAS_TRIPLES = 6  # reason/amount/quantity triplets in one CAS segment
_SVD_QUALIFIERS = {
    "professional": ("ER", "HC", "IV", "WK"),
    "institutional": ("ER", "HC", "HP", "IV", "WK"),
}


def unwritable_reason(c: Claim) -> str | None:
    """Why an 837 cannot be written for this claim (naming the field), or None.

    Every case is also a scrub finding, so a claim that scrubbed clean is always writable.
    """
    if not 1 <= len(c.claim_id) <= 38 or set(c.claim_id) & set("*~:^|>"):
        return "claim id must be 1-38 characters without X12 separators"
    if c.frequency_code not in ("1", "7", "8"):
        return f"claim {c.claim_id}: frequency_code must be 1, 7 or 8"
    bp = c.billing_provider
    for name, value in (
        ("name", bp.name),
        ("npi", bp.npi),
        ("tax_id", bp.tax_id),
        ("address", bp.address),
    ):
        if not value:
            return f"claim {c.claim_id}: billing_provider.{name} is required for the 837"
    if (gap := _person_gap(c.patient, "patient")) is not None:
        return f"claim {c.claim_id}: {gap} is required for the 837"
    if c.payer is None:
        return f"claim {c.claim_id}: payer is required for the 837"
    unpriced = [ln.line_number for ln in c.lines if ln.charge is None]
    if unpriced or not c.lines:
        return f"claim {c.claim_id}: lines must be priced (unpriced: {unpriced})"
    if c.subscriber is None:
        return f"claim {c.claim_id}: payer.subscriber is required for the 837"
    if not c.payer.member_id:
        return f"claim {c.claim_id}: payer.member_id is required for the 837"
    if not c.payer.payer_id.strip():
        return f"claim {c.claim_id}: payer.payer_id is required for the 837"
    if c.relationship != "self" and (gap := _person_gap(c.subscriber, "payer.subscriber")):
        return f"claim {c.claim_id}: {gap} is required for the 837"
    if c.patient.address is None:
        return f"claim {c.claim_id}: patient.address is required for the 837"
    for i, cov in enumerate(c.other_coverages):
        if not cov.member_id:
            return f"claim {c.claim_id}: other_coverages[{i}].member_id is required for the 837"
        if cov.relationship != "self" and cov.subscriber is None:
            return f"claim {c.claim_id}: other_coverages[{i}].subscriber is required for the 837"
    for ln in c.lines:
        if ln.ndc and ndc_11(ln.ndc) is None:
            return f"claim {c.claim_id}: lines[{ln.line_number - 1}].ndc is not an 11-digit NDC"
    if c.claim_type == "institutional" and c.institutional is None:
        return f"claim {c.claim_id}: institutional data is required for an 837I"
    return None


def _person_gap(person: Person, path: str) -> str | None:
    """The first of name and birth date (NM103/NM104, DMG02) a patient or subscriber lacks."""
    for name in ("last_name", "first_name", "birth_date"):
        if not getattr(person, name):
            return f"{path}.{name}"
    return None


def write_claim(tx: Transaction, c: Claim, hl: int, provider_hl: int, comp: str) -> int:
    """Append one claim's loops; returns the last HL number used.

    The claim must be writable (``unwritable_reason`` is None): ``build_837`` checks first.
    """
    subscriber = c.subscriber
    assert c.payer is not None and subscriber is not None
    is_self = c.relationship == "self"

    hl += 1
    subscriber_hl = hl
    tx.add("HL", hl, provider_hl, "22", "0" if is_self else "1")
    p = c.payer
    tx.add(
        "SBR",
        PAYER_RESPONSIBILITY[p.sequence],  # P, or S/T on a secondary/tertiary claim
        "18" if is_self else "",
        clean(p.group_number or "", 50),
        "",
        _medicare_secondary_type(p),
        "",
        "",
        "",
        p.filing_indicator,
    )
    _person(tx, "IL", subscriber, p.member_id)
    if is_self:
        _address_and_dmg(tx, subscriber)
    tx.add("NM1", "PR", "2", clean(p.payer_name, 60), "", "", "", "", "PI", clean(p.payer_id, 80))
    if not is_self:
        hl += 1
        tx.add("HL", hl, subscriber_hl, "23", "0")
        tx.add("PAT", RELATIONSHIP_CODES[c.relationship])
        _person(tx, "QC", c.patient, None)
        _address_and_dmg(tx, c.patient)

    if c.claim_type == "institutional":
        _institutional_claim(tx, c, comp)
    else:
        _professional_claim(tx, c, comp)
    return hl


def _medicare_secondary_type(p: Coverage) -> str:
    """SBR05, required when Medicare is billed but is not primary: the Medicare secondary
    payer type. Intake does not say which; 12 (working aged, employer group health plan
    primary) is the common one."""
    return "12" if p.sequence != "primary" and p.filing_indicator in ("MA", "MB") else ""


def address(tx: Transaction, a: Address) -> None:
    tx.add("N3", clean(a.line1, 55), clean(a.line2, 55) if a.line2 else "")
    tx.add("N4", clean(a.city, 30), a.state.upper(), a.postal_code.replace("-", ""))


def _person(tx: Transaction, qualifier: str, person: Person, member_id: str | None) -> None:
    tx.add_person(qualifier, person.last_name or "", person.first_name or "", member_id)


def _address_and_dmg(tx: Transaction, person: Person) -> None:
    assert person.address is not None  # checked by unwritable_reason
    address(tx, person.address)
    if person.birth_date is not None:  # always so on a writable claim (unwritable_reason)
        tx.add("DMG", "D8", x12_date(person.birth_date), person.gender)


def _composite(comp: str, *parts: object) -> str:
    items = ["" if p is None else str(p) for p in parts]
    while items and items[-1] == "":
        items.pop()
    return comp.join(items)


def _claim_refs(tx: Transaction, c: Claim) -> None:
    # TR3 order within 2300: prior authorization (G1) before payer claim control number (F8).
    if c.prior_authorization:
        tx.add("REF", "G1", clean(c.prior_authorization, 50))
    if c.frequency_code in ("7", "8") and c.payer_claim_control_number:
        tx.add("REF", "F8", clean(c.payer_claim_control_number, 50))


def _dx(code: str) -> str:
    return code.replace(".", "").upper()


def _professional_claim(tx: Transaction, c: Claim, comp: str) -> None:
    tx.add(
        "CLM",
        c.claim_id,
        _amount(c.total_charge),
        "",
        "",
        _composite(comp, c.place_of_service, "B", c.frequency_code),
        "Y",
        "A",
        "Y",
        "Y",
    )
    if c.encounter_class == "IMP" and c.place_of_service == "21":
        tx.add("DTP", "435", "D8", x12_date(c.service_date))  # admission, inpatient visits
    _claim_refs(tx, c)
    codes = [
        ("ABK" if i == 0 else "ABF") + comp + _dx(d.code) for i, d in enumerate(c.diagnoses[:12])
    ]
    tx.add("HI", *codes)
    rp = c.rendering_provider
    if rp is not None:
        _rendering_provider(tx, rp)
        if rp.taxonomy:
            tx.add("PRV", "PE", "PXC", clean(rp.taxonomy, 50))
    _other_coverages(tx, c)
    for ln in c.lines:
        tx.add("LX", ln.line_number)
        pointers = comp.join(map(str, ln.diagnosis_pointers[:4]))
        tx.add(
            "SV1",
            comp.join(("HC", ln.code, *ln.modifiers[:4])),
            _amount(ln.charge),
            "UN",
            _amount(ln.units),
            "",
            "",
            pointers,
        )
        tx.add("DTP", "472", "D8", _service_date(ln.service_date))
        if ln.ndc:
            _drug(tx, ln)
        _line_adjudications(tx, c, ln, comp)


def _institutional_claim(tx: Transaction, c: Claim, comp: str) -> None:
    inst = c.institutional
    assert inst is not None  # claim_type == institutional implies it
    tob = inst.type_of_bill
    tx.add(
        "CLM",
        c.claim_id,
        _amount(c.total_charge),
        "",
        "",
        _composite(comp, tob[1:3], "A", c.frequency_code),
        "",
        "A",
        "Y",
        "Y",
    )
    tx.add("DTP", "434", "RD8", f"{x12_date(c.service_date)}-{x12_date(c.end_date)}")
    if inst.admission_date is not None:
        tx.add("DTP", "435", "D8", x12_date(inst.admission_date))
    tx.add("CL1", inst.admission_type or "", inst.admission_source or "", inst.discharge_status)
    _claim_refs(tx, c)
    inpatient = tob[1] == "1"
    dx = list(c.diagnoses)
    if dx:
        poa = _poa(dx[0].present_on_admission) if inpatient else None
        tx.add("HI", _composite(comp, "ABK", _dx(dx[0].code), "", "", "", "", "", "", poa))
    others = [
        _composite(
            comp,
            "ABF",
            _dx(d.code),
            "",
            "",
            "",
            "",
            "",
            "",
            _poa(d.present_on_admission) if inpatient else None,
        )
        for d in dx[1:25]
    ]
    for i in range(0, len(others), 12):
        tx.add("HI", *others[i : i + 12])
    if c.icd10pcs:

        def proc(qualifier: str, p) -> str:
            return _composite(
                comp, qualifier, p.code.upper(), "D8", x12_date(p.service_date or c.service_date)
            )

        tx.add("HI", proc("BBR", c.icd10pcs[0]))
        more = [proc("BBQ", p) for p in c.icd10pcs[1:25]]
        for i in range(0, len(more), 12):
            tx.add("HI", *more[i : i + 12])
    attending = inst.attending or c.rendering_provider
    if attending is not None:
        tx.add_person("71", attending.last_name, attending.first_name, attending.npi, "XX")
        if attending.taxonomy:
            tx.add("PRV", "AT", "PXC", clean(attending.taxonomy, 50))
    rp = c.rendering_provider
    if rp is not None and attending is not None and rp.npi != attending.npi:
        _rendering_provider(tx, rp)
    _other_coverages(tx, c)
    for ln in c.lines:
        tx.add("LX", ln.line_number)
        tx.add(
            "SV2",
            ln.revenue_code or "",
            comp.join(("HC", ln.code, *ln.modifiers[:4])),
            _amount(ln.charge),
            "UN",
            _amount(ln.units),
        )
        tx.add("DTP", "472", "D8", _service_date(ln.service_date))
        if ln.ndc:
            _drug(tx, ln)
        _line_adjudications(tx, c, ln, comp)


def _poa(indicator: str | None) -> str | None:
    # "1" (exempt from POA reporting) is sent as a blank HI01-9 in 5010.
    return None if indicator == "1" else indicator


def _drug(tx: Transaction, ln: ServiceLine) -> None:
    """2410 drug identification: NDC (11 digits) and quantity in units."""
    tx.add("LIN", "", "N4", ndc_11(ln.ndc or "") or "")
    tx.add("CTP", "", "", "", _amount(ln.units), "UN")


def _rendering_provider(tx: Transaction, rp) -> None:
    """Loop 2310B (837P) / 2310D (837I): the rendering provider's NM1*82, a person by NPI."""
    tx.add_person("82", rp.last_name, rp.first_name, rp.npi, "XX")


def _other_coverages(tx: Transaction, c: Claim) -> None:
    """2320/2330A/2330B: the patient's other insurance (coordination of benefits)."""
    for cov in c.other_coverages:
        _other_coverage(tx, c, cov)


def _adjudication(c: Claim, cov: Coverage) -> PriorAdjudication | None:
    """What the payer of ``cov`` decided, when it is a prior payer of this claim."""
    i = _PRIOR_INDEX.get(cov.sequence)
    return c.prior_adjudications[i] if i is not None and i < len(c.prior_adjudications) else None


def _cas(tx: Transaction, adjustments: tuple[PriorAdjustment, ...]) -> None:
    """CAS segments: one per group code, up to six reason/amount/quantity triplets each."""
    groups: dict[str, list[PriorAdjustment]] = {}
    for a in adjustments:
        groups.setdefault(a.group, []).append(a)
    for group, items in groups.items():
        for i in range(0, len(items), _CAS_TRIPLES):
            triplets = []
            for a in items[i : i + _CAS_TRIPLES]:
                qty = _amount(a.quantity) if a.quantity is not None else ""
                triplets += [a.reason, _amount(a.amount), qty]
            tx.add("CAS", group, *triplets)


def _other_coverage(tx: Transaction, c: Claim, cov: Coverage) -> None:
    adjudication = _adjudication(c, cov)
    tx.add(
        "SBR",
        PAYER_RESPONSIBILITY[cov.sequence],
        RELATIONSHIP_CODES[cov.relationship],
        clean(cov.group_number or "", 50),
        "",
        "",
        "",
        "",
        "",
        cov.filing_indicator,
    )
    if adjudication is not None:
        _cas(tx, adjudication.adjustments)
        tx.add("AMT", "D", _amount(adjudication.paid))  # sent as 0 when it paid nothing
        if adjudication.patient_responsibility:
            tx.add("AMT", "EAF", _amount(adjudication.patient_responsibility))
    tx.add("OI", "", "", "Y", "", "", "Y")
    insured = c.patient if cov.relationship == "self" else cov.subscriber
    assert insured is not None  # checked by unwritable_reason
    _person(tx, "IL", insured, cov.member_id)
    if insured.address is not None:
        address(tx, insured.address)
    tx.add(
        "NM1", "PR", "2", clean(cov.payer_name, 60), "", "", "", "", "PI", clean(cov.payer_id, 80)
    )
    if adjudication is not None:
        tx.add("DTP", "573", "D8", x12_date(adjudication.adjudication_date))
        if adjudication.payer_claim_control_number:
            tx.add("REF", "F8", clean(adjudication.payer_claim_control_number, 50))


def _line_adjudications(tx: Transaction, c: Claim, ln: ServiceLine, comp: str) -> None:
    """2430 per prior payer that adjudicated the line: SVD, CAS, DTP*573."""
    if not c.prior_adjudications:
        return
    for cov in c.other_coverages:
        adjudication = _adjudication(c, cov)
        pl = adjudication.line(ln.line_number) if adjudication is not None else None
        if adjudication is None or pl is None:
            continue
        qualifier = pl.qualifier if pl.qualifier in _SVD_QUALIFIERS[c.claim_type] else "HC"
        code, mods = (
            (pl.code, pl.modifiers) if qualifier == pl.qualifier else (ln.code, ln.modifiers)
        )
        procedure = comp.join((qualifier, code.upper(), *(m.upper() for m in mods[:4])))
        revenue = (ln.revenue_code or "") if c.claim_type == "institutional" else ""
        tx.add(
            "SVD", clean(cov.payer_id, 80), _amount(pl.paid), procedure, revenue, _amount(pl.units)
        )
        _cas(tx, pl.adjustments)
        tx.add("DTP", "573", "D8", x12_date(adjudication.adjudication_date))
