"""X12 parse errors name the segment number and id, never a segment's content (issue 18).

The probe: an 835 whose claim segments use another element separator than ISA declares
was refused with ``segment 15 (NM1|QC|1|DOE|JOHN|...): unexpected NM1|QC|1|DOE|JOHN|...``:
the unsplit segment (patient name, member id) was taken for its id. The inputs are the
real-world samples in tests/fixtures (LinuxForHealth 835s, imsweb 999/277CA, the 277
written for followup's tests), broken one segment at a time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from services.billing.domain.acks import parse_277ca, parse_999
from services.followup.domain.x12_277 import parse_277
from services.payments.domain.era import parse_835
from shared.x12 import X12Error, check_envelope, shown, split_segments

X12 = Path(__file__).resolve().parents[2] / "fixtures" / "x12"
MANAGED_CARE = (X12 / "835/linuxforhealth/managed-care.835").read_text()
ACK_999 = (X12 / "billing/imsweb/x12_999_rejected.txt").read_text()
ACK_277CA = (X12 / "billing/imsweb/x12_277CA_rejected.txt").read_text()
STATUS_277 = (X12 / "followup/status_response.277").read_text()
# Patient and member values of the samples, which a message must never carry.
PATIENT = ("BUDD", "WILLIAM", "33344555510")


def _error(parse, text: str) -> X12Error:
    with pytest.raises(X12Error) as exc:
        parse(text)
    return exc.value


def _assert_free_of(message: str, *values: str) -> None:
    for v in values:
        assert v not in message, (v, message)


def test_a_patient_segment_with_another_separator_is_named_by_position_only():
    segment = "NM1*QC*1*BUDD*WILLIAM****MI*33344555510"
    assert segment in MANAGED_CARE
    text = MANAGED_CARE.replace(segment, segment.replace("*", "|"))
    err = _error(parse_835, text)
    assert err.segment == 15 and err.segment_id is None
    msg = str(err)
    assert msg.startswith("segment 15: segment id is not 2-3 letters or digits")
    assert "a separator other than the one ISA declares" in msg
    assert "expected CAS, NM1" in msg  # still says what the loop allows
    _assert_free_of(msg, *PATIENT, "NM1|QC")


def test_a_whole_file_with_another_separator_after_isa_quotes_nothing():
    isa, _, rest = MANAGED_CARE.partition("~")
    err = _error(parse_835, isa + "~" + rest.replace("*", "|"))
    assert err.segment == 2 and err.segment_id is None
    _assert_free_of(str(err), *PATIENT, "RUSHMORE", "GS|HP")


def test_a_second_payee_is_not_told_to_be_a_payee():
    # The probe's "unexpected N1*PE; expected N1*PE".
    text = MANAGED_CARE.replace(
        "REF*TJ*777667755~", "N1*PE*OTHER CLINIC*XX*5544667733~REF*TJ*777667755~"
    ).replace("SE*26*112233", "SE*27*112233")
    msg = str(_error(parse_835, text))
    assert msg == (
        "segment 11 (N1): unexpected N1 in loop 1000B payee identification;"
        " expected N3, N4, REF, RDM, LX, CLP, PLB or SE"
    )


def test_the_payer_and_payee_loops_are_asked_for_by_name():
    text = MANAGED_CARE.replace("N1*PR*RUSHMORE LIFE", "N1*PE*RUSHMORE LIFE")
    assert str(_error(parse_835, text)) == (
        "segment 7 (N1): N101 must be PR: the payer loop (1000A) comes first; expected N1*PR"
    )
    text = MANAGED_CARE.replace("N1*PE*ACME MEDICAL", "N1*ZZ*ACME MEDICAL")
    assert str(_error(parse_835, text)) == (
        "segment 10 (N1): N101 must be PE: the payee loop (1000B) follows the payer's;"
        " expected N1*PE"
    )


def test_a_name_in_a_qualifier_position_is_not_quoted():
    # Misaligned NM1: the last name where NM101 belongs.
    text = MANAGED_CARE.replace("NM1*QC*1*BUDD*WILLIAM", "NM1*BUDD*1*WILLIAM")
    msg = str(_error(parse_835, text))
    assert msg.startswith("segment 15 (NM1): NM101 (a 4-character value, not shown)")
    _assert_free_of(msg, *PATIENT)


def test_shown_quotes_only_short_numbers_and_single_characters():
    assert shown("99") == "'99'" and shown("Q") == "'Q'"
    assert shown("000000907", 9, quote=False) == "000000907"
    assert shown("DOE") == "(a 3-character value, not shown)"
    assert shown("33344555510", 9) == "(a 11-character value, not shown)"
    assert shown("") == "(empty)"
    assert shown("２") != "'２'"  # a non-ASCII digit is not a code


def test_x12error_drops_what_is_not_a_segment_id():
    err = X12Error("boom", 3, "NM1|QC|1|DOE|JOHN")
    assert err.segment_id is None and str(err) == "segment 3: boom"
    assert X12Error("boom", 3, "NM1").segment_id == "NM1"


def test_check_envelope_names_an_unsplit_segment_by_position():
    segments, _ = split_segments(MANAGED_CARE.replace("DTM*405*20020314", "DTM|405|20020314"))
    with pytest.raises(X12Error) as exc:
        check_envelope(segments)
    assert exc.value.segment == 6 and "20020314" not in str(exc.value)


def test_999_errors_do_not_quote_values():
    text = ACK_999.replace("ST*999*", "ST*DOEJOHN*", 1)
    msg = str(_error(parse_999, text))
    assert "ST01" in msg and "DOEJOHN" not in msg
    msg = str(_error(parse_999, ACK_999.replace("IK3*NM*17**1", "IK3*NM*SMITH**1", 1)))
    assert msg == "segment 6 (IK3): IK302 segment position (a 5-character value, not shown)" + (
        " is not a number"
    )
    msg = str(_error(parse_999, ACK_999.replace("IK5*R*5", "IK5*JONES*5", 1)))
    assert msg.startswith("segment 7 (IK5): IK501 status (a 5-character value, not shown)")
    assert "JONES" not in msg


def test_277ca_errors_do_not_quote_values():
    patient_stc = "STC*A7|562|85*20110311*WQ*199.14"
    assert patient_stc in ACK_277CA
    msg = str(_error(parse_277ca, ACK_277CA.replace(patient_stc, patient_stc[:-6] + "DOE12")))
    assert msg == "segment 22 (STC): STC04 amount is not a number"


def test_277_errors_name_the_element_not_the_date_or_amount():
    bad_date = STATUS_277.replace("STC*F1:65*20240310", "STC*F1:65*20241310", 1)
    msg = str(_error(parse_277, bad_date))
    assert msg == "segment 14 (STC): STC02 is not a valid date (expected CCYYMMDD)"
    bad_amount = STATUS_277.replace("**125*100*", "**125*1O0*", 1)
    msg = str(_error(parse_277, bad_amount))
    assert msg == "segment 14 (STC): STC05 is not a decimal amount"
    bad_dos = STATUS_277.replace("DTP*472*RD8*20240105-", "DTP*472*RD8*20240199-", 1)
    assert bad_dos != STATUS_277
    msg = str(_error(parse_277, bad_dos))
    assert "DTP03 is not a valid date" in msg and "20240199" not in msg


def test_277_claim_without_status_is_named_by_its_trn():
    segments = STATUS_277.split("~")
    first_stc = next(i for i, s in enumerate(segments) if s.strip().startswith("STC*"))
    trn_at = max(i for i, s in enumerate(segments[:first_stc]) if s.strip().startswith("TRN*2*"))
    del segments[first_stc]
    text = "~".join(segments)
    se = next(s for s in text.split("~") if s.strip().startswith("SE*"))
    count = int(se.strip().split("*")[1])
    text = text.replace(se.strip(), se.strip().replace(f"SE*{count}*", f"SE*{count - 1}*"))
    err = _error(parse_277, text)
    assert err.segment == trn_at + 1 and err.segment_id == "TRN"
    assert "CLM001" not in str(err)
