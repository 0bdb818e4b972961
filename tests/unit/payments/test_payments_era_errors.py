"""Broken 835s raise X12Error naming the segment number; no partial data, no PHI."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.payments.domain import parse_835
from shared.x12 import X12Error

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures/x12/835/authored/claim-and-line-cas.835"
TEXT = FIXTURE.read_text()
SEGS = TEXT.strip().rstrip("~").split("~")  # SEGS[i] is segment number i + 1


def join(segs: list[str]) -> str:
    return "~".join(segs) + "~\n"


def replace(number: int, new: str) -> str:
    segs = list(SEGS)
    segs[number - 1] = new
    return join(segs)


def error_of(text: str) -> X12Error:
    with pytest.raises(X12Error) as exc:
        parse_835(text)
    return exc.value


def test_fixture_layout_assumed_below():
    assert SEGS[14].startswith("CLP*CLM3001") and SEGS[34] == "SE*33*0001" and len(SEGS) == 37


def test_truncated_after_a_complete_segment():
    err = error_of(join(SEGS[:25]))
    assert str(err) == (
        "segment 26 (SE): file truncated: ends in loop 2110 service payment, expected SE"
    )
    assert err.segment == 26


def test_truncated_inside_a_segment():
    text = TEXT[: TEXT.index("CLP*CLM3001") + len("CLP*CLM3001*1*50")]
    err = error_of(text)
    assert str(err).startswith("segment 15 (CLP): CLP01-CLP04")


def test_truncated_inside_isa():
    assert "ISA segment truncated" in str(error_of(TEXT[:60]))


def test_wrong_se_count():
    err = error_of(replace(35, "SE*34*0001"))
    assert str(err) == "segment 35 (SE): SE01 segment count is 34, expected 33"


def test_se_control_number_mismatch():
    err = error_of(replace(35, "SE*33*0002"))
    assert str(err) == "segment 35 (SE): SE02 does not match ST02 control number 0001"


def test_missing_se():
    err = error_of(join(SEGS[:34] + SEGS[35:]))
    assert str(err) == "segment 35 (GE): expected SE closing transaction 0001 before GE"


def test_missing_ge():
    err = error_of(join(SEGS[:35] + SEGS[36:]))
    assert str(err) == "segment 36 (IEA): expected GE closing the functional group before IEA"


def test_missing_iea():
    err = error_of(join(SEGS[:36]))
    assert str(err) == "segment 37 (IEA): file truncated: ends in the interchange, expected IEA"


def test_iea_control_number_mismatch():
    err = error_of(replace(37, "IEA*1*000000999"))
    assert str(err) == (
        "segment 37 (IEA): IEA02 does not match ISA13 interchange control number 000000203"
    )


def test_ge_counts_and_control_number():
    assert "GE01 must count the 1 transaction set(s)" in str(error_of(replace(36, "GE*2*1")))
    assert str(error_of(replace(36, "GE*1*7"))).startswith("segment 36 (GE): GE02 does not match")


def test_unknown_segment_inside_a_loop():
    segs = list(SEGS)
    segs.insert(23, "XYZ*1")  # becomes segment 24, inside the first service line
    segs[35] = "SE*34*0001"
    err = error_of(join(segs))
    assert str(err) == (
        "segment 24 (XYZ): unexpected XYZ in loop 2110 service payment; "
        "expected DTM, CAS, REF, AMT, QTY, LQ, SVC, CLP, LX, PLB or SE"
    )


def test_known_segment_in_the_wrong_loop():
    # MOA belongs to loop 2100; after an SVC we are in loop 2110.
    err = error_of(replace(23, "MOA***MA01"))
    assert err.segment == 23 and "unexpected MOA in loop 2110" in str(err)
    err = error_of(replace(17, "LQ*HE*N130"))  # LQ belongs to loop 2110, not 2100
    assert str(err).startswith(
        "segment 17 (LQ): unexpected LQ in loop 2100 claim payment; expected CAS"
    )
    err = error_of(replace(13, "SVC*HC:99213*10*10"))
    assert str(err).startswith(
        "segment 13 (SVC): unexpected SVC in loop 1000B payee identification"
    )


def test_non_numeric_clp03():
    err = error_of(replace(15, "CLP*CLM3001*1*5OO*300*40*12*ICN9001*11*1"))
    assert (
        str(err) == "segment 15 (CLP): CLP03 is not a number; expected a decimal amount like 123.45"
    )


@pytest.mark.parametrize(
    ("number", "segment", "where"),
    [
        (4, "BPR*I*3,00*C*CHK************20240315", "BPR02"),
        (24, "CAS*CO*45*60**253*NaN", "CAS06"),
        (25, "CAS*PR*1*20*1E2*2*5", "CAS04"),
        (22, "SVC*HC:99214*250* 160**1", "SVC03"),
        (27, "AMT*B6*1_90", "AMT02"),
    ],
)
def test_non_numeric_amounts(number, segment, where):
    err = error_of(replace(number, segment))
    assert err.segment == number and f"{where} is not a number" in str(err)


def test_bad_codes_and_missing_elements():
    assert "CAS01 must be a group code" in str(error_of(replace(16, "CAS*XX*45*15")))
    assert "CLP02 '99' is not a claim status code" in str(
        error_of(replace(15, "CLP*CLM3001*99*500*300"))
    )
    assert "CAS06 is empty" in str(error_of(replace(25, "CAS*PR*1*20*1*2")))
    err = error_of(replace(3, "ST*837*0001"))
    assert str(err) == "segment 3 (ST): expected ST*835 with a control number"


def test_wrong_functional_group():
    err = error_of(replace(2, "GS*HC*ACMEPLAN*RCMCLINIC*20240315*1000*1*X*005010X222A1"))
    assert err.segment == 2 and "GS*HP" in str(err)


def test_missing_trn():
    err = error_of(join(SEGS[:4] + SEGS[5:34] + ["SE*32*0001"] + SEGS[35:]))
    assert str(err) == "segment 6 (N1): expected TRN (reassociation trace) before the payer loop"


def test_errors_never_carry_phi():
    # Patient last name and member id in a malformed claim-loop segment.
    err = error_of(replace(17, "NM1*ZZ*1*TESTPATIENT*PAT3****MI*MEM00003"))
    assert err.segment == 17
    msg = str(err)
    assert "TESTPATIENT" not in msg and "MEM00003" not in msg
    err = error_of(replace(15, "CLP*CLM3001*1*SMITHJOHN*300"))
    assert "SMITHJOHN" not in str(err)


def test_second_interchange_with_other_separators_is_refused():
    other = TEXT.replace("*", "|")
    err = error_of(TEXT + other)
    assert err.segment == 38 and "same separators" in str(err)


def test_garbage_after_iea():
    err = error_of(TEXT + "BPR*I*1*C*CHK~")
    assert str(err).startswith("segment 38 (BPR): unexpected BPR outside an interchange")


def test_not_x12_and_not_str():
    with pytest.raises(X12Error):
        parse_835("hello world")
    with pytest.raises(TypeError):
        parse_835(TEXT.encode())
