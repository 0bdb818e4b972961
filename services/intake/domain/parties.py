"""People and organisations: the billing provider (and site), rendering and attending
providers, the patient and subscribers, addresses. What the input lacks the registry fills;
what neither has is left empty for ``missing`` to name."""

from __future__ import annotations

import re

from pydantic import ValidationError

from services.intake.domain.context import Ctx
from services.intake.domain.references import Ref, Res, join
from services.intake.domain.states import ZERO_ZIP, usps_state
from services.intake.domain.systems import (
    EIN_SYSTEM,
    MRN_SYSTEM,
    NPI_SYSTEM,
    SITE_SYSTEM,
    TAXONOMY_SYSTEM,
    npi_is_valid,
)
from shared.events import UNASSIGNED_SITE, Address, Organization, Person, Provider

_GENDER = {"male": "M", "female": "F", "other": "U", "unknown": "U"}
_ZIP = re.compile(r"\d{5}(-?\d{4})?")
_TITLES = re.compile(r"^(dr|mr|mrs|ms|miss|prof|doctor)\.?\s+", re.I)
_PERFORMER_ORDER = ("PPRF", "SPRF", "ATND", "PART", "")


# --------------------------------------------------------------------------- addresses


def address(ctx: Ctx, res: dict, path: str) -> Address | None:
    """The first home/work/billing address (else the first not ``old``), with the state as a
    USPS code. Incomplete or malformed: None (malformed values are warnings)."""
    read = ctx.read
    addrs = [(ap, a) for ap, a in read.objs(res, "address", path) if a.get("use") != "old"]
    if not addrs:
        return None
    preferred = [x for x in addrs if x[1].get("use") in ("home", "work", "billing")]
    ap, a = (preferred or addrs)[0]
    lines = read.strs(a, "line", ap)
    city, state = read.str_(a, "city", ap), read.str_(a, "state", ap)
    postal = read.str_(a, "postalCode", ap)
    if not (lines and city and state and postal):
        return None
    code = usps_state(state)
    if code is None:
        return read.warn(f"{ap}.state", "expected a US state (USPS code or name)")
    if code in ZERO_ZIP and postal.isdigit() and len(postal) in (4, 8):
        postal = "0" + postal  # its leading zero lost to a numeric column
    if not _ZIP.fullmatch(postal):
        return read.warn(f"{ap}.postalCode", "expected a ZIP or ZIP+4 code")
    try:
        return Address(
            line1=lines[0],
            line2=", ".join(lines[1:]) or None,
            city=city,
            state=code,
            postal_code=postal,
        )
    except ValidationError:
        return read.warn(ap, "expected an address the claim can carry")


def zip4(a: Address | None) -> bool:
    return a is not None and len(a.postal_code.replace("-", "")) == 9


# --------------------------------------------------------------------------- billing provider


def billing_provider(ctx: Ctx, enc: Res) -> tuple[Organization, str]:
    """The billing Organization and the site id: ``Encounter.serviceProvider`` (any reference
    form), filled from the registry's site (matched by site identifier, NPI or name)."""
    read, ep = ctx.read, enc.path
    ref = ctx.resolve(
        enc.data.get("serviceProvider"), join(ep, "serviceProvider"), enc, "Organization"
    )
    name = npi = tax_id = site_ident = taxonomy = None
    addr = None
    aliases: list[str] = []
    if ref.res is not None:
        op, org = ref.res.path, ref.res.data
        name = read.str_(org, "name", op)
        npi = read.ident(org, op, NPI_SYSTEM)
        tax_id = read.ident(org, op, EIN_SYSTEM)
        site_ident = read.ident(org, op, SITE_SYSTEM)
        taxonomy = taxonomy_of(ctx, org, "type", op)
        addr = address(ctx, org, op)
        aliases = read.strs(org, "alias", op)
    elif ref.identifier is not None:
        system, value = ref.identifier
        npi = value if system == NPI_SYSTEM else None
        site_ident = value if system == SITE_SYSTEM else None
    name = name or ref.display
    site = None
    if ctx.registry is not None:
        reg = ctx.registry
        site = (
            (site_ident and reg.site(site_ident))
            or (npi and reg.site_by_npi(npi))
            or next((s for n in [name, *aliases] if n and (s := reg.site_by_name(n))), None)
            or (ctx.default_site and reg.site(ctx.default_site))
            or None
        )
    if site is not None:
        name = name or site.name
        if site.npi and not (npi and npi_is_valid(npi)):
            npi = site.npi
        if site.tax_id and not _ein_ok(tax_id):
            tax_id = site.tax_id
        if site.address is not None and not zip4(addr):
            addr = site.address
        taxonomy = taxonomy or site.taxonomy
    site_id = site_ident or (site.site_id if site else None) or npi or ctx.default_site
    if not site_id or len(site_id) > 32:
        if site_id:
            ctx.warn(join(ep, "serviceProvider"), "site identifier longer than 32 characters")
        site_id = UNASSIGNED_SITE
        ctx.need("site_id")
    if npi and not npi_is_valid(npi):
        ctx.warn(join(ep, "serviceProvider"), "billing provider NPI fails the check digit")
    org_model = Organization(name=name, npi=npi, tax_id=tax_id, address=addr, taxonomy=taxonomy)
    return org_model, site_id


def _ein_ok(tax_id: str | None) -> bool:
    digits = (tax_id or "").replace("-", "")
    return len(digits) == 9 and digits.isdigit()


def taxonomy_of(ctx: Ctx, res: dict, key: str, path: str) -> str | None:
    """NUCC taxonomy from Organization.type or Practitioner.qualification.code."""
    for cp, cc in ctx.read.objs(res, key, path):
        if key == "qualification":
            cc, cp = cc.get("code") or {}, f"{cp}.code"
        for system, code, _ in ctx.read.concept(cc, cp)[0]:
            if system == TAXONOMY_SYSTEM and code:
                return code
    return None


# --------------------------------------------------------------------------- practitioners


def participants(ctx: Ctx, enc: Res) -> tuple[Provider | None, Provider | None]:
    """(rendering, attending): the participant typed PPRF (else SPRF, ATND, PART, untyped,
    in that order) and the one typed ATND. A participant that does not resolve is a warning;
    one whose NPI or name is unknown leaves the provider empty and names it missing."""
    read, ep = ctx.read, enc.path
    found: list[tuple[set[str], Ref, str]] = []
    for pp, part in read.objs(enc.data, "participant", ep):
        key = "individual" if "individual" in part else "actor"
        if part.get(key) is None:
            continue
        ref = ctx.resolve(
            part[key],
            f"{pp}.{key}",
            enc,
            "Practitioner",
            "PractitionerRole",
            "RelatedPerson",
            "Patient",
            "Device",
            "HealthcareService",
        )
        if ref.res is not None and ref.res.type == "PractitionerRole":
            role = ref.res
            inner = ctx.resolve(
                role.data.get("practitioner"), f"{role.path}.practitioner", role, "Practitioner"
            )
            ref = inner if inner.res or inner.identifier or inner.display else ref
        if ref.res is not None and ref.res.type != "Practitioner":
            continue
        if ref.res is None and ref.type not in (None, "Practitioner", "PractitionerRole"):
            continue
        roles = {c for tp, cc in read.objs(part, "type", pp) for _, c, _ in read.concept(cc, tp)[0]}
        found.append(({r for r in roles if r}, ref, f"{pp}.{key}"))
    if not found:
        return None, None

    def pick(role: str) -> tuple[Ref, str] | None:
        for roles, ref, path in found:
            if (role in roles) if role else True:
                return ref, path
        return None

    rendering = next((hit for r in _PERFORMER_ORDER if (hit := pick(r))), None)
    attending = pick("ATND")
    out_r = provider(ctx, *rendering, "rendering_provider") if rendering else None
    out_a = provider(ctx, *attending, "institutional.attending") if attending else None
    return out_r, out_a


def provider(ctx: Ctx, ref: Ref, path: str, field: str) -> Provider | None:
    read = ctx.read
    npi = first = last = taxonomy = None
    if ref.res is not None:
        p, res = ref.res.path, ref.res.data
        npi = read.ident(res, p, NPI_SYSTEM)
        first, last = name_of(ctx, res, p)
        taxonomy = taxonomy_of(ctx, res, "qualification", p)
    elif ref.identifier is not None and ref.identifier[0] == NPI_SYSTEM:
        npi = ref.identifier[1]
    if not (first and last) and ref.display:
        first, last = _display_name(ref.display)
    known = ctx.registry.provider(npi) if ctx.registry is not None and npi else None
    if known is not None:
        first, last = known.first_name, known.last_name
        taxonomy = taxonomy or known.taxonomy
    if not npi:
        ctx.need(f"{field}.npi")
        return None
    if not npi_is_valid(npi):
        ctx.warn(path, "provider NPI fails the check digit")
        ctx.need(f"{field}.npi")
    if not (first and last):
        ctx.need(f"{field}.name")
        return None
    return Provider(npi=npi, first_name=first, last_name=last, taxonomy=taxonomy)


def _display_name(display: str) -> tuple[str | None, str | None]:
    """ "Dr. Ana Luz Ferreira" -> (Ana, Ferreira); "Ferreira, Ana" -> (Ana, Ferreira)."""
    text = _TITLES.sub("", display.strip())
    if "," in text:
        last, _, rest = text.partition(",")
        words = rest.split()
        if words and not re.fullmatch(r"(?i)(md|do|np|pa|rn|phd|jr|sr)\.?", words[0]):
            return words[0], last.strip() or None
        text = last
    words = text.split()
    return (words[0], words[-1]) if len(words) >= 2 else (None, None)


# --------------------------------------------------------------------------- people


def name_of(ctx: Ctx, res: dict, p: str) -> tuple[str | None, str | None]:
    """(first given, family) of the official name, else usual, else the first not ``old``;
    a name given only as ``text`` is split at its last word."""
    read = ctx.read
    names = [(np, n) for np, n in read.objs(res, "name", p) if n.get("use") != "old"]
    if not names:
        return None, None
    ranked = sorted(names, key=lambda x: {"official": 0, "usual": 1}.get(str(x[1].get("use")), 2))
    np, name = ranked[0]
    last, given = read.str_(name, "family", np), read.strs(name, "given", np)
    if not (last and given) and (text := read.str_(name, "text", np)):
        words = text.split()
        if len(words) >= 2:
            return given[0] if given else words[0], last or words[-1]
    return (given[0] if given else None), last


def person(ctx: Ctx, r: Res) -> Person:
    """A Patient or RelatedPerson: name, birth date, gender, MRN, address (each may be absent)."""
    read, p, res = ctx.read, r.path, r.data
    first, last = name_of(ctx, res, p)
    birth_date = read.date_(res, "birthDate", p, full=True)
    gender = read.str_(res, "gender", p) or "unknown"
    if gender not in _GENDER:
        read.warn(f"{p}.gender", "expected male, female, other or unknown")
    mrn = None
    for ip, ident in read.objs(res, "identifier", p):
        codes = [c for _, c, _ in read.concept(ident.get("type") or {}, f"{ip}.type")[0]]
        if read.str_(ident, "system", ip) == MRN_SYSTEM or "MR" in codes:
            mrn = read.str_(ident, "value", ip)
            break
    return Person(
        patient_id=mrn,
        first_name=first,
        last_name=last,
        birth_date=birth_date,
        gender=_GENDER.get(gender, "U"),
        address=address(ctx, res, p),
    )


def patient(ctx: Ctx, enc: Res) -> tuple[Person, Res | None, str | None]:
    """The Encounter's subject (without one, the input's only Patient): the Person, its
    resource, and a key that identifies the patient even when the input lacks the resource."""
    ep = enc.path
    subject = enc.data.get("subject")
    if subject is None:
        patients = ctx.index.of_type("Patient")
        if len(patients) == 1:
            return person(ctx, patients[0]), patients[0], f"Patient/{patients[0].id}"
        if len(patients) > 1:
            ctx.warn(f"{ep}.subject", "required when the input holds several Patients")
        return Person(), None, None
    ref = ctx.resolve(subject, f"{ep}.subject", enc, "Patient")
    if ref.res is not None:
        return person(ctx, ref.res), ref.res, f"Patient/{ref.res.id}"
    key = subject.get("reference") if isinstance(subject, dict) else None
    return Person(), None, key if isinstance(key, str) else None
