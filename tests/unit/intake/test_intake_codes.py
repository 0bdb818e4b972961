"""Code systems by configuration: concept maps, NUBC codes, states, SNOMED CT and ICD-9-CM."""

import json

import pytest

from services.intake.domain.codes import ConceptMaps, parse_concept_map, parse_snomed_map
from services.intake.domain.fhir import parse_fhir
from services.intake.domain.problems import IntakeError
from services.intake.domain.states import usps_state
from tests.unit.intake.test_intake_references import DOC, ORG, PATIENT, bundle, entry, visit

EPIC_CLASS = "urn:oid:1.2.840.114350.1.72.1.7.7.10.696784.13260"
EPIC_DISPOSITION = "urn:oid:1.2.840.114350.1.72.1.7.10.698084.18888"
SNOMED = "http://snomed.info/sct"
NUBC_DISCHARGE = "https://www.nubc.org/CodeSystem/PatDischargeStatus"
NUBC_ORIGIN = "https://www.nubc.org/CodeSystem/PointOfOrigin"

CONCEPT_MAP_JSON = json.dumps(
    {
        "resourceType": "ConceptMap",
        "group": [
            {
                "source": EPIC_CLASS,
                "target": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                "element": [
                    {"code": "5", "target": [{"code": "AMB", "equivalence": "equivalent"}]},
                    {"code": "1", "target": [{"code": "IMP", "equivalence": "inexact"}]},
                    {"code": "9", "target": [{"code": "EMER", "equivalence": "unmatched"}]},
                ],
            }
        ],
    }
)
CONCEPT_MAP_CSV = f"""source_system,source_code,target_code
{EPIC_DISPOSITION},1,01
{EPIC_DISPOSITION},7,07
"""


def epic_visit(class_code="5", **over):
    return visit(**{"class": {"system": EPIC_CLASS, "code": class_code}} | over)


def test_a_vendor_class_is_defaulted_with_a_warning_never_refused():
    pe = parse_fhir(bundle(epic_visit("5"), PATIENT, ORG, DOC)).encounters[0]
    assert pe.encounter.encounter_class == "AMB"
    assert {
        "path": "entry[0].resource.class",
        "message": "encounter class not recognised (add it to a concept map): AMB assumed",
    } in [w.as_dict() for w in pe.warnings]


def test_a_concept_map_json_maps_vendor_classes():
    maps = parse_concept_map(CONCEPT_MAP_JSON)
    pe = parse_fhir(bundle(epic_visit("1"), PATIENT), concept_maps=maps).encounters[0]
    assert pe.encounter.encounter_class == "IMP" and pe.encounter.institutional is not None
    pe = parse_fhir(bundle(epic_visit("9"), PATIENT), concept_maps=maps).encounters[0]
    assert pe.encounter.encounter_class == "AMB"  # an "unmatched" target maps nothing


def test_a_concept_map_csv_maps_discharge_dispositions_and_nubc_codes_are_taken_as_they_are():
    maps = ConceptMaps.combine(
        [parse_concept_map(CONCEPT_MAP_CSV), parse_concept_map(CONCEPT_MAP_JSON)]
    )
    hosp = {
        "dischargeDisposition": {"coding": [{"system": EPIC_DISPOSITION, "code": "7"}]},
        "admitSource": {"coding": [{"system": NUBC_ORIGIN, "code": "4"}]},
    }
    pe = parse_fhir(
        bundle(epic_visit("1", hospitalization=hosp), PATIENT), concept_maps=maps
    ).encounters[0]
    inst = pe.encounter.institutional
    assert (inst.discharge_status, inst.admission_source) == ("07", "4")
    hosp["dischargeDisposition"] = {"coding": [{"system": NUBC_DISCHARGE, "code": "62"}]}
    pe = parse_fhir(
        bundle(epic_visit("1", hospitalization=hosp), PATIENT), concept_maps=maps
    ).encounters[0]
    assert pe.encounter.institutional.discharge_status == "62"
    hosp["dischargeDisposition"] = {
        "coding": [{"system": "http://www.nubc.org/patient-discharge", "code": "03"}]
    }
    pe = parse_fhir(
        bundle(epic_visit("1", hospitalization=hosp), PATIENT), concept_maps=maps
    ).encounters[0]
    assert pe.encounter.institutional.discharge_status == "03"  # US Core 3's NUBC system
    hosp["dischargeDisposition"] = {"coding": [{"system": SNOMED, "code": "306689006"}]}
    pe = parse_fhir(
        bundle(epic_visit("1", hospitalization=hosp), PATIENT), concept_maps=maps
    ).encounters[0]
    assert pe.encounter.institutional.discharge_status == "01"  # the default, with a warning
    assert "entry[0].resource.hospitalization.dischargeDisposition" in [w.path for w in pe.warnings]


def test_bad_concept_map_files_name_every_problem():
    with pytest.raises(IntakeError) as info:
        parse_concept_map("source_system,source_code,target_code\nx,,1\n,2,\n")
    assert [e["path"] for e in info.value.errors] == [
        "line 2.source_code",
        "line 3.source_system",
        "line 3.target_code",
    ]
    with pytest.raises(IntakeError):
        parse_concept_map('{"resourceType": "Patient"}')
    with pytest.raises(IntakeError):
        parse_concept_map("a,b\n1,2\n")


@pytest.mark.parametrize(
    ("written", "code"),
    [
        ("Massachusetts", "MA"),
        ("mass.", "MA"),
        ("N.Y.", "NY"),
        ("ny", "NY"),
        ("Pennsylvania", "PA"),
        ("District of Columbia", "DC"),
        ("Puerto Rico", "PR"),
    ],
)
def test_state_names_and_variants_become_usps_codes(written, code):
    assert usps_state(written) == code
    org = json.loads(json.dumps(ORG))
    org["resource"]["address"] = [
        {"line": ["1 Main St"], "city": "Boston", "state": written, "postalCode": "02110-1234"}
    ]
    pe = parse_fhir(bundle(visit(), PATIENT, org, DOC)).encounters[0]
    assert pe.encounter.billing_provider.address.state == code


def test_a_zip_that_lost_its_leading_zero_gets_it_back_in_new_england():
    org = json.loads(json.dumps(ORG))
    org["resource"]["address"] = [
        {"line": ["1 Main St"], "city": "Lowell", "state": "MA", "postalCode": "1851"}
    ]
    pe = parse_fhir(bundle(visit(), PATIENT, org, DOC)).encounters[0]
    assert pe.encounter.billing_provider.address.postal_code == "01851"
    org["resource"]["address"][0]["state"] = "OH"
    pe = parse_fhir(bundle(visit(), PATIENT, org, DOC)).encounters[0]
    assert pe.encounter.billing_provider.address is None
    assert "entry[2].resource.address[0].postalCode" in [w.path for w in pe.warnings]


def test_an_unknown_state_is_a_warning_and_a_missing_address():
    org = json.loads(json.dumps(ORG))
    org["resource"]["address"] = [
        {"line": ["1 Main St"], "city": "X", "state": "FOWL", "postalCode": "02110"}
    ]
    pe = parse_fhir(bundle(visit(), PATIENT, org, DOC)).encounters[0]
    assert "entry[2].resource.address[0].state" in [w.path for w in pe.warnings]
    assert "billing_provider.address" in pe.missing


def condition(rid, *codings, text=None):
    code = {"coding": [{"system": s, "code": c, "display": d} for s, c, d in codings]}
    if text:
        code["text"] = text
    return entry("Condition", rid, code=code, encounter={"reference": "Encounter/e1"})


def test_snomed_and_icd9_diagnoses_are_evidence_never_icd10cm():
    b = bundle(
        visit(),
        PATIENT,
        condition("a", (SNOMED, "44054006", "Diabetes mellitus type 2")),
        condition("b", ("http://hl7.org/fhir/sid/icd-9-cm", "250.00", "Diabetes")),
        condition("c", (SNOMED, "38341003", None), text="Hypertension"),
        condition(
            "d",
            ("http://hl7.org/fhir/sid/icd-10-cm", "I10", "Hypertension"),
            (SNOMED, "38341003", None),
        ),
    )
    enc = parse_fhir(b).encounters[0].encounter
    assert [(d.system, d.code, d.display) for d in enc.diagnoses] == [
        ("snomed", "44054006", "Diabetes mellitus type 2"),
        ("icd9cm", "250.00", "Diabetes"),
        ("snomed", "38341003", "Hypertension"),
        ("icd10cm", "I10", "Hypertension"),
    ]


NLM_MAP = (
    "\t".join(
        "id effectiveTime active moduleId refsetId referencedComponentId referencedComponentName "
        "mapGroup mapPriority mapRule mapAdvice mapTarget mapTargetName correlationId "
        "mapCategoryId mapCategoryName".split()
    )
    + "\n"
    + "\n".join(
        "\t".join(row)
        for row in [
            # unconditional: one group, rule TRUE
            [
                "1",
                "20250301",
                "1",
                "m",
                "r",
                "44054006",
                "Diabetes type 2",
                "1",
                "1",
                "TRUE",
                "",
                "E11.9",
                "Type 2 diabetes mellitus without complications",
                "",
                "",
                "",
            ],
            # an older inactive version of a row: skipped
            [
                "2",
                "20200301",
                "1",
                "m",
                "r",
                "38341003",
                "Hypertension",
                "1",
                "1",
                "TRUE",
                "",
                "I15.9",
                "old",
                "",
                "",
                "",
            ],
            [
                "2",
                "20250301",
                "0",
                "m",
                "r",
                "38341003",
                "Hypertension",
                "1",
                "1",
                "TRUE",
                "",
                "I15.9",
                "old",
                "",
                "",
                "",
            ],
            # age-conditional first row, OTHERWISE TRUE fallback: left to a coder
            [
                "3",
                "20250301",
                "1",
                "m",
                "r",
                "195967001",
                "Asthma",
                "1",
                "1",
                "IFA 445518008 | Age at onset of clinical finding (observable entity) | < 12.0 years",
                "",
                "J45.909",
                "Asthma",
                "",
                "",
                "",
            ],
            [
                "4",
                "20250301",
                "1",
                "m",
                "r",
                "195967001",
                "Asthma",
                "1",
                "2",
                "OTHERWISE TRUE",
                "",
                "J45.909",
                "Asthma",
                "",
                "",
                "",
            ],
            # two groups, both TRUE: both targets
            [
                "5",
                "20250301",
                "1",
                "m",
                "r",
                "111",
                "Combo",
                "1",
                "1",
                "TRUE",
                "",
                "A01.0",
                "First",
                "",
                "",
                "",
            ],
            [
                "6",
                "20250301",
                "1",
                "m",
                "r",
                "111",
                "Combo",
                "2",
                "1",
                "TRUE",
                "",
                "B02.1",
                "Second",
                "",
                "",
                "",
            ],
        ]
    )
)


def test_nlm_snomed_map_gives_unconditional_icd10cm_targets_as_suggestions():
    smap = parse_snomed_map(NLM_MAP)
    assert smap.icd10cm("44054006") == (
        ("E11.9", "Type 2 diabetes mellitus without complications"),
    )
    assert smap.icd10cm("38341003") == ()
    assert smap.icd10cm("195967001") == ()
    assert [t for t, _ in smap.icd10cm("111")] == ["A01.0", "B02.1"]
    b = bundle(visit(), PATIENT, condition("a", (SNOMED, "44054006", "Diabetes mellitus type 2")))
    enc = parse_fhir(b, snomed_map=smap).encounters[0].encounter
    assert [(d.system, d.code) for d in enc.diagnoses] == [
        ("snomed", "44054006"),
        ("icd10cm", "E11.9"),
    ]
    with pytest.raises(IntakeError):
        parse_snomed_map("referencedComponentId\tmapTarget\n1\tA00\n")
