"""References in every form FHIR defines, and what billing takes from one it cannot resolve."""

import copy

from services.intake.domain.fhir import parse_fhir

NPI = "http://hl7.org/fhir/sid/us-npi"
SYNTHEA = "https://github.com/synthetichealth/synthea"
GOOD_NPI = "1245319599"
DOC_NPI = "1234567893"


def entry(rtype, rid, full_url=None, **body):
    e = {"resource": {"resourceType": rtype, "id": rid, **body}}
    if full_url:
        e["fullUrl"] = full_url
    return e


def bundle(*entries, btype="collection"):
    return {"resourceType": "Bundle", "type": btype, "entry": list(entries)}


def visit(**over):
    body = {
        "status": "finished",
        "class": {"code": "AMB"},
        "period": {"start": "2026-03-02T09:00:00-05:00"},
        "subject": {"reference": "Patient/p1"},
        "serviceProvider": {"reference": "Organization/org"},
        "participant": [{"individual": {"reference": "Practitioner/doc"}}],
    }
    return entry("Encounter", "e1", **(body | over))


PATIENT = entry(
    "Patient",
    "p1",
    name=[{"family": "Okafor", "given": ["Ada"]}],
    birthDate="1980-01-02",
    gender="female",
)
ORG = entry(
    "Organization",
    "org",
    name="Harbor Clinic",
    identifier=[{"system": NPI, "value": GOOD_NPI}, {"system": SYNTHEA, "value": "h-1"}],
)
DOC = entry(
    "Practitioner",
    "doc",
    name=[{"family": "Ferreira", "given": ["Ana"]}],
    identifier=[{"system": NPI, "value": DOC_NPI}],
)


def one(data):
    result = parse_fhir(data)
    assert result.problems == [] and len(result.encounters) == 1
    pe = result.encounters[0]
    # these bundles have no note: say so once, then look at the rest
    assert [w.message for w in pe.warnings].count("no readable documentation") == 1
    pe.warnings = [w for w in pe.warnings if w.message != "no readable documentation"]
    return pe


def test_relative_references():
    pe = one(bundle(visit(), PATIENT, ORG, DOC))
    assert pe.encounter.billing_provider.name == "Harbor Clinic"
    assert pe.encounter.rendering_provider.npi == DOC_NPI
    assert pe.encounter.patient.last_name == "Okafor"
    assert pe.warnings == []


def test_urn_uuid_absolute_and_versioned_references():
    b = bundle(
        visit(
            subject={"reference": "urn:uuid:5b3d1f0e-0000-4000-8000-000000000001"},
            serviceProvider={"reference": "https://ehr.example/fhir/Organization/org/_history/3"},
            participant=[{"individual": {"reference": "Practitioner/doc/_history/1"}}],
        ),
        {**PATIENT, "fullUrl": "urn:uuid:5b3d1f0e-0000-4000-8000-000000000001"},
        {**ORG, "fullUrl": "https://ehr.example/fhir/Organization/org"},
        DOC,
    )
    pe = one(b)
    assert pe.encounter.patient.first_name == "Ada"
    assert pe.encounter.billing_provider.npi == GOOD_NPI
    assert pe.encounter.rendering_provider.last_name == "Ferreira"


def test_conditional_reference_resolves_within_the_bundle():
    b = bundle(
        visit(
            serviceProvider={"reference": f"Organization?identifier={SYNTHEA}|h-1"},
            participant=[
                {"individual": {"reference": f"Practitioner?identifier={NPI}%7C{DOC_NPI}"}}
            ],
        ),
        PATIENT,
        ORG,
        DOC,
        btype="transaction",
    )
    pe = one(b)
    assert pe.encounter.billing_provider.name == "Harbor Clinic"
    assert pe.encounter.site_id == GOOD_NPI
    assert pe.encounter.rendering_provider.first_name == "Ana"


def test_conditional_reference_outside_the_bundle_still_gives_the_npi_and_display():
    b = bundle(
        visit(
            serviceProvider={
                "reference": f"Organization?identifier={SYNTHEA}|elsewhere",
                "display": "PCP103937",
            },
            participant=[
                {
                    "individual": {
                        "reference": f"Practitioner?identifier={NPI}|{DOC_NPI}",
                        "display": "Dr. Ronny764 Block661",
                    }
                }
            ],
        ),
        PATIENT,
    )
    pe = one(b)
    assert pe.encounter.billing_provider.name == "PCP103937"
    rp = pe.encounter.rendering_provider
    assert (rp.npi, rp.first_name, rp.last_name) == (DOC_NPI, "Ronny764", "Block661")
    assert {w.message for w in pe.warnings} == {"does not resolve to a resource in the input"}
    assert "billing_provider.npi" in pe.missing and "rendering_provider.npi" not in pe.missing


def test_contained_resources():
    enc = visit(
        contained=[
            {
                "resourceType": "Organization",
                "id": "o",
                "name": "Inner Org",
                "identifier": [{"system": NPI, "value": GOOD_NPI}],
            },
            {
                "resourceType": "Practitioner",
                "id": "p",
                "name": [{"family": "Lee", "given": ["Kim"]}],
                "identifier": [{"system": NPI, "value": DOC_NPI}],
            },
        ],
        serviceProvider={"reference": "#o"},
        participant=[{"individual": {"reference": "#p"}}],
    )
    pe = one(bundle(enc, PATIENT))
    assert pe.encounter.billing_provider.name == "Inner Org"
    assert pe.encounter.rendering_provider.last_name == "Lee"
    # contained resources are not top-level: a relative reference does not reach them
    other = visit(serviceProvider={"reference": "Organization/o"})
    other["resource"]["id"] = "e2"
    result = parse_fhir(bundle(other, enc))
    assert [pe.encounter.billing_provider.name for pe in result.encounters] == [None, "Inner Org"]


def test_logical_and_display_only_references():
    b = bundle(
        visit(
            serviceProvider={"identifier": {"system": SYNTHEA, "value": "h-1"}},
            participant=[
                {
                    "individual": {
                        "identifier": {"system": NPI, "value": DOC_NPI},
                        "display": "Ferreira, Ana",
                    }
                }
            ],
            subject={"display": "somebody"},
        ),
        ORG,
    )
    pe = one(b)
    assert pe.encounter.billing_provider.name == "Harbor Clinic"
    rp = pe.encounter.rendering_provider
    assert (rp.npi, rp.first_name, rp.last_name) == (DOC_NPI, "Ana", "Ferreira")
    assert pe.encounter.patient.first_name is None
    assert "patient.first_name" in pe.missing
    assert pe.warnings == []


def test_an_unresolved_consultant_or_bed_is_a_warning_not_a_refusal():
    b = bundle(
        visit(
            participant=[
                {
                    "individual": {"reference": "Practitioner/doc"},
                    "type": [{"coding": [{"code": "PPRF"}]}],
                },
                {
                    "individual": {"reference": "Practitioner/consultant"},
                    "type": [{"coding": [{"code": "CON"}]}],
                },
            ],
            location=[{"location": {"reference": "Location/bed-12"}}],
        ),
        PATIENT,
        ORG,
        DOC,
    )
    pe = one(b)
    assert pe.encounter.rendering_provider.npi == DOC_NPI
    assert sorted(w.path for w in pe.warnings) == [
        "entry[0].resource.location[0].location.reference",
        "entry[0].resource.participant[1].individual.reference",
    ]


def test_duplicate_identities_keep_the_first_with_a_warning():
    later = copy.deepcopy(PATIENT)
    later["resource"]["name"] = [{"family": "Other", "given": ["Someone"]}]
    result = parse_fhir(bundle(visit(), PATIENT, later, ORG, DOC))
    assert result.encounters[0].encounter.patient.last_name == "Okafor"
    assert [w.path for w in result.warnings] == ["entry[2].resource"]
