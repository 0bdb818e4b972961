"""Encounter builder for the coding engine tests (fictitious patients only)."""

from datetime import date

from shared.events import Coverage, Encounter, Organization, Person, SuppliedCode

DOS = date(2026, 5, 11)


def make_enc(
    note: str | None, *, age: int = 40, sex: str = "M", dx=(), px=(), payer: str = "CI", **kw
) -> Encounter:
    base = dict(
        encounter_id="ENC-T1",
        site_id="SITE-T",
        service_date=DOS,
        billing_provider=Organization(name="Test Clinic", npi="1245319599"),
        patient=Person(
            first_name="Test",
            last_name="Patient",
            birth_date=date(DOS.year - age, 1, 15),
            gender=sex,
        ),
        coverages=[
            Coverage(
                payer_id="P1",
                payer_name="Medicare Part B" if payer == "MB" else "Acme Health",
                filing_indicator=payer,
            )
        ],
        note=note,
        visit_type="established",
        diagnoses=[SuppliedCode(system="icd10cm", code=c) for c in dx],
        procedures=[SuppliedCode(system="cpt" if c[0].isdigit() else "hcpcs", code=c) for c in px],
    )
    base.update(kw)
    return Encounter(**base)


def dx_codes(result) -> list[str]:
    return [d.code for d in result.diagnoses]


def px_codes(result) -> list[str]:
    return [p.code for p in result.procedures]


def px(result, code: str):
    return next(p for p in result.procedures if p.code == code)


def engine_gates():
    """Every Gate the engine's modules hold, however nested in their globals. (Not
    ``gc.get_objects()``: a service started in this process earlier in the run calls
    ``gc.freeze()``, which hides every object made before it.)"""
    from services.coding.domain import diagnoses, em, engine, procedures, rules, specificity, text
    from services.coding.domain.prefilter import Gate

    found: dict[int, Gate] = {}
    seen: set[int] = set()
    stack: list[object] = [
        vars(m) for m in (diagnoses, em, engine, procedures, rules, specificity, text)
    ]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, Gate):
            found[id(obj)] = obj
        elif isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            stack.extend(obj)
        elif isinstance(obj, type) and obj.__module__.startswith("services.coding"):
            stack.extend(vars(obj).values())
    return list(found.values())
