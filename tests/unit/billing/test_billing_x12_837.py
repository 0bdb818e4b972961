from dataclasses import replace
from datetime import datetime

import pytest

from services.billing.domain.chargemaster import load_sample_chargemaster
from services.billing.domain.claim import build_claim
from services.billing.domain.x12_837 import build_837, unwritable_reason
from shared.x12 import split_segments
from tests.unit.billing.billing_support import (
    PATIENT,
    SPOUSE,
    coverage,
    make_coded,
    make_institutional,
)
from tests.x12_support import pyx12_validate

AT = datetime(2024, 3, 6, 14, 5)


def claim(coded=None, claim_id="C-1", **kw):
    coded = coded or make_coded()
    cm = load_sample_chargemaster(coded.encounter.site_id)
    return build_claim(coded, claim_id=claim_id, chargemaster=cm, **kw)


def write(claims, **kw):
    return build_837(
        claims,
        interchange_control_number=kw.pop("icn", 42),
        group_control_number=kw.pop("gcn", 7),
        created_at=AT,
        **kw,
    )


def segs(text):
    return split_segments(text)[0]


def find(segments, sid, *prefix):
    return [s for s in segments if s[0] == sid and s[1 : 1 + len(prefix)] == list(prefix)]


def assert_valid(text):
    ok, errors = pyx12_validate(text)
    assert errors == []
    assert ok is True


def test_single_professional_claim():
    batch = write([claim()])
    assert_valid(batch.text)
    s = segs(batch.text)
    assert s[0][0] == "ISA" and s[0][13] == "000000042" and s[0][15] == "P"
    assert s[1] == [
        "GS",
        "HC",
        "RCMSUBMITTER",
        "CLEARINGHOUSE",
        "20240306",
        "1405",
        "7",
        "X",
        "005010X222A1",
    ]
    assert s[2] == ["ST", "837", "0001", "005010X222A1"]
    assert find(s, "CLM") == [["CLM", "C-1", "255", "", "", "11:B:1", "Y", "A", "Y", "Y"]]
    assert find(s, "HI") == [["HI", "ABK:S93401A", "ABF:W010XXA"]]
    assert find(s, "SV1") == [
        ["SV1", "HC:99213:25", "125", "UN", "1", "", "", "1:2"],
        ["SV1", "HC:73610", "85", "UN", "1", "", "", "1"],
        ["SV1", "HC:29540", "45", "UN", "1", "", "", "1"],
    ]
    assert [h[1:] for h in find(s, "HL")] == [["1", "", "20", "1"], ["2", "1", "22", "0"]]
    assert find(s, "NM1", "85") == [
        ["NM1", "85", "2", "NORTH CLINIC", "", "", "", "", "XX", "1234567893"]
    ]
    assert find(s, "N4")[0] == ["N4", "SPRINGFIELD", "IL", "627011234"]
    assert find(s, "REF", "EI") == [["REF", "EI", "123456789"]]
    assert find(s, "NM1", "IL") == [
        ["NM1", "IL", "1", "DOE", "JANE", "", "", "", "MI", "W123456789"]
    ]
    assert find(s, "DMG") == [["DMG", "D8", "19850412", "F"]]
    st_index = next(i for i, x in enumerate(s) if x[0] == "ST")
    se_index = next(i for i, x in enumerate(s) if x[0] == "SE")
    assert s[se_index] == ["SE", str(se_index - st_index + 1), "0001"] == ["SE", "32", "0001"]
    assert s[-2] == ["GE", "1", "7"] and s[-1] == ["IEA", "1", "000000042"]
    assert batch.transactions == {"0001": ["C-1"]}


def test_batch_from_two_sites_has_one_billing_provider_hl_each():
    claims = [
        claim(make_coded(encounter_id="E1"), "N-1"),
        claim(
            make_coded(encounter_id="E2", site_id="south-urgent-care", place_of_service="20"), "S-1"
        ),
        claim(make_coded(encounter_id="E3"), "N-2"),
    ]
    batch = write(claims, usage="T")
    assert_valid(batch.text)
    s = segs(batch.text)
    hls = [h[1:] for h in find(s, "HL")]
    assert hls == [
        ["1", "", "20", "1"],
        ["2", "1", "22", "0"],
        ["3", "1", "22", "0"],
        ["4", "", "20", "1"],
        ["5", "4", "22", "0"],
    ]
    assert [c[1] for c in find(s, "CLM")] == ["N-1", "N-2", "S-1"]
    assert [n[3] for n in find(s, "NM1", "85")] == ["NORTH CLINIC", "SOUTH URGENT CARE"]
    assert find(s, "CLM")[2][5] == "20:B:1"
    assert find(s, "SV1")[6][2] == "144"  # south-urgent-care prices 99213 at 144.00
    assert find(s, "N3", "9 HARBOR RD") == [["N3", "9 HARBOR RD", "SUITE 2"]]
    assert find(s, "REF", "EI")[1] == ["REF", "EI", "987654321"]
    assert s[0][15] == "T"
    assert batch.transactions == {"0001": ["N-1", "S-1", "N-2"]}


def test_claims_split_into_transactions_and_positions_map_back_to_claims():
    claims = [claim(make_coded(encounter_id=f"E{i}"), f"C-{i}") for i in range(5)]
    batch = write(claims, max_claims_per_transaction=2)
    assert_valid(batch.text)
    assert batch.transactions == {"0001": ["C-0", "C-1"], "0002": ["C-2", "C-3"], "0003": ["C-4"]}
    s = segs(batch.text)
    assert [x[2] for x in find(s, "SE")] == ["0001", "0002", "0003"]
    assert s[-2] == ["GE", "3", "7"]
    # Positions as a 999 IK302 counts them (ST = 1) inside transaction 0002.
    st2 = next(i for i, x in enumerate(s) if x[:3] == ["ST", "837", "0002"])
    clm_pos = next(i for i in range(st2, len(s)) if s[i][0] == "CLM" and s[i][1] == "C-3") - st2 + 1
    assert batch.claim_at("0002", clm_pos) == "C-3"
    assert batch.claim_at("0002", 3) is None  # submitter NM1: no claim
    assert batch.claim_at("0009", clm_pos) is None


def test_secondary_coverage_and_dependent_patient():
    coded = make_coded(
        coverages=[
            coverage(relationship="spouse", subscriber=SPOUSE),
            coverage(
                sequence="secondary",
                payer_id="SAMPLE-MEDICAID",
                payer_name="Sample Medicaid",
                member_id="MCD555",
                group_number=None,
                filing_indicator="MC",
            ),
        ]
    )
    batch = write([claim(coded)])
    assert_valid(batch.text)
    s = segs(batch.text)
    assert [h[1:] for h in find(s, "HL")] == [
        ["1", "", "20", "1"],
        ["2", "1", "22", "1"],
        ["3", "2", "23", "0"],
    ]
    assert find(s, "SBR") == [
        ["SBR", "P", "", "GRP100", "", "", "", "", "", "CI"],
        ["SBR", "S", "18", "", "", "", "", "", "", "MC"],
    ]
    assert find(s, "PAT") == [["PAT", "01"]]
    assert find(s, "NM1", "IL")[0][3:5] == ["DOE", "JOHN"]
    assert find(s, "NM1", "QC") == [["NM1", "QC", "1", "DOE", "JANE"]]
    assert find(s, "OI") == [["OI", "", "", "Y", "", "", "Y"]]
    assert [n[-1] for n in find(s, "NM1", "PR")] == ["SAMPLE-COMMERCIAL", "SAMPLE-MEDICAID"]
    # 2320 comes after the 2310B rendering provider and before the first service line.
    order = [x[0] + (x[1] if x[0] in ("NM1", "SBR") else "") for x in s]
    assert order.index("NM182") < order.index("SBRS") < order.index("LX")


@pytest.mark.parametrize("freq", ["7", "8"])
def test_replacement_and_void_carry_ref_f8(freq):
    c = claim(
        make_coded(prior_authorization="PA-1"),
        "C-1R",
        frequency_code=freq,
        original_claim_id="C-1",
        payer_claim_control_number="PCN-2024-0001",
    )
    batch = write([c])
    assert_valid(batch.text)
    s = segs(batch.text)
    assert find(s, "CLM")[0][5] == f"11:B:{freq}"
    assert find(s, "REF", "F8") == [["REF", "F8", "PCN-2024-0001"]]
    refs = [x[1] for x in s if x[0] == "REF"]
    assert refs == ["EI", "G1", "F8"]  # TR3 order: prior auth before payer claim number


def test_institutional_claim_837i():
    coded = make_institutional()
    batch = write([claim(coded, "H-1")])
    assert batch.claim_type == "institutional"
    assert_valid(batch.text)
    s = segs(batch.text)
    assert s[1][-1] == "005010X223A2" and s[2] == ["ST", "837", "0001", "005010X223A2"]
    assert find(s, "CLM") == [["CLM", "H-1", "890", "", "", "13:A:1", "", "A", "Y", "Y"]]
    assert find(s, "DTP", "434") == [["DTP", "434", "RD8", "20240305-20240305"]]
    assert find(s, "CL1") == [["CL1", "1", "7", "01"]]
    assert find(s, "HI") == [
        ["HI", "ABK:S93401A"],
        ["HI", "ABF:W010XXA", "ABF:E119"],
        ["HI", "BBR:0QSH04Z:D8:20240305"],
    ]
    assert find(s, "SV2") == [
        ["SV2", "0450", "HC:99284:25", "672", "UN", "1"],
        ["SV2", "0320", "HC:73610", "136", "UN", "1"],
        ["SV2", "0260", "HC:96372", "56", "UN", "1"],
        ["SV2", "0636", "HC:J1885", "26", "UN", "2"],
    ]
    assert find(s, "NM1", "71")[0][-1] == "1234567893"
    assert find(s, "NM1", "82")[0][-1] == "1245319599"  # rendering differs from attending
    assert [h[1:] for h in find(s, "HL")] == [["1", "", "20", "1"], ["2", "1", "22", "0"]]


def test_inpatient_837i_with_admission_and_present_on_admission():
    coded = make_institutional(encounter_class="IMP")
    inst = coded.encounter.institutional.model_copy(
        update={"type_of_bill": "0111", "admission_date": coded.encounter.service_date}
    )
    enc = coded.encounter.model_copy(update={"institutional": inst})
    dx = [d.model_copy(update={"present_on_admission": "Y"}) for d in coded.diagnoses]
    coded = coded.model_copy(update={"encounter": enc, "diagnoses": dx})
    batch = write([claim(coded, "H-2")])
    assert_valid(batch.text)
    s = segs(batch.text)
    assert find(s, "CLM")[0][5] == "11:A:1"
    assert find(s, "DTP", "435") == [["DTP", "435", "D8", "20240305"]]
    assert find(s, "HI")[0] == ["HI", "ABK:S93401A:::::::Y"]


def test_pyx12_check_really_fails_on_a_broken_file():
    text = write([claim()]).text
    ok, errors = pyx12_validate(text.replace("HI*ABK:S93401A", "HI*ZZZ:S93401A"))
    assert ok is False and errors


def test_build_837_rejects_bad_input():
    prof, inst = claim(), claim(make_institutional(), "H-1")
    with pytest.raises(ValueError, match="mix claim types"):
        write([prof, inst])
    with pytest.raises(ValueError, match="no claims"):
        write([])
    with pytest.raises(ValueError, match="interchange_control_number"):
        write([prof], icn=0)
    with pytest.raises(ValueError, match="duplicate claim id C-1"):
        write([prof, prof])
    c = claim(make_coded(), "C-9")
    unpriced = replace(c, lines=(replace(c.lines[0], charge=None), *c.lines[1:]))
    with pytest.raises(ValueError, match=r"claim C-9: lines must be priced \(unpriced: \[1\]\)"):
        write([unpriced])
    no_member = claim(make_coded(coverages=[coverage(member_id=None)]), "C-8")
    with pytest.raises(ValueError, match="claim C-8: payer.member_id"):
        write([no_member])


def test_unwritable_reason_names_the_field_and_clean_claims_are_writable():
    assert unwritable_reason(claim()) is None
    assert unwritable_reason(claim(make_institutional(), "H-1")) is None
    no_address = claim(make_coded(patient=PATIENT.model_copy(update={"address": None})), "C-7")
    assert unwritable_reason(no_address) == "claim C-7: patient.address is required for the 837"
    with pytest.raises(ValueError, match="claim C-7: patient.address"):
        write([no_address])
    no_payer = claim(make_coded(coverages=[]), "C-6")
    assert unwritable_reason(no_payer) == "claim C-6: payer is required for the 837"


def test_claim_ids_with_separators_are_refused():
    bad = replace(claim(), claim_id="C*1")
    with pytest.raises(ValueError, match="claim id must be 1-38 characters"):
        write([bad])


def test_837i_dependent_secondary_many_diagnoses_and_procedures():
    from shared.events import CodedProcedure

    dx = [
        "S93401A",
        "W010XXA",
        "E119",
        "I10",
        "E785",
        "J069",
        "R509",
        "M545",
        "R0789",
        "R519",
        "K219",
        "F419",
        "G4700",
        "N390",
        "R112",
    ]
    procs = [
        CodedProcedure(code="99284", diagnosis_pointers=[1]),
        CodedProcedure(code="0QSH04Z", system="icd10pcs"),
        CodedProcedure(code="0SRC0J9", system="icd10pcs"),
    ]
    coded = make_institutional(
        diagnoses=dx,
        procedures=procs,
        coverages=[
            coverage(relationship="child", subscriber=SPOUSE),
            coverage(sequence="secondary", payer_id="P2", payer_name="Second Plan", member_id="X9"),
        ],
    )
    batch = write([claim(coded, "H-3")])
    assert_valid(batch.text)
    s = segs(batch.text)
    his = find(s, "HI")
    assert [len(h) - 1 for h in his] == [1, 12, 2, 1, 1]  # ABK, ABF x12, ABF x2, BBR, BBQ
    assert his[3] == ["HI", "BBR:0QSH04Z:D8:20240305"] and his[4] == [
        "HI",
        "BBQ:0SRC0J9:D8:20240305",
    ]
    assert find(s, "PAT") == [["PAT", "19"]]
    assert find(s, "SBR")[1][:3] == ["SBR", "S", "18"]


def test_837p_drug_line_with_ndc():
    from decimal import Decimal

    from shared.events import CodedProcedure

    procs = [
        CodedProcedure(code="96372", diagnosis_pointers=[1]),
        CodedProcedure(code="J1885", units=Decimal(2), ndc="0409-3795-01", diagnosis_pointers=[1]),
    ]
    batch = write([claim(make_coded(procedures=procs))])
    assert_valid(batch.text)
    s = segs(batch.text)
    assert find(s, "LIN") == [["LIN", "", "N4", "00409379501"]]
    assert find(s, "CTP") == [["CTP", "", "", "", "2", "UN"]]
