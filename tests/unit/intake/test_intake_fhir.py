"""FHIR R4 intake: mapping, references, round trip, and errors that name the path (no PHI)."""

import base64
import copy
import json
import random
from datetime import date

import pytest

from rcm.simulation.samples import encounter_to_bundle, generate_samples
from services.intake.domain.fhir import IntakeError, ParsedEncounter, parse_fhir, parse_intake
from shared.events import Coverage, Encounter, Person, SuppliedCode

ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"


@pytest.fixture(scope="module")
def samples():
    return generate_samples(80, seed=21)


def index_of(bundle: dict, rtype: str, nth: int = 0) -> int:
    found = [i for i, e in enumerate(bundle["entry"]) if e["resource"]["resourceType"] == rtype]
    return found[nth]


def resource(bundle: dict, rtype: str, nth: int = 0) -> dict:
    return bundle["entry"][index_of(bundle, rtype, nth)]["resource"]


def errors_of(data) -> IntakeError:
    with pytest.raises(IntakeError) as info:
        parse_intake(data)
    return info.value


def phi_of(enc: Encounter) -> list[str]:
    people = [enc.patient] + [c.subscriber for c in enc.coverages if c.subscriber]
    values = [v for p in people for v in (p.first_name, p.last_name, p.birth_date.isoformat())]
    values += [c.member_id for c in enc.coverages if c.member_id]
    return values + [line for line in (enc.note or "").split("\n") if len(line) > 12]


def assert_no_phi(err: IntakeError, enc: Encounter) -> None:
    text = str(err) + json.dumps(err.errors)
    for value in phi_of(enc):
        assert value not in text


# --------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("references", ["uuid", "relative"])
@pytest.mark.parametrize("note_format", ["document", "composition"])
def test_round_trip_of_generated_encounters(samples, references, note_format):
    for s in samples:
        bundle = encounter_to_bundle(s.encounter, references=references, note_format=note_format)
        assert parse_intake(bundle) == s.encounter, s.scenario


def test_every_generated_bundle_parses_to_its_encounter(samples):
    for s in samples:
        enc = parse_intake(s.bundle)
        assert enc == s.encounter
        assert enc.encounter_id.startswith(f"ENC-{enc.site_id}-")


def test_round_trip_of_edge_values(samples):
    base = next(s.encounter for s in samples if s.encounter.encounter_class == "AMB")
    subscriber = Person(first_name="Ora", last_name="Quill", birth_date=date(1970, 2, 3))
    edge = base.model_copy(
        update={
            "patient": base.patient.model_copy(
                update={"gender": "U", "address": None, "patient_id": None}
            ),
            "coverages": [
                Coverage(
                    payer_id="P1",
                    payer_name="Plan One",
                    relationship="other",
                    subscriber=subscriber,
                    filing_indicator="HM",
                    group_number="G1",
                ),
                Coverage(
                    payer_id="P2",
                    payer_name="Plan Two",
                    member_id=None,
                    relationship="child",
                    sequence="secondary",
                    filing_indicator="16",
                ),
            ],
            "diagnoses": [
                SuppliedCode(system="unknown", code="sprained ankle"),
                SuppliedCode(system="icd10cm", code="S93.402A", display="Sprain"),
            ],
            "procedures": [SuppliedCode(system="icd10pcs", code="0QS734Z")],
            "note": None,
            "length_minutes": 0,
            "prior_authorization": "AUTH-77",
            "visit_type": None,
        }
    )
    for references in ("uuid", "relative"):
        assert parse_intake(encounter_to_bundle(edge, references=references)) == edge


def test_references_by_type_and_id_without_full_urls(samples):
    for s in samples[:20]:
        bundle = encounter_to_bundle(s.encounter, references="relative")
        for entry in bundle["entry"]:
            del entry["fullUrl"]
        assert parse_intake(bundle) == s.encounter


def test_references_by_urn_uuid(samples):
    bundle = encounter_to_bundle(samples[0].encounter, references="uuid")
    assert all(e["fullUrl"].startswith("urn:uuid:") for e in bundle["entry"])
    assert resource(bundle, "Encounter")["subject"]["reference"].startswith("urn:uuid:")
    assert parse_intake(bundle) == samples[0].encounter


def test_absolute_reference_resolves_to_relative_identity(samples):
    bundle = encounter_to_bundle(samples[1].encounter, references="relative")
    enc = resource(bundle, "Encounter")
    enc["subject"]["reference"] = "https://other.example/fhir/" + enc["subject"]["reference"]
    assert parse_intake(bundle) == samples[1].encounter


def test_shuffled_resources_still_parse(samples):
    rng = random.Random(5)
    for s in samples[:30]:
        bundle = copy.deepcopy(s.bundle)
        rng.shuffle(bundle["entry"])
        assert parse_intake(bundle) == s.encounter


def test_json_text_is_accepted(samples):
    assert parse_intake(json.dumps(samples[2].bundle)) == samples[2].encounter


# --------------------------------------------------------------------------- mapping details


def handmade_bundle() -> dict:
    """An EHR-style bundle: Type/id references, no fullUrls, codings the intake must pick from."""

    def r(rtype, rid, **body):
        return {"resource": {"resourceType": rtype, "id": rid, **body}}

    composition_div = (
        '<div xmlns="http://www.w3.org/1999/xhtml"><p>Left ankle sprain &amp; swelling.</p>'
        "<ul><li>Ice</li><li>Brace</li></ul></div>"
    )
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            r(
                "Composition",
                "c1",
                status="final",
                encounter={"reference": "Encounter/e1"},
                section=[
                    {"title": "Assessment", "text": {"div": composition_div}},
                    {
                        "title": "Plan",
                        "section": [{"text": {"div": "<div>Recheck <b>2</b> weeks</div>"}}],
                    },
                ],
            ),
            r(
                "Condition",
                "dx-text",
                code={"text": "ankle pain"},
                encounter={"reference": "Encounter/e1"},
            ),
            r(
                "Condition",
                "dx-icd",
                code={
                    "coding": [
                        {"system": SNOMED, "code": "44465007"},
                        {"system": ICD, "code": "S93.402A", "display": "Sprain of left ankle"},
                    ]
                },
            ),
            r(
                "Condition",
                "problem-list",
                category=[{"coding": [{"code": "problem-list-item"}]}],
                code={"coding": [{"system": ICD, "code": "E78.5"}]},
            ),
            r(
                "Condition",
                "refuted",
                verificationStatus={"coding": [{"code": "refuted"}]},
                code={"coding": [{"system": ICD, "code": "S82.60XA"}]},
            ),
            r(
                "Condition",
                "other-visit",
                encounter={"reference": "Encounter/older"},
                code={"coding": [{"system": ICD, "code": "J06.9"}]},
            ),
            r(
                "Procedure",
                "xray",
                status="completed",
                code={"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "73610"}]},
            ),
            r(
                "Procedure",
                "brace",
                status="completed",
                code={"coding": [{"system": "urn:oid:2.16.840.1.113883.6.285", "code": "L1902"}]},
            ),
            r(
                "Procedure",
                "skipped",
                status="not-done",
                code={"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "29540"}]},
            ),
            r(
                "Encounter",
                "e1",
                status="finished",
                identifier=[{"system": "urn:rcm:prior-auth", "value": "PA-1"}],
                **{
                    "class": {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                        "code": "AMB",
                    }
                },
                type=[{"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "99204"}]}],
                subject={"reference": "Patient/p1"},
                participant=[{"individual": {"reference": "PractitionerRole/role1"}}],
                period={"start": "2026-03-14T22:15:00-05:00", "end": "2026-03-15T01:00:00-05:00"},
                length={"value": 1.5, "unit": "h"},
                location=[{"location": {"reference": "Location/uc"}}],
                serviceProvider={"reference": "Organization/site"},
                diagnosis=[
                    {"condition": {"reference": "Condition/dx-icd"}, "rank": 2},
                    {"condition": {"reference": "Condition/dx-text"}, "rank": 1},
                ],
            ),
            r("Location", "uc", type=[{"coding": [{"code": "20"}]}]),
            r("PractitionerRole", "role1", practitioner={"reference": "Practitioner/doc"}),
            r(
                "Practitioner",
                "doc",
                name=[{"family": "Ferreira", "given": ["Ana", "Luz"]}],
                identifier=[{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}],
            ),
            r(
                "Organization",
                "site",
                name="Harbor Urgent Care",
                identifier=[
                    {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1245319599"},
                    {"system": "urn:oid:2.16.840.1.113883.4.4", "value": "123456789"},
                ],
                address=[
                    {
                        "line": ["1 Main St", "Suite 2"],
                        "city": "Dayton",
                        "state": "OH",
                        "postalCode": "45402",
                    }
                ],
            ),
            r(
                "Patient",
                "p1",
                gender="female",
                birthDate="1984-07-09",
                name=[
                    {"use": "nickname", "given": ["Dee"], "family": "X"},
                    {"use": "official", "family": "Okonkwo", "given": ["Adaeze"]},
                ],
                identifier=[{"type": {"coding": [{"code": "MR"}]}, "value": "M-42"}],
                address=[
                    {
                        "use": "old",
                        "line": ["9 Old Rd"],
                        "city": "Akron",
                        "state": "OH",
                        "postalCode": "44301",
                    },
                    {
                        "use": "home",
                        "line": ["5 Elm St"],
                        "city": "Dayton",
                        "state": "OH",
                        "postalCode": "45403",
                    },
                ],
            ),
            r(
                "RelatedPerson",
                "spouse",
                gender="male",
                birthDate="1982-01-02",
                name=[{"family": "Okonkwo", "given": ["Chidi"]}],
            ),
            r(
                "Coverage",
                "cov-medicaid",
                order=2,
                beneficiary={"reference": "Patient/p1"},
                payor=[{"reference": "Organization/mcd"}],
                subscriberId="MCD-9",
                type={"text": "State Medicaid"},
            ),
            r(
                "Coverage",
                "cov-employer",
                beneficiary={"reference": "Patient/p1"},
                payor=[{"reference": "Organization/plan"}],
                subscriberId="W-1",
                relationship={"coding": [{"code": "common"}]},
                subscriber={"reference": "RelatedPerson/spouse"},
                type={"coding": [{"system": "https://nahdo.org/sopt", "code": "6"}]},
                **{"class": [{"type": {"coding": [{"code": "group"}]}, "value": "GRP-7"}]},
            ),
            r(
                "Coverage",
                "cancelled",
                status="cancelled",
                beneficiary={"reference": "Patient/p1"},
                payor=[{"reference": "Organization/plan"}],
            ),
            r(
                "Organization",
                "mcd",
                name="Ohio Medicaid",
                identifier=[{"system": "urn:rcm:payer-id", "value": "MCD01"}],
            ),
            r("Organization", "plan", name="Lakeshore Blue Plan"),
        ],
    }


def test_handmade_bundle_maps_every_field():
    enc = parse_intake(handmade_bundle())
    assert enc.encounter_id == "e1"
    assert enc.site_id == "1245319599"  # no urn:rcm:site identifier: the NPI
    assert enc.billing_provider.name == "Harbor Urgent Care"
    assert enc.billing_provider.tax_id == "123456789"
    assert enc.billing_provider.address.line2 == "Suite 2"
    assert enc.rendering_provider.npi == "1234567893"
    assert (enc.rendering_provider.first_name, enc.rendering_provider.last_name) == (
        "Ana",
        "Ferreira",
    )
    assert enc.service_date == date(2026, 3, 14)  # the local date as written, not UTC
    assert enc.end_date == date(2026, 3, 15)
    assert enc.length_minutes == 90
    assert enc.visit_type == "new"
    assert enc.place_of_service == "20"
    assert enc.prior_authorization == "PA-1"
    p = enc.patient
    assert (p.first_name, p.last_name, p.gender, p.patient_id) == ("Adaeze", "Okonkwo", "F", "M-42")
    assert p.address.line1 == "5 Elm St"
    primary, secondary = enc.coverages
    # known by name only: no payer id (billing holds the claim until a biller supplies it)
    assert (primary.sequence, primary.payer_id, primary.payer_name) == (
        "primary",
        "",
        "Lakeshore Blue Plan",
    )
    assert (primary.relationship, primary.filing_indicator, primary.group_number) == (
        "spouse",
        "BL",
        "GRP-7",
    )
    assert primary.subscriber.first_name == "Chidi" and primary.subscriber.gender == "M"
    assert (secondary.sequence, secondary.payer_id, secondary.filing_indicator) == (
        "secondary",
        "MCD01",
        "MC",
    )
    assert secondary.member_id == "MCD-9" and secondary.subscriber is None
    assert [(d.system, d.code) for d in enc.diagnoses] == [
        ("unknown", "ankle pain"),
        ("icd10cm", "S93.402A"),
    ]
    assert enc.diagnoses[1].display == "Sprain of left ankle"
    assert [(c.system, c.code) for c in enc.procedures] == [("cpt", "73610"), ("hcpcs", "L1902")]
    assert (
        enc.note
        == "Assessment:\nLeft ankle sprain & swelling.\nIce\nBrace\n\nPlan:\nRecheck 2 weeks"
    )
    assert enc.institutional is None


def test_class_sets_place_of_service_when_no_location():
    bundle = handmade_bundle()
    enc_res = resource(bundle, "Encounter")
    del enc_res["location"]
    for code, pos in (("EMER", "23"), ("IMP", "21"), ("AMB", "11")):
        enc_res["class"]["code"] = code
        enc = parse_intake(bundle)
        assert enc.place_of_service == pos
        assert (enc.institutional is not None) == (code == "IMP")


def test_inpatient_hospitalization_maps_to_institutional():
    bundle = handmade_bundle()
    enc_res = resource(bundle, "Encounter")
    enc_res["class"]["code"] = "IMP"
    enc_res["priority"] = {"coding": [{"code": "EM"}]}
    enc_res["participant"][0]["type"] = [{"coding": [{"code": "ATND"}]}]
    enc_res["hospitalization"] = {
        "admitSource": {"coding": [{"code": "hosp-trans"}]},
        "dischargeDisposition": {"coding": [{"code": "snf"}]},
    }
    inst = parse_intake(bundle).institutional
    assert inst.type_of_bill == "0111"
    assert inst.admission_date == date(2026, 3, 14)
    assert (inst.admission_type, inst.admission_source, inst.discharge_status) == ("1", "4", "03")
    assert inst.attending.npi == "1234567893"


def test_document_reference_base64_note_and_site_identifier():
    bundle = handmade_bundle()
    org = resource(bundle, "Organization")
    org["identifier"].append({"system": "urn:rcm:site", "value": "harbor"})
    text = "Assessment:\nUTI.\nPlan:\nNitrofurantoin."
    bundle["entry"].append(
        {
            "resource": {
                "resourceType": "DocumentReference",
                "status": "current",
                "context": {"encounter": [{"reference": "Encounter/e1"}]},
                "content": [
                    {
                        "attachment": {
                            "contentType": "text/plain; charset=utf-8",
                            "data": base64.b64encode(text.encode()).decode(),
                        }
                    },
                    {"attachment": {"contentType": "application/pdf", "data": "JVBERi0="}},
                ],
            }
        }
    )
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Composition"]
    enc = parse_intake(bundle)
    assert enc.site_id == "harbor"
    assert enc.note == text


def test_bundle_without_note_is_valid():
    bundle = handmade_bundle()
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Composition"]
    assert parse_intake(bundle).note is None


def test_filing_indicator_hints():
    bundle = handmade_bundle()
    cov = resource(bundle, "Coverage", 0)
    cov["type"] = {"coding": [{"system": "https://nahdo.org/sopt", "code": "121"}]}
    assert parse_intake(bundle).coverages[1].filing_indicator == "MB"
    del cov["type"]
    payer = next(e["resource"] for e in bundle["entry"] if e["resource"].get("id") == "mcd")
    payer["name"] = "Some Plan"
    assert parse_intake(bundle).coverages[1].filing_indicator == "CI"  # nothing says otherwise
    payer["identifier"].append({"system": "urn:rcm:claim-filing-indicator", "value": "MC"})
    assert parse_intake(bundle).coverages[1].filing_indicator == "MC"
    cov["extension"] = [{"url": "urn:rcm:claim-filing-indicator", "valueCode": "HM"}]
    assert parse_intake(bundle).coverages[1].filing_indicator == "HM"


def test_length_units():
    bundle = handmade_bundle()
    enc_res = resource(bundle, "Encounter")
    for length, minutes in (
        ({"value": 25, "unit": "min"}, 25),
        ({"value": 40, "system": "http://unitsofmeasure.org", "code": "min"}, 40),
        ({"value": 2, "code": "h"}, 120),
        ({"value": 30}, 30),
    ):
        enc_res["length"] = length
        assert parse_intake(bundle).length_minutes == minutes


# --------------------------------------------------------------------------- errors
# Lenient intake: what a biller can fix is a warning (at its JSON path) and a missing field,
# and the encounter is still produced; only what cannot be an encounter is refused.


def parsed(data) -> ParsedEncounter:
    result = parse_fhir(data)
    assert result.problems == [] and len(result.encounters) == 1
    return result.encounters[0]


def warned_at(pe: ParsedEncounter) -> list[str]:
    return [w.path for w in pe.warnings]


def assert_no_phi_in(pe: ParsedEncounter, enc: Encounter) -> None:
    text = json.dumps([w.as_dict() for w in pe.warnings]) + json.dumps(pe.missing)
    for value in phi_of(enc):
        assert value not in text


def test_not_an_object():
    assert errors_of([1, 2]).errors == [{"path": "$", "message": "expected a JSON object"}]
    assert errors_of("{not json").errors[0]["path"] == "$"
    assert errors_of({"resourceType": "Patient"}).errors[0]["path"] == "resourceType"


def test_missing_encounter(samples):
    bundle = copy.deepcopy(samples[0].bundle)
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Encounter"]
    err = errors_of(bundle)
    assert err.errors == [
        {"path": "entry", "message": "expected an Encounter resource; none found"}
    ]
    assert isinstance(err, ValueError)


@pytest.mark.parametrize("bad", ["1984-13-40", "1984-07", "07/09/1984", 19840709])
def test_bad_birth_date_is_a_warning_and_a_missing_field(samples, bad):
    s = samples[3]
    bundle = copy.deepcopy(s.bundle)
    k = index_of(bundle, "Patient")
    bundle["entry"][k]["resource"]["birthDate"] = bad
    pe = parsed(bundle)
    assert warned_at(pe) == [f"entry[{k}].resource.birthDate"]
    assert pe.encounter.patient.birth_date is None
    assert pe.missing == ["patient.birth_date"]
    assert_no_phi_in(pe, s.encounter)
    assert str(bad) not in json.dumps([w.as_dict() for w in pe.warnings])


def test_birth_date_after_service_date(samples):
    bundle = copy.deepcopy(samples[3].bundle)
    k = index_of(bundle, "Patient")
    bundle["entry"][k]["resource"]["birthDate"] = "2099-01-01"
    pe = parsed(bundle)
    assert [w.as_dict() for w in pe.warnings] == [
        {
            "path": f"entry[{k}].resource.birthDate",
            "message": "must not be after the date of service: ignored",
        }
    ]
    assert pe.missing == ["patient.birth_date"]


def test_bad_base64_note_is_no_readable_documentation(samples):
    s = next(s for s in samples if "DocumentReference" in json.dumps(s.bundle))
    bundle = copy.deepcopy(s.bundle)
    k = index_of(bundle, "DocumentReference")
    bundle["entry"][k]["resource"]["content"][0]["attachment"]["data"] = "%%% not base64 %%%"
    pe = parsed(bundle)
    assert [w.as_dict() for w in pe.warnings] == [
        {
            "path": f"entry[{k}].resource.content[0].attachment.data",
            "message": "no readable documentation: expected base64-encoded data",
        }
    ]
    assert pe.encounter.note is None
    assert_no_phi_in(pe, s.encounter)


def test_coverage_without_payor(samples):
    s = samples[4]
    bundle = copy.deepcopy(s.bundle)
    k = index_of(bundle, "Coverage")
    del bundle["entry"][k]["resource"]["payor"]
    pe = parsed(bundle)
    assert {
        "path": f"entry[{k}].resource.payor",
        "message": "required: a reference to the payer Organization",
    } in [w.as_dict() for w in pe.warnings]
    assert len(pe.encounter.coverages) == len(s.encounter.coverages) - 1
    assert pe.encounter.primary_coverage is not None  # the other coverage moves up
    assert_no_phi_in(pe, s.encounter)


@pytest.mark.parametrize("length", [{"value": "thirty", "unit": "min"}, {"value": True}])
def test_wrong_type_for_length(samples, length):
    s = samples[5]
    bundle = copy.deepcopy(s.bundle)
    k = index_of(bundle, "Encounter")
    bundle["entry"][k]["resource"]["length"] = length
    pe = parsed(bundle)
    assert warned_at(pe) == [f"entry[{k}].resource.length.value"]
    assert pe.encounter.length_minutes is None
    assert pe.encounter == s.encounter.model_copy(update={"length_minutes": None})


def test_length_not_an_object_and_bad_unit(samples):
    bundle = copy.deepcopy(samples[5].bundle)
    k = index_of(bundle, "Encounter")
    bundle["entry"][k]["resource"]["length"] = 30
    assert warned_at(parsed(bundle)) == [f"entry[{k}].resource.length"]
    bundle["entry"][k]["resource"]["length"] = {"value": 3, "unit": "wk"}
    assert warned_at(parsed(bundle)) == [f"entry[{k}].resource.length.unit"]


def test_unresolved_subject_and_missing_patient(samples):
    s = samples[6]
    bundle = copy.deepcopy(s.bundle)
    k = index_of(bundle, "Encounter")
    bundle["entry"][k]["resource"]["subject"] = {"reference": "urn:uuid:does-not-exist"}
    pe = parsed(bundle)
    assert {
        "path": f"entry[{k}].resource.subject.reference",
        "message": "does not resolve to a resource in the input",
    } in [w.as_dict() for w in pe.warnings]
    names = ["patient.first_name", "patient.last_name", "patient.birth_date", "patient.address"]
    assert all(n in pe.missing for n in names)
    del bundle["entry"][k]["resource"]["subject"]
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Patient"]
    pe = parsed(bundle)
    assert pe.encounter.patient == Person()
    assert all(n in pe.missing for n in names)


def test_no_date_of_service_anywhere_is_refused(samples):
    s = samples[7]
    bundle = encounter_to_bundle(s.encounter, note_format="composition")  # a dated note
    k = index_of(bundle, "Encounter")
    del bundle["entry"][k]["resource"]["period"]
    p = index_of(bundle, "Patient")
    bundle["entry"][p]["resource"]["gender"] = "woman"
    notes = ("DocumentReference", "Composition")
    dated = parsed(bundle)  # the note's date stands in
    assert dated.encounter.service_date == s.encounter.service_date
    assert f"entry[{p}].resource.gender" in warned_at(dated)
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] not in notes]
    k = index_of(bundle, "Encounter")
    result = parse_fhir(bundle)
    assert result.encounters == []
    assert [p.path for p in result.problems] == [f"entry[{k}].resource.period.start"]


def test_reference_to_the_wrong_resource_type(samples):
    bundle = copy.deepcopy(samples[8].bundle)
    k = index_of(bundle, "Encounter")
    enc_res = bundle["entry"][k]["resource"]
    enc_res["serviceProvider"] = enc_res["subject"]
    pe = parsed(bundle)
    assert {
        "path": f"entry[{k}].resource.serviceProvider.reference",
        "message": "expected a reference to Organization",
    } in [w.as_dict() for w in pe.warnings]
    assert pe.encounter.site_id == "unassigned"
    for name in ("site_id", "billing_provider.name", "billing_provider.npi"):
        assert name in pe.missing


def test_coverage_order_and_relationship_warnings(samples):
    s = next(s for s in samples if len(s.encounter.coverages) == 2)
    bundle = copy.deepcopy(s.bundle)
    first, second = index_of(bundle, "Coverage", 0), index_of(bundle, "Coverage", 1)
    bundle["entry"][second]["resource"]["order"] = bundle["entry"][first]["resource"]["order"]
    bundle["entry"][first]["resource"]["relationship"] = {"coding": [{"code": "cousin"}]}
    pe = parsed(bundle)
    assert sorted(warned_at(pe)) == sorted(
        [f"entry[{first}].resource.relationship", f"entry[{max(first, second)}].resource.order"]
    )
    assert [c.sequence for c in pe.encounter.coverages] == ["primary", "secondary"]
    bundle = copy.deepcopy(s.bundle)
    bundle["entry"][first]["resource"]["order"] = "1"
    assert warned_at(parsed(bundle)) == [f"entry[{first}].resource.order"]


def test_malformed_entries():
    bad = {"resourceType": "Bundle", "entry": [3, {"resource": []}, {"resource": {}}]}
    assert [e["path"] for e in errors_of(bad).errors] == ["entry"]
    assert [w.path for w in parse_fhir(bad).warnings] == [
        "entry[0]",
        "entry[1].resource",
        "entry[2].resource.resourceType",
    ]
    assert errors_of({"resourceType": "Bundle"}).errors[0]["path"] == "entry"


def test_encounter_id_too_long_is_hashed(samples):
    bundle = copy.deepcopy(samples[9].bundle)
    k = index_of(bundle, "Encounter")
    bundle["entry"][k]["resource"]["identifier"][0]["value"] = "E" * 39
    pe = parsed(bundle)
    assert warned_at(pe) == [f"entry[{k}].resource.identifier"]
    assert len(pe.encounter.encounter_id) <= 38
    assert parsed(copy.deepcopy(bundle)).encounter.encounter_id == pe.encounter.encounter_id


# --------------------------------------------------------------------------- native JSON


def test_native_json_bare_and_in_an_envelope(samples):
    enc = samples[10].encounter
    data = enc.model_dump(mode="json")
    assert parse_intake(data) == enc
    envelope = {"event_type": "encounter.documented", "payload": data}
    assert parse_intake(envelope) == enc


def test_native_json_errors_use_paths_and_hide_values(samples):
    enc = next(s.encounter for s in samples if s.encounter.coverages)
    data = enc.model_dump(mode="json")
    data["patient"]["birth_date"] = "1984-02-31"
    data["length_minutes"] = "lots"
    data["coverages"][0]["relationship"] = "cousin"
    err = errors_of({"event_type": "encounter.documented", "payload": data})
    assert sorted(e["path"] for e in err.errors) == [
        "payload.coverages[0].relationship",
        "payload.length_minutes",
        "payload.patient.birth_date",
    ]
    assert_no_phi(err, enc)
    del data["patient"]
    assert "patient" in [e["path"] for e in errors_of(data).errors]


# --------------------------------------------------------------------------- robustness

JUNK = [
    None,
    1,
    -3,
    2.5,
    True,
    "",
    "x",
    [],
    {},
    [1],
    {"a": 1},
    {"reference": 5},
    {"reference": "Patient/none"},
    [{"coding": 3}],
    {"coding": [{"code": None}]},
    "2026-99-99",
    float("nan"),
]


def _paths(obj, path=()):
    yield path
    items = (
        obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else []
    )
    for k, v in items:
        yield from _paths(v, path + (k,))


def test_random_damage_gives_intake_error_or_an_encounter_never_a_crash(samples):
    rng = random.Random(13)
    for _ in range(1500):
        s = rng.choice(samples)
        bundle = copy.deepcopy(s.bundle)
        for _ in range(rng.randint(1, 3)):
            path = rng.choice([p for p in _paths(bundle) if p])
            parent = bundle
            for k in path[:-1]:
                parent = parent[k]
            if isinstance(parent, dict) and rng.random() < 0.2:
                del parent[path[-1]]
            else:
                parent[path[-1]] = copy.deepcopy(rng.choice(JUNK))
        try:
            assert isinstance(parse_intake(bundle), Encounter)
        except IntakeError as err:
            assert err.errors and all(set(e) == {"path", "message"} for e in err.errors)
            assert s.encounter.patient.last_name not in str(err)
            assert s.encounter.patient.birth_date.isoformat() not in str(err)
