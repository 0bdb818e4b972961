"""Vaccines, their administration codes, and injected drugs (HCPCS J-codes with units).

Administration: 90460/90461 for patients under 19 when counseling is
documented, else 90471/90472 (injection) and 90473/90474 (nasal/oral); Medicare
uses G0008/G0009/G0010 for influenza, pneumococcal and hepatitis B vaccines.
Drug units are the documented dose divided by the HCPCS billing unit, rounded up.
"""

from __future__ import annotations

import re
from decimal import Decimal

from services.coding.domain.lines import Px, Visit, units_for

# ----------------------------------------------------------------------------- vaccines

# regex, CPT, components (for 90461), route
VACCINES: list[tuple[str, str, int, str]] = [
    (
        r"\bhigh[- ]dose (?:flu|influenza)\b|\bfluzone high[- ]dose\b|\bflu(?:zone)? hd\b",
        "90662",
        1,
        "im",
    ),
    (r"\badjuvanted (?:flu|influenza)\b|\bfluad\b", "90653", 1, "im"),
    (r"\bflublok\b|\brecombinant (?:flu|influenza)\b", "90673", 1, "im"),
    (
        r"\bflumist\b|\bintranasal (?:flu|influenza)\b|\blive attenuated influenza\b",
        "90660",
        1,
        "nasal",
    ),
    (r"\bquadrivalent (?:flu|influenza)\b", "90686", 1, "im"),
    (
        r"\b(?:flu|influenza)\s+(?:vaccines?|vaccinations?|shots?|immunizations?)\b|\bfluzone\b|\bflulaval\b|\bfluarix\b|\bafluria\b",
        "90656",
        1,
        "im",
    ),
    (r"\btdap\b|\bboostrix\b|\badacel\b", "90715", 3, "im"),
    (
        r"\btd (?:vaccines?|boosters?)\b|\btenivac\b|\btetanus(?:[- ]diphtheria)? (?:vaccines?|boosters?|shots?)\b",
        "90714",
        2,
        "im",
    ),
    (r"\bdtap\b|\binfanrix\b|\bdaptacel\b", "90700", 3, "im"),
    (r"\bpcv ?20\b|\bprevnar[- ]?20\b", "90677", 1, "im"),
    (r"\bpcv ?21\b|\bcapvaxive\b", "90684", 1, "im"),
    (r"\bppsv ?-?23\b|\bpneumovax\b", "90732", 1, "im"),
    (
        r"\bpneumo(?:coccal|nia) (?:conjugate )?(?:vaccines?|vaccinations?|shots?)\b",
        "90677",
        1,
        "im",
    ),
    (r"\bshingrix\b|\b(?:zoster|shingles) (?:vaccines?|vaccinations?|shots?)\b", "90750", 1, "im"),
    (
        r"\b(?:hepatitis b|hep b|engerix(?:-b)?|recombivax)\s*(?:vaccines?|vaccinations?|#\s?\d|dose|series)",
        "90746",
        1,
        "im",
    ),
    (
        r"\b(?:hepatitis a|hep a|havrix|vaqta)\s*(?:vaccines?|vaccinations?|#\s?\d|dose|series)",
        "90632",
        1,
        "im",
    ),
    (r"\bhpv-?9? (?:vaccine|vaccination|#\s?\d|dose)\b|\bgardasil\b", "90651", 1, "im"),
    (r"\bmmr\b", "90707", 3, "sc"),
    (r"\bvaricella (?:vaccines?|vaccinations?)\b|\bvarivax\b", "90716", 1, "sc"),
    (r"\bipv\b|\bipol\b|\bpolio vaccines?\b", "90713", 1, "im"),
    (r"\bhib\b|\bacthib\b|\bpedvaxhib\b", "90648", 1, "im"),
    (
        r"\bmenacwy\b|\bmenveo\b|\bmenquadfi\b|\bmeningococcal (?:conjugate )?vaccines?\b",
        "90734",
        1,
        "im",
    ),
    (r"\brotavirus (?:vaccines?|vaccinations?)\b|\brotateq\b|\brotarix\b", "90680", 1, "oral"),
    (r"\babrysvo\b", "90678", 1, "im"),
    (r"\barexvy\b|\brsv (?:vaccines?|vaccinations?)\b", "90679", 1, "im"),
]
VACCINES_RX = [(re.compile(p, re.I), c, n, r) for p, c, n, r in VACCINES]
PEDIATRIC = {
    "90746": ("90744", 20),
    "90632": ("90633", 19),
}  # adult code -> (pediatric code, below age)
_MEDICARE_ADMIN = {
    "90656": "G0008",
    "90662": "G0008",
    "90653": "G0008",
    "90673": "G0008",
    "90686": "G0008",
    "90660": "G0008",
    "90677": "G0009",
    "90684": "G0009",
    "90732": "G0009",
    "90746": "G0010",
}


_COUNSELED = re.compile(
    r"\bcounsel\w*|\bVIS\b|\bvaccine information statement|\brisks and benefits", re.I
)


def vaccine_admin(vaccines: list[tuple[Px, int, str]], v: Visit) -> list[Px]:
    """Administration codes for the vaccines given (each: line, components, route)."""
    if not vaccines:
        return []
    out: list[Px] = []
    rest = []
    for px, comps, route in vaccines:
        g = _MEDICARE_ADMIN.get(px.code) if v.medicare else None
        if g:
            out.append(
                Px(
                    g,
                    system="hcpcs",
                    dx=("Z23",),
                    rule="admin",
                    conf=px.conf,
                    start=px.start,
                    end=px.end,
                )
            )
        else:
            rest.append((px, comps, route))
    if not rest:
        return out
    counseled = _COUNSELED.search(v.note)
    if v.age < 19 and counseled:
        extra = sum(c - 1 for _, c, _ in rest)
        out.append(Px("90460", units=Decimal(len(rest)), dx=("Z23",), rule="admin"))
        if extra:
            out.append(Px("90461", units=Decimal(extra), dx=("Z23",), rule="admin"))
        return out
    inj = [x for x in rest if x[2] in ("im", "sc")]
    other = [x for x in rest if x[2] not in ("im", "sc")]
    if inj:
        out.append(Px("90471", dx=("Z23",), rule="admin"))
        if len(inj) > 1:
            out.append(Px("90472", units=Decimal(len(inj) - 1), dx=("Z23",), rule="admin"))
        if other:
            out.append(Px("90474", units=Decimal(len(other)), dx=("Z23",), rule="admin"))
    else:
        out.append(Px("90473", dx=("Z23",), rule="admin"))
        if len(other) > 1:
            out.append(Px("90474", units=Decimal(len(other) - 1), dx=("Z23",), rule="admin"))
    return out


# ----------------------------------------------------------------------------- drugs

# regex, HCPCS, billing unit size (in ``unit``), unit, default dose
DRUGS: list[tuple[str, str, float, str, float]] = [
    (r"\bceftriaxone\b|\brocephin\b", "J0696", 250, "mg", 1000),
    (r"\bketorolac\b|\btoradol\b", "J1885", 15, "mg", 30),
    (r"\bdexamethasone\b|\bdecadron\b", "J1100", 1, "mg", 10),
    (r"\bmethylprednisolone sodium succinate\b|\bsolu-?medrol\b", "J2930", 125, "mg", 125),
    (r"\bmethylprednisolone acetate\b|\bdepo-?medrol\b", "J1030", 40, "mg", 40),
    (r"\btriamcinolone\b|\bkenalog\b", "J3301", 10, "mg", 40),
    (r"\bbetamethasone\b|\bcelestone\b", "J0702", 6, "mg", 6),
    (r"\bpromethazine\b|\bphenergan\b", "J2550", 50, "mg", 25),
    (r"\bondansetron\b|\bzofran\b", "J2405", 1, "mg", 4),
    (
        r"\bcyanocobalamin\b|\bvitamin b-?12\b|\bb12 (?:injection|shot)\b",
        "J3420",
        1000,
        "mcg",
        1000,
    ),
    (r"\bpenicillin g benzathine\b|\bbicillin(?: l-?a)?\b", "J0561", 100000, "units", 1200000),
    (r"\bdiphenhydramine\b|\bbenadryl\b", "J1200", 50, "mg", 25),
    (r"\bmedroxyprogesterone\b|\bdepo-?provera\b", "J1050", 1, "mg", 150),
    (r"\btestosterone cypionate\b", "J1071", 1, "mg", 100),
    (r"\bepinephrine\b", "J0171", 0.1, "mg", 0.3),
    (r"\bdenosumab\b|\bprolia\b", "J0897", 1, "mg", 60),
    (
        r"\bpaliperidone palmitate\b|\binvega (?:sustenna|trinza|hafyera)\b",
        "J2426",
        1,
        "mg",
        156,
    ),
    (
        r"\baripiprazole (?:er|extended[- ]release|monohydrate)\b|\babilify maintena\b",
        "J0401",
        1,
        "mg",
        400,
    ),
    (r"\bhaloperidol decanoate\b|\bhaldol dec(?:anoate)?\b", "J1631", 50, "mg", 100),
    (r"\bnaltrexone\b[^.;]{0,30}\b(?:im|injection|depot|er)\b|\bvivitrol\b", "J2315", 1, "mg", 380),
    (r"\bprochlorperazine\b|\bcompazine\b", "J0780", 10, "mg", 10),
]
DRUGS_RX = [(re.compile(p, re.I), c, per, u, d) for p, c, per, u, d in DRUGS]
_DOSE = re.compile(r"(\d+(?:,\d{3})*(?:\.\d+)?)\s*(million units|units|mcg|mg|g|grams?)\b", re.I)
INJECTED = re.compile(
    r"\b(?:im|intramuscular(?:ly)?|sc|sq|subq|subcutaneous(?:ly)?|injection|injected|shot|iv push)\b",
    re.I,
)
ORAL = re.compile(r"\b(?:po|by mouth|orally|oral|odt|tablets?|elixir|liquid)\b", re.I)
_METHYLPRED_SIZE = {20: "J1020", 40: "J1030", 80: "J1040"}


def dose_in(text: str, unit: str) -> float | None:
    m = _DOSE.search(text)
    if not m:
        return None
    n = float(m.group(1).replace(",", ""))
    u = m.group(2).lower()
    if u.startswith("million"):
        n, u = n * 1_000_000, "units"
    if u in ("g", "gram", "grams") and unit == "mg":
        n *= 1000
    if u == "mg" and unit == "mcg":
        n *= 1000
    return n


def drug_line(text: str, start: int, v: Visit, default_ok: bool) -> Px | None:
    """The HCPCS drug line for a drug named in text (None when no known drug)."""
    lines = drug_lines(text, start, v, default_ok)
    return lines[0] if lines else None


def drug_lines(text: str, start: int, v: Visit, default_ok: bool) -> list[Px]:
    """One HCPCS line per known drug named in text, in the list's order ('ketorolac
    30 mg IM + prochlorperazine 10 mg IM': two drugs, two injections)."""
    out = []
    for rx, code, per, unit, default in DRUGS_RX:
        m = rx.search(text)
        if not m:
            continue
        # the dose written after this drug's name, before the next drug's
        after = text[m.end() : m.end() + 30]
        nxt = min(
            (n.start() for r, *_ in DRUGS_RX if r is not rx and (n := r.search(after))),
            default=len(after),
        )
        dose = dose_in(text[m.start() : m.end() + nxt], unit) or (
            None if len(out) else dose_in(text, unit)
        )
        if dose is None and not default_ok:
            dose = default
        dose = dose or default
        if code == "J1030":
            code = _METHYLPRED_SIZE.get(int(dose), "J1030")
            units = Decimal(1) if code != "J1030" or dose <= 40 else units_for(dose / 40)
        else:
            units = units_for(dose / per)
        out.append(
            Px(
                code,
                system="hcpcs",
                units=units,
                start=start + m.start(),
                end=start + m.end(),
                rule="drug",
            )
        )
    return out
