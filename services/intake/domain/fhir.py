"""FHIR R4 intake: a Bundle, or the native JSON encounter, becomes an ``Encounter``.

The mapping is documented in docs/fhir-intake.md; keep the two in step.
Problems are collected with a JSON path (``entry[3].resource.period.start``)
and raised together as one ``IntakeError``. Messages name the path and what
was expected, never the value found: values may be PHI.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from math import isfinite
from typing import Any

from pydantic import ValidationError

from shared.events import (
    Address,
    Coverage,
    Encounter,
    Institutional,
    Organization,
    Person,
    Provider,
    SuppliedCode,
)

NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
EIN_SYSTEM = "urn:oid:2.16.840.1.113883.4.4"
SITE_SYSTEM = "urn:rcm:site"
PAYER_SYSTEM = "urn:rcm:payer-id"
ENCOUNTER_SYSTEM = "urn:rcm:encounter"
PRIOR_AUTH_SYSTEM = "urn:rcm:prior-auth"
MRN_SYSTEM = "urn:rcm:mrn"
FILING_INDICATOR_URL = "urn:rcm:claim-filing-indicator"
TYPE_OF_BILL_URL = "urn:rcm:type-of-bill"
ADMISSION_DATE_URL = "urn:rcm:admission-date"
ADMISSION_TYPE_SYSTEM = "urn:rcm:ub04-admission-type"
POINT_OF_ORIGIN_SYSTEM = "urn:rcm:ub04-point-of-origin"
PATIENT_STATUS_SYSTEM = "urn:rcm:ub04-patient-status"
TAXONOMY_SYSTEM = "http://nucc.org/provider-taxonomy"
POS_SYSTEM = (
    "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set.html"
)
RELATIONSHIP_SYSTEM = "http://terminology.hl7.org/CodeSystem/subscriber-relationship"
ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PARTICIPATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"

CODE_SYSTEM_URIS = {
    "icd10cm": "http://hl7.org/fhir/sid/icd-10-cm",
    "cpt": "http://www.ama-assn.org/go/cpt",
    "hcpcs": "urn:oid:2.16.840.1.113883.6.285",
    "icd10pcs": "http://www.cms.gov/Medicare/Coding/ICD10",
}
_SYSTEM_BY_URI = {uri: name for name, uri in CODE_SYSTEM_URIS.items()} | {
    "urn:oid:2.16.840.1.113883.6.90": "icd10cm",
    "urn:oid:2.16.840.1.113883.6.12": "cpt",
    "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets": "hcpcs",
    "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets": "hcpcs",
    "urn:oid:2.16.840.1.113883.6.4": "icd10pcs",
}

_CLASS = {
    "AMB": "AMB",
    "EMER": "EMER",
    "IMP": "IMP",
    "ACUTE": "IMP",
    "NONAC": "IMP",
    "OBSENC": "OBSENC",
    "SS": "OBSENC",
    "HH": "HH",
    "VR": "VR",
}
CLASS_PLACE_OF_SERVICE = {
    "AMB": "11",
    "EMER": "23",
    "IMP": "21",
    "OBSENC": "22",
    "HH": "12",
    "VR": "02",
}
_GENDER = {"male": "M", "female": "F", "other": "U", "unknown": "U"}
# FHIR subscriber-relationship codes, and the X12 codes, onto the model's four values.
_RELATIONSHIP = {
    "self": "self",
    "spouse": "spouse",
    "common": "spouse",
    "child": "child",
    "parent": "other",
    "other": "other",
    "injured": "other",
    "18": "self",
    "01": "spouse",
    "19": "child",
    "G8": "other",
}
X12_FILING_INDICATORS = frozenset(
    "11 12 13 14 15 16 17 AM BL CH CI DS FI HM LM MA MB MC OF TV VA WC ZZ".split()
)
# Source of Payment Typology (PHDSC) prefixes and v3 ActCode coverage types.
_SOPT_SYSTEMS = ("https://nahdo.org/sopt", "urn:oid:2.16.840.1.113883.3.221.5")
_SOPT = (
    ("311", "CH"),
    ("32", "VA"),
    ("11", "16"),
    ("1", "MB"),
    ("2", "MC"),
    ("511", "HM"),
    ("5", "CI"),
    ("6", "BL"),
    ("95", "WC"),
)
_ACT_COVERAGE = {"HMO": "HM", "MCPOL": "HM", "EHCPOL": "CI", "HIP": "CI", "WCBPOL": "WC"}
_FILING_WORDS = (
    ("medicare part a", "MA"),
    ("medicare advantage", "16"),
    ("medicare", "MB"),
    ("medicaid", "MC"),
    ("tricare", "CH"),
    ("champus", "CH"),
    ("veteran", "VA"),
    ("workers", "WC"),
    ("blue cross", "BL"),
    ("blue shield", "BL"),
    ("bcbs", "BL"),
    ("hmo", "HM"),
    ("commercial", "CI"),
    ("private", "CI"),
)
# FHIR admit-source / discharge-disposition / v3 priority onto UB-04 codes.
_ADMIT_SOURCE = {
    "gp": "1",
    "mp": "1",
    "emd": "1",
    "outp": "2",
    "hosp-trans": "4",
    "nursing": "5",
    "psych": "6",
    "rehab": "6",
    "born": "9",
    "other": "9",
}
_DISCHARGE = {
    "home": "01",
    "alt-home": "01",
    "hosp": "02",
    "snf": "03",
    "aadvice": "07",
    "exp": "20",
    "rehab": "62",
    "long": "63",
    "psy": "65",
    "other-hcf": "70",
    "oth": "70",
}
_PRIORITY = {"EM": "1", "UR": "2", "EL": "3", "R": "3"}

_ABS_REF = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"(\d{4}-\d{2}-\d{2})(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?")
_POS_CODE = re.compile(r"\d{2}")
_ESTABLISHED = re.compile(r"\bestablished\b|\best\b", re.I)
_NEW = re.compile(r"\bnew\b", re.I)
_MINUTES = {
    "min": Decimal(1),
    "mins": Decimal(1),
    "minute": Decimal(1),
    "minutes": Decimal(1),
    "h": Decimal(60),
    "hr": Decimal(60),
    "hour": Decimal(60),
    "hours": Decimal(60),
    "s": Decimal(1) / 60,
    "d": Decimal(1440),
}


class IntakeError(ValueError):
    """Malformed intake. ``errors`` holds ``{"path", "message"}`` dicts; no PHI anywhere."""

    def __init__(self, errors: list[dict[str, str]]):
        self.errors = errors
        shown = "; ".join(f"{e['path']}: {e['message']}" for e in errors[:10])
        more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
        super().__init__(f"invalid encounter intake: {shown}{more}")


def parse_intake(data: object) -> Encounter:
    """Read a FHIR R4 Bundle or the native JSON encounter (bare or as an
    ``encounter.documented`` envelope with ``payload``); JSON text is accepted too.

    Raises ``IntakeError`` listing every problem found, each with its JSON path.
    """
    if isinstance(data, (str, bytes, bytearray)):
        try:
            data = json.loads(data)
        except ValueError:
            raise IntakeError([{"path": "$", "message": "expected JSON text"}]) from None
    if not isinstance(data, dict):
        raise IntakeError([{"path": "$", "message": "expected a JSON object"}])
    if "resourceType" not in data:
        return _parse_native(data)
    if data["resourceType"] != "Bundle":
        msg = "expected 'Bundle' (or a native encounter, which has no resourceType)"
        raise IntakeError([{"path": "resourceType", "message": msg}])
    return _Bundle(data).encounter()


def _parse_native(data: dict) -> Encounter:
    prefix, body = "", data
    if "encounter_id" not in data and isinstance(data.get("payload"), dict):
        prefix, body = "payload", data["payload"]
    try:
        return Encounter.model_validate(body)
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False)
        raise IntakeError(
            [{"path": _loc_path(prefix, e["loc"]), "message": e["msg"]} for e in errors]
        ) from None


def _loc_path(prefix: str, loc: tuple) -> str:
    out = prefix
    for part in loc:
        out = f"{out}[{part}]" if isinstance(part, int) else (f"{out}.{part}" if out else part)
    return out or "$"


def narrative_text(div: str) -> str:
    """Plain text of XHTML narrative: block ends and <br/> become line breaks."""
    text = re.sub(r"(?i)<br\s*/?>", "\n", div)
    text = re.sub(r"(?i)</(p|div|li|tr|h[1-6]|pre|table|ul|ol)\s*>", "\n", text)
    text = html.unescape(re.sub(r"<[^>]*>", "", text))
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _visit_hint(text: str | None) -> str | None:
    if not text:
        return None
    code = text.strip()
    if code.isdigit() and len(code) == 5:  # CPT E/M codes say new vs established
        n = int(code)
        if 99202 <= n <= 99205 or 99381 <= n <= 99387:
            return "new"
        if 99211 <= n <= 99215 or 99391 <= n <= 99397:
            return "established"
        return None
    # "established" first: "established patient, new problem" is established.
    if _ESTABLISHED.search(text):
        return "established"
    return "new" if _NEW.search(text) else None


class _Bundle:
    """One pass over a Bundle: index resources, then read the Encounter's graph."""

    def __init__(self, bundle: dict):
        self.errors: list[dict[str, str]] = []
        self.resources: list[tuple[str, dict]] = []  # (path, resource)
        self.index: dict[str, int] = {}  # fullUrl and Type/id -> position in resources
        self.enc_n: int | None = None  # the Encounter's position, once found
        entries = bundle.get("entry")
        if not isinstance(entries, list):
            raise IntakeError([{"path": "entry", "message": "expected a list of bundle entries"}])
        for i, entry in enumerate(entries):
            self._add(i, entry)

    # ---------------------------------------------------------------- plumbing

    def err(self, path: str, message: str) -> None:
        self.errors.append({"path": path, "message": message})

    def _add(self, i: int, entry: Any) -> None:
        p = f"entry[{i}]"
        if not isinstance(entry, dict):
            return self.err(p, "expected an object")
        res = entry.get("resource")
        if not isinstance(res, dict):
            return self.err(f"{p}.resource", "expected a resource object")
        rt = res.get("resourceType")
        if not isinstance(rt, str) or not rt:
            return self.err(f"{p}.resource.resourceType", "expected a string")
        n = len(self.resources)
        self.resources.append((f"{p}.resource", res))
        keys: dict[str, str] = {}
        full = entry.get("fullUrl")
        if isinstance(full, str) and full:
            keys[full] = f"{p}.fullUrl"
            m = _ABS_REF.search(full)
            if m and m.group(1) == rt:
                keys[f"{rt}/{m.group(2)}"] = f"{p}.fullUrl"
        elif full is not None:
            self.err(f"{p}.fullUrl", "expected a string")
        rid = res.get("id")
        if isinstance(rid, str) and rid:
            keys[f"{rt}/{rid}"] = f"{p}.resource.id"
        elif rid is not None:
            self.err(f"{p}.resource.id", "expected a string")
        for key, where in keys.items():
            if self.index.setdefault(key, n) != n:
                self.err(where, "duplicate resource identity in the bundle")

    def str_(self, obj: dict, key: str, path: str) -> str | None:
        v = obj.get(key)
        if v is not None and not isinstance(v, str):
            return self.err(f"{path}.{key}", "expected a string")
        return (v.strip() or None) if v else None

    def obj(self, obj: dict, key: str, path: str) -> dict | None:
        v = obj.get(key)
        if v is not None and not isinstance(v, dict):
            return self.err(f"{path}.{key}", "expected an object")
        return v

    def objs(self, obj: dict, key: str, path: str) -> list[tuple[str, dict]]:
        v = obj.get(key)
        if v is None:
            return []
        if not isinstance(v, list):
            self.err(f"{path}.{key}", "expected a list")
            return []
        out = []
        for i, item in enumerate(v):
            if isinstance(item, dict):
                out.append((f"{path}.{key}[{i}]", item))
            else:
                self.err(f"{path}.{key}[{i}]", "expected an object")
        return out

    def strs(self, obj: dict, key: str, path: str) -> list[str]:
        v = obj.get(key)
        if v is None:
            return []
        if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
            self.err(f"{path}.{key}", "expected a list of strings")
            return []
        return [s.strip() for s in v if s.strip()]

    def concept(self, cc: Any, path: str) -> tuple[list[tuple], str | None]:
        """Codings ``(system, code, display)`` and text of a CodeableConcept."""
        if not isinstance(cc, dict):
            self.err(path, "expected a CodeableConcept object")
            return [], None
        codings = [
            (self.str_(c, "system", cp), self.str_(c, "code", cp), self.str_(c, "display", cp))
            for cp, c in self.objs(cc, "coding", path)
        ]
        return codings, self.str_(cc, "text", path)

    def ident(self, res: dict, path: str, system: str) -> str | None:
        for ip, ident in self.objs(res, "identifier", path):
            if self.str_(ident, "system", ip) == system:
                return self.str_(ident, "value", ip)
        return None

    def ext(self, res: dict, url: str, path: str) -> tuple[str, str] | None:
        for xp, ext in self.objs(res, "extension", path):
            if ext.get("url") != url:
                continue
            for key in ("valueString", "valueCode", "valueDate"):
                if key in ext:
                    value = self.str_(ext, key, xp)
                    return (f"{xp}.{key}", value) if value else None
            if isinstance(ext.get("valueIdentifier"), dict):
                value = self.str_(ext["valueIdentifier"], "value", f"{xp}.valueIdentifier")
                return (f"{xp}.valueIdentifier.value", value) if value else None
            self.err(xp, "expected valueString, valueCode, valueDate or valueIdentifier")
        return None

    def lookup(self, ref: Any) -> int | None:
        target = ref.get("reference") if isinstance(ref, dict) else None
        if not isinstance(target, str):
            return None
        target = target.strip()
        n = self.index.get(target)
        if n is None and (m := _ABS_REF.search(target)):
            n = self.index.get(f"{m.group(1)}/{m.group(2)}")
        return n

    def deref(self, ref: Any, path: str, types: tuple[str, ...]) -> int | None:
        """Index of the resource a Reference points to; records why when it cannot."""
        if not isinstance(ref, dict):
            return self.err(path, "expected a Reference object")
        if not isinstance(ref.get("reference"), str) or not ref["reference"].strip():
            return self.err(f"{path}.reference", "expected a reference (fullUrl or Type/id)")
        n = self.lookup(ref)
        if n is None:
            return self.err(f"{path}.reference", "does not resolve to a resource in the bundle")
        if self.resources[n][1]["resourceType"] not in types:
            return self.err(f"{path}.reference", f"expected a reference to {' or '.join(types)}")
        return n

    def ours(self, holder: dict, key: str) -> bool:
        """True unless ``holder[key]`` points only at other encounters."""
        refs = holder.get(key)
        if refs is None:
            return True
        refs = refs if isinstance(refs, list) else [refs]
        return any(self.lookup(r) == self.enc_n for r in refs)

    def model(self, cls: type, values: dict, path: str, where: dict[str, str]) -> Any:
        """Build a shared model, reporting its validation errors at FHIR paths."""
        try:
            return cls(**values)
        except ValidationError as exc:
            for e in exc.errors(include_input=False, include_url=False):
                field = e["loc"][0] if e["loc"] else None
                self.err(where.get(field, path) if isinstance(field, str) else path, e["msg"])
            return None

    def date_(self, obj: dict, key: str, path: str, *, full: bool = False) -> date | None:
        """A FHIR date (``full``) or dateTime; a dateTime gives its date as written."""
        raw = self.str_(obj, key, path)
        if raw is None:
            return None
        m = (_DATE if full else _DATETIME).fullmatch(raw)
        if not m:
            what = "a full date (YYYY-MM-DD)" if full else "a date or dateTime"
            return self.err(f"{path}.{key}", f"expected {what}")
        try:
            return date.fromisoformat(m.group(0)[:10])
        except ValueError:
            return self.err(f"{path}.{key}", "expected a valid calendar date")

    # ---------------------------------------------------------------- the encounter

    def encounter(self) -> Encounter:
        encs = [n for n, (_, r) in enumerate(self.resources) if r["resourceType"] == "Encounter"]
        if len(encs) != 1:
            found = "none found" if not encs else f"found {len(encs)}"
            self.err("entry", f"expected exactly one Encounter resource; {found}")
            raise IntakeError(self.errors)
        self.enc_n = encs[0]
        ep, enc = self.resources[self.enc_n]
        id_path = f"{ep}.id"
        encounter_id = self.ident(enc, ep, ENCOUNTER_SYSTEM)
        if encounter_id:
            id_path = f"{ep}.identifier"
        else:
            encounter_id = self.str_(enc, "id", ep)
        if not encounter_id:
            self.err(
                f"{ep}.id",
                f"required: Encounter.id or an identifier with system {ENCOUNTER_SYSTEM}",
            )
        enc_class = self.enc_class(enc, ep)
        period = self.obj(enc, "period", ep) or {}
        service_date = self.date_(period, "start", f"{ep}.period")
        if service_date is None and not self.errors_at(f"{ep}.period"):
            self.err(f"{ep}.period.start", "required: the date of service")
        end_date = self.date_(period, "end", f"{ep}.period")
        if service_date and end_date and end_date < service_date:
            self.err(f"{ep}.period.end", "must not be before period.start")
        billing, site_id, org_path = self.billing_provider(enc, ep)
        rendering, attending = self.participants(enc, ep)
        patient_n = self.patient_index(enc, ep)
        patient = None
        if patient_n is not None:
            patient = self.person(*self.resources[patient_n])
            pp = self.resources[patient_n][0]
            if patient and service_date and patient.birth_date > service_date:
                self.err(f"{pp}.birthDate", "must not be after the date of service")
        prior_auth = self.ident(enc, ep, PRIOR_AUTH_SYSTEM)
        if not prior_auth and (found := self.ext(enc, PRIOR_AUTH_SYSTEM, ep)):
            prior_auth = found[1]
        values = dict(
            encounter_id=encounter_id,
            site_id=site_id,
            encounter_class=enc_class,
            service_date=service_date,
            end_date=end_date,
            length_minutes=self.length(enc, ep),
            visit_type=self.visit_type(enc, ep),
            place_of_service=self.place_of_service(enc, ep)
            or CLASS_PLACE_OF_SERVICE.get(enc_class),
            billing_provider=billing,
            rendering_provider=rendering,
            patient=patient,
            coverages=self.coverages(patient_n),
            note=self.note(),
            diagnoses=self.conditions(enc, ep),
            procedures=self.procedures(),
            prior_authorization=prior_auth,
            institutional=self.institutional(enc, ep, enc_class, service_date, attending),
        )
        if self.errors:
            raise IntakeError(self.errors)
        where = {
            "encounter_id": id_path,
            "site_id": f"{org_path}.identifier",
            "length_minutes": f"{ep}.length.value",
            "prior_authorization": f"{ep}.identifier",
        }
        result = self.model(Encounter, values, ep, where)
        if self.errors:
            raise IntakeError(self.errors)
        return result

    def errors_at(self, prefix: str) -> bool:
        return any(e["path"].startswith(prefix) for e in self.errors)

    def enc_class(self, enc: dict, ep: str) -> str:
        v, p = enc.get("class"), f"{ep}.class"
        if v is None:
            return "AMB"
        if isinstance(v, list) and v:  # R5 style: a list of CodeableConcepts
            v, p = v[0], f"{p}[0]"
        if not isinstance(v, dict):
            self.err(p, "expected a Coding")
            return "AMB"
        codes = (
            [self.str_(v, "code", p)] if "code" in v else [c for _, c, _ in self.concept(v, p)[0]]
        )
        for code in codes:
            if code in _CLASS:
                return _CLASS[code]
        self.err(f"{p}.code", "expected an encounter class: " + ", ".join(_CLASS))
        return "AMB"

    def length(self, enc: dict, ep: str) -> int | None:
        d = self.obj(enc, "length", ep)
        if d is None:
            return None
        lp = f"{ep}.length"
        value = d.get("value")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not isfinite(value):
            return self.err(f"{lp}.value", "expected a number (a Duration value)")
        unit_key = "code" if "code" in d else "unit"
        unit = self.str_(d, unit_key, lp) or "min"  # a bare number is read as minutes
        factor = _MINUTES.get(unit.lower())
        if factor is None:
            return self.err(f"{lp}.{unit_key}", "expected a UCUM time unit (min, h, s or d)")
        minutes = Decimal(str(value)) * factor
        if not 0 <= minutes <= 24 * 60:
            return self.err(f"{lp}.value", "expected a duration from 0 to 24 hours")
        return int(minutes.quantize(Decimal(1), ROUND_HALF_UP))

    def visit_type(self, enc: dict, ep: str) -> str | None:
        for tp, cc in self.objs(enc, "type", ep):
            codings, text = self.concept(cc, tp)
            for hint in [text, *(d for _, _, d in codings), *(c for _, c, _ in codings)]:
                if found := _visit_hint(hint):
                    return found
        return None

    def place_of_service(self, enc: dict, ep: str) -> str | None:
        for lp, item in self.objs(enc, "location", ep):
            n = self.deref(item.get("location"), f"{lp}.location", ("Location",))
            if n is None:
                continue
            locp, loc = self.resources[n]
            for tp, cc in self.objs(loc, "type", locp):
                for system, code, _ in self.concept(cc, tp)[0]:
                    if code and (system == POS_SYSTEM or _POS_CODE.fullmatch(code)):
                        return code
        return None

    # ---------------------------------------------------------------- parties

    def billing_provider(self, enc: dict, ep: str) -> tuple:
        if enc.get("serviceProvider") is None:
            self.err(f"{ep}.serviceProvider", "required: a reference to the billing Organization")
            return None, None, ep
        n = self.deref(enc["serviceProvider"], f"{ep}.serviceProvider", ("Organization",))
        if n is None:
            return None, None, ep
        op, org = self.resources[n]
        name = self.str_(org, "name", op)
        if not name:
            self.err(f"{op}.name", "required: the billing provider's name")
        npi = self.ident(org, op, NPI_SYSTEM)
        site_id = self.ident(org, op, SITE_SYSTEM) or npi
        if not site_id:
            self.err(
                f"{op}.identifier",
                f"required: an identifier with system {SITE_SYSTEM} or {NPI_SYSTEM}",
            )
        values = dict(
            name=name,
            npi=npi,
            tax_id=self.ident(org, op, EIN_SYSTEM),
            address=self.address(org, op),
            taxonomy=self.taxonomy(org, "type", op),
        )
        org_model = self.model(Organization, values, op, {"name": f"{op}.name"}) if name else None
        return org_model, site_id, op

    def taxonomy(self, res: dict, key: str, path: str) -> str | None:
        """NUCC taxonomy from Organization.type or Practitioner.qualification.code."""
        for cp, cc in self.objs(res, key, path):
            if key == "qualification":
                cc, cp = cc.get("code") or {}, f"{cp}.code"
            for system, code, _ in self.concept(cc, cp)[0]:
                if system == TAXONOMY_SYSTEM and code:
                    return code
        return None

    def participants(self, enc: dict, ep: str) -> tuple[Provider | None, Provider | None]:
        rendering = attending = fallback = None
        for pp, part in self.objs(enc, "participant", ep):
            if part.get("individual") is None:
                continue
            types = ("Practitioner", "PractitionerRole", "RelatedPerson")
            n = self.deref(part["individual"], f"{pp}.individual", types)
            if n is not None and self.resources[n][1]["resourceType"] == "PractitionerRole":
                rp, role = self.resources[n]
                n = self.deref(role.get("practitioner"), f"{rp}.practitioner", ("Practitioner",))
            if n is None or self.resources[n][1]["resourceType"] != "Practitioner":
                continue
            provider = self.provider(*self.resources[n])
            roles = {
                c for tp, cc in self.objs(part, "type", pp) for _, c, _ in self.concept(cc, tp)[0]
            }
            if "ATND" in roles and attending is None:
                attending = provider
            if "PPRF" in roles and rendering is None:
                rendering = provider
            fallback = fallback or provider
        return rendering or fallback, attending

    def provider(self, p: str, res: dict) -> Provider | None:
        npi = self.ident(res, p, NPI_SYSTEM)
        if not npi:  # not billable as rendering/attending without an NPI
            return None
        first, last, name_p = self.name(res, p)
        if not (first and last):
            return None
        values = dict(
            npi=npi,
            first_name=first,
            last_name=last,
            taxonomy=self.taxonomy(res, "qualification", p),
        )
        return self.model(Provider, values, p, {"npi": f"{p}.identifier"})

    def name(self, res: dict, p: str) -> tuple[str | None, str | None, str]:
        names = [(np, n) for np, n in self.objs(res, "name", p) if n.get("use") != "old"]
        if not names:
            self.err(f"{p}.name", "required: a name with family and given")
            return None, None, f"{p}.name"
        np, name = next(((np, n) for np, n in names if n.get("use") == "official"), names[0])
        last, given = self.str_(name, "family", np), self.strs(name, "given", np)
        if not last:
            self.err(f"{np}.family", "required: the family name")
        if not given:
            self.err(f"{np}.given", "required: at least one given name")
        return (given[0] if given else None), last, np

    def patient_index(self, enc: dict, ep: str) -> int | None:
        if enc.get("subject") is not None:
            return self.deref(enc["subject"], f"{ep}.subject", ("Patient",))
        patients = [n for n, (_, r) in enumerate(self.resources) if r["resourceType"] == "Patient"]
        if len(patients) == 1:
            return patients[0]
        if not patients:
            return self.err("entry", "expected a Patient resource (the Encounter's subject)")
        return self.err(f"{ep}.subject", "required when the bundle holds several Patients")

    def person(self, p: str, res: dict) -> Person | None:
        first, last, name_p = self.name(res, p)
        birth_date = self.date_(res, "birthDate", p, full=True)
        if birth_date is None and "birthDate" not in res:
            self.err(f"{p}.birthDate", "required: the birth date (YYYY-MM-DD)")
        gender = self.str_(res, "gender", p) or "unknown"
        if gender not in _GENDER:
            self.err(f"{p}.gender", "expected male, female, other or unknown")
        mrn = None
        for ip, ident in self.objs(res, "identifier", p):
            codes = [c for _, c, _ in self.concept(ident.get("type") or {}, f"{ip}.type")[0]]
            if self.str_(ident, "system", ip) == MRN_SYSTEM or "MR" in codes:
                mrn = self.str_(ident, "value", ip)
                break
        values = dict(
            patient_id=mrn,
            first_name=first,
            last_name=last,
            birth_date=birth_date,
            gender=_GENDER.get(gender, "U"),
            address=self.address(res, p),
        )
        if None in (first, last, birth_date):
            return None
        where = {
            "first_name": f"{name_p}.given",
            "last_name": f"{name_p}.family",
            "birth_date": f"{p}.birthDate",
        }
        return self.model(Person, values, p, where)

    def address(self, res: dict, p: str) -> Address | None:
        addrs = [(ap, a) for ap, a in self.objs(res, "address", p) if a.get("use") != "old"]
        if not addrs:
            return None
        ap, a = next(((ap, a) for ap, a in addrs if a.get("use") in ("home", "work")), addrs[0])
        lines = self.strs(a, "line", ap)
        city, state = self.str_(a, "city", ap), self.str_(a, "state", ap)
        postal = self.str_(a, "postalCode", ap)
        if not (lines and city and state and postal):
            return None  # incomplete: the claim scrub reports the missing address
        values = dict(
            line1=lines[0],
            line2=", ".join(lines[1:]) or None,
            city=city,
            state=state,
            postal_code=postal,
        )
        where = {
            "line1": f"{ap}.line",
            "line2": f"{ap}.line",
            "city": f"{ap}.city",
            "state": f"{ap}.state",
            "postal_code": f"{ap}.postalCode",
        }
        return self.model(Address, values, ap, where)

    # ---------------------------------------------------------------- coverage

    def coverages(self, patient_n: int | None) -> list[Coverage]:
        found: list[tuple[int | None, str, dict]] = []
        for cp, cov in self.resources:
            if cov["resourceType"] != "Coverage" or cov.get("status") in (
                "cancelled",
                "entered-in-error",
            ):
                continue
            if cov.get("beneficiary") is not None:
                b = self.deref(cov["beneficiary"], f"{cp}.beneficiary", ("Patient",))
                if b is None or b != patient_n:
                    continue  # unresolved (reported) or another patient's coverage
            order = cov.get("order")
            if order is not None and (type(order) is not int or order not in (1, 2, 3)):
                self.err(f"{cp}.order", "expected 1 (primary), 2 (secondary) or 3 (tertiary)")
                continue
            values = self.coverage(cp, cov)
            if values is not None:
                found.append((order, cp, values))
        taken = {o for o, _, _ in found if o is not None}
        free = iter(o for o in (1, 2, 3) if o not in taken)
        seen: set[int] = set()
        out = []
        for order, cp, values in found:
            if order in seen:
                self.err(f"{cp}.order", "duplicate order: each coverage needs its own")
                continue
            order = order or next(free, None)
            if order is None:
                self.err(cp, "at most three coverages (primary, secondary, tertiary)")
                continue
            seen.add(order)
            seq = {1: "primary", 2: "secondary", 3: "tertiary"}[order]
            where = {"member_id": f"{cp}.subscriberId", "relationship": f"{cp}.relationship"}
            out.append((order, self.model(Coverage, values | {"sequence": seq}, cp, where)))
        return [c for _, c in sorted(out, key=lambda t: t[0]) if c is not None]

    def coverage(self, cp: str, cov: dict) -> dict | None:
        payors = self.objs(cov, "payor", cp)
        if not payors:
            if cov.get("payor") in (None, []):
                self.err(f"{cp}.payor", "required: a reference to the payer Organization")
            return None
        n = self.deref(payors[0][1], payors[0][0], ("Organization",))
        if n is None:
            return None
        pp, payer = self.resources[n]
        name = self.str_(payer, "name", pp)
        payer_id = self.ident(payer, pp, PAYER_SYSTEM) or name
        if not payer_id:
            self.err(
                f"{pp}.identifier", f"required: an identifier with system {PAYER_SYSTEM} or a name"
            )
            return None
        member_id = self.str_(cov, "subscriberId", cp)
        group = None
        for kp, klass in self.objs(cov, "class", cp):
            if "group" in [c for _, c, _ in self.concept(klass.get("type") or {}, f"{kp}.type")[0]]:
                group = self.str_(klass, "value", kp)
        relationship = self.relationship(cov, cp)
        subscriber = None
        if relationship not in ("self", None) and cov.get("subscriber") is not None:
            sp = f"{cp}.subscriber"
            s = self.deref(cov["subscriber"], sp, ("Patient", "RelatedPerson"))
            subscriber = self.person(*self.resources[s]) if s is not None else None
        return dict(
            payer_id=payer_id,
            payer_name=name or payer_id,
            member_id=member_id,
            group_number=group,
            relationship=relationship or "self",
            subscriber=subscriber,
            filing_indicator=self.filing(cov, cp, payer, pp),
        )

    def relationship(self, cov: dict, cp: str) -> str | None:
        cc = self.obj(cov, "relationship", cp)
        if cc is None:
            return "self"
        codings, text = self.concept(cc, f"{cp}.relationship")
        for value in [c for _, c, _ in codings] + [(text or "").lower()]:
            if value in _RELATIONSHIP:
                return _RELATIONSHIP[value]
        self.err(
            f"{cp}.relationship",
            "expected a subscriber-relationship code "
            "(self, spouse, child, parent, common, other, injured)",
        )
        return None

    def filing(self, cov: dict, cp: str, payer: dict, pp: str) -> str:
        """Claim filing indicator (SBR09): explicit extension, Coverage.type, payer hint."""
        for holder, path in ((cov, cp), (payer, pp)):
            if found := self.ext(holder, FILING_INDICATOR_URL, path):
                if found[1] in X12_FILING_INDICATORS:
                    return found[1]
                self.err(found[0], "expected an X12 claim filing indicator code (e.g. MB, MC, CI)")
            if holder is cov and (cc := self.obj(cov, "type", cp)):
                if hit := self._filing_from_concept(*self.concept(cc, f"{cp}.type")):
                    return hit
        hint = self.ident(payer, pp, FILING_INDICATOR_URL)
        if hint in X12_FILING_INDICATORS:
            return hint
        return self._filing_from_concept([], self.str_(payer, "name", pp)) or "CI"

    @staticmethod
    def _filing_from_concept(codings: list[tuple], text: str | None) -> str | None:
        for system, code, _ in codings:
            if not code:
                continue
            if system == FILING_INDICATOR_URL or (system and "x12" in system.lower()):
                if code in X12_FILING_INDICATORS:
                    return code
            if system in _SOPT_SYSTEMS and (
                hit := next((v for prefix, v in _SOPT if code.startswith(prefix)), None)
            ):
                return hit
            if system == ACT_CODE_SYSTEM and code in _ACT_COVERAGE:
                return _ACT_COVERAGE[code]
        words = " ".join(filter(None, [text, *(d for _, _, d in codings)])).lower()
        return next((v for word, v in _FILING_WORDS if word in words), None)

    # ---------------------------------------------------------------- documentation

    def note(self) -> str | None:
        parts = []
        for p, res in self.resources:
            if res.get("status") == "entered-in-error":
                continue
            if res["resourceType"] == "DocumentReference":
                context = self.obj(res, "context", p)
                if context is not None and not self.ours(context, "encounter"):
                    continue
                for cp, content in self.objs(res, "content", p):
                    att = self.obj(content, "attachment", cp)
                    text = self.attachment(att, f"{cp}.attachment") if att else None
                    if text:
                        parts.append(text)
            elif res["resourceType"] == "Composition" and self.ours(res, "encounter"):
                parts.extend(self.sections(res, p))
        return "\n\n".join(parts).strip() or None

    def attachment(self, att: dict, ap: str) -> str | None:
        ctype = (self.str_(att, "contentType", ap) or "text/plain").lower()
        mime, _, params = ctype.partition(";")
        if mime.strip() not in ("text/plain", "text/html", "application/xhtml+xml"):
            return None  # PDFs, images...: nothing the coder can read as text
        data = att.get("data")
        if data is None:
            return None  # a url-only attachment cannot be fetched offline
        if not isinstance(data, str):
            return self.err(f"{ap}.data", "expected base64-encoded text")
        charset = m.group(1) if (m := re.search(r"charset=([\w-]+)", params)) else "utf-8"
        try:
            text = base64.b64decode("".join(data.split()), validate=True).decode(charset)
        except (binascii.Error, ValueError, LookupError):
            return self.err(f"{ap}.data", f"expected base64-encoded text in {charset}")
        return narrative_text(text) if mime.strip() != "text/plain" else text.strip()

    def sections(self, holder: dict, path: str, depth: int = 0) -> list[str]:
        out: list[str] = []
        if depth > 8:  # real documents nest a level or two; bound the recursion
            return out
        for sp, sec in self.objs(holder, "section", path):
            narrative = self.obj(sec, "text", sp)
            div = self.str_(narrative, "div", f"{sp}.text") if narrative else None
            chunk = "\n\n".join(
                filter(None, [narrative_text(div or ""), *self.sections(sec, sp, depth + 1)])
            )
            title = self.str_(sec, "title", sp)
            if title and chunk and not chunk.lower().startswith(title.lower()):
                chunk = f"{title}:\n{chunk}"
            if chunk:
                out.append(chunk)
        return out

    def codes(self, res: dict, p: str) -> list[SuppliedCode]:
        cc = self.obj(res, "code", p)
        if cc is None:
            return []
        codings, text = self.concept(cc, f"{p}.code")
        known = [
            SuppliedCode(system=_SYSTEM_BY_URI[s], code=c, display=d)
            for s, c, d in codings
            if s in _SYSTEM_BY_URI and c
        ]
        if known:
            return known
        return [SuppliedCode(system="unknown", code=text)] if text else []

    def conditions(self, enc: dict, ep: str) -> list[SuppliedCode]:
        ranked = []
        for i, (dp, diag) in enumerate(self.objs(enc, "diagnosis", ep)):
            n = self.deref(diag.get("condition"), f"{dp}.condition", ("Condition", "Procedure"))
            rank = diag.get("rank")
            if rank is not None and (type(rank) is not int or rank < 1):
                self.err(f"{dp}.rank", "expected a positive integer")
                rank = None
            if n is not None and self.resources[n][1]["resourceType"] == "Condition":
                ranked.append((rank or 10**6, i, n))
        order = [n for _, _, n in sorted(ranked)]
        for n, (p, res) in enumerate(self.resources):
            if res["resourceType"] != "Condition" or n in order or not self.ours(res, "encounter"):
                continue
            status = [
                c
                for _, c, _ in self.concept(
                    self.obj(res, "verificationStatus", p) or {}, f"{p}.verificationStatus"
                )[0]
            ]
            if {"refuted", "entered-in-error"} & set(status):
                continue
            cats = [
                c for cp, cc in self.objs(res, "category", p) for _, c, _ in self.concept(cc, cp)[0]
            ]
            if "encounter" not in res and cats and set(cats) == {"problem-list-item"}:
                continue  # the standing problem list is not this visit's diagnoses
            order.append(n)
        return [
            code for n in order for code in self.codes(self.resources[n][1], self.resources[n][0])
        ]

    def procedures(self) -> list[SuppliedCode]:
        out = []
        for p, res in self.resources:
            if res["resourceType"] != "Procedure" or not self.ours(res, "encounter"):
                continue
            if res.get("status") in ("not-done", "entered-in-error"):
                continue
            out.extend(self.codes(res, p))
        return out

    # ---------------------------------------------------------------- institutional

    def institutional(
        self, enc: dict, ep: str, enc_class: str, service_date: date | None, attending
    ) -> Institutional | None:
        hosp = self.obj(enc, "hospitalization", ep)
        tob = self.ext(enc, TYPE_OF_BILL_URL, ep)
        if enc_class != "IMP" and hosp is None and tob is None:
            return None
        hp = f"{ep}.hospitalization"
        values: dict[str, Any] = {"attending": attending}
        if tob:
            if not re.fullmatch(r"0?\d{3}", tob[1]):
                self.err(tob[0], "expected a type of bill (e.g. 0111 inpatient, 0131 outpatient)")
            values["type_of_bill"] = tob[1].rjust(4, "0")
        elif enc_class == "IMP":
            values["type_of_bill"] = "0111"
        admitted = self.ext(enc, ADMISSION_DATE_URL, ep)
        if admitted:
            xp, key = admitted[0].rsplit(".", 1)
            values["admission_date"] = self.date_({key: admitted[1]}, key, xp, full=True)
        elif enc_class == "IMP":
            values["admission_date"] = service_date
        values["admission_type"] = self.ub04(enc, "priority", ep, ADMISSION_TYPE_SYSTEM, _PRIORITY)
        if hosp is not None:
            values["admission_source"] = self.ub04(
                hosp, "admitSource", hp, POINT_OF_ORIGIN_SYSTEM, _ADMIT_SOURCE
            )
            status = self.ub04(hosp, "dischargeDisposition", hp, PATIENT_STATUS_SYSTEM, _DISCHARGE)
            if status:
                values["discharge_status"] = status
        return self.model(Institutional, values, ep, {})

    def ub04(self, holder: dict, key: str, path: str, system: str, mapping: dict) -> str | None:
        """A UB-04 code: a coding in our UB-04 system wins, else the FHIR code mapped."""
        cc = self.obj(holder, key, path)
        if cc is None:
            return None
        codings, _ = self.concept(cc, f"{path}.{key}")
        direct = next((c for s, c, _ in codings if s == system and c), None)
        mapped = next((mapping[c] for _, c, _ in codings if c in mapping), None)
        if direct or mapped:
            return direct or mapped
        self.err(f"{path}.{key}", f"expected a code from {system} or one of: " + ", ".join(mapping))
        return None
