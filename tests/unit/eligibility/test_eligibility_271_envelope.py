"""The 271 reader goes through the shared X12 tokenizer (shared.x12.prepare), and a 271
that rejects a whole 270 at the information source or receiver (no TRN) answers every
request of that 270 interchange, named by the 270's BHT03 the 271 echoes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from services.intake.domain.eligibility import (
    EligibilityRequest,
    build_270,
    match_results,
    read_271,
)
from shared.events import Person
from shared.x12 import BARE_TRANSACTION_WARNING, WRAPPED_WARNING, X12Error

REAL = Path(__file__).resolve().parents[2] / "fixtures" / "x12" / "271"
SUBSCRIBER = REAL / "linuxforhealth" / "subscriber-health-benefit-check.271"
RECEIVER_ERROR = REAL / "stupidedi" / "x279a1-error-not-eligible-for-inquiries.edi"
TRACE = "93175-012547"


def _plain(text: str) -> tuple[str, list[tuple]]:
    """What matters of a parse, to compare a reshaped file with its original."""
    response = read_271(text)
    return response.interchange_control_number, [
        (r.trace_number, r.level, r.status, r.plan_name, r.member_id, len(r.benefits))
        for r in response.results
    ]


def _one_line(text: str) -> str:
    return text.replace("\r", "").replace("\n", "")


# --------------------------------------------------------------------------- the tokenizer


@pytest.mark.parametrize("path", [SUBSCRIBER, RECEIVER_ERROR], ids=lambda p: p.parent.name)
def test_isa_wrapped_at_80_columns_reads_like_the_original(path):
    flat = _one_line(path.read_text())
    wrapped = "\r\n".join(flat[i : i + 80] for i in range(0, len(flat), 80))
    assert "\n" in wrapped[:106]  # the ISA itself is broken
    response = read_271(wrapped)
    assert _plain(wrapped) == _plain(flat)
    assert response.warnings[0] == WRAPPED_WARNING


def test_ctrl_z_and_nul_padding_after_iea_is_dropped():
    text = SUBSCRIBER.read_text() + "\x1a" + "\x00" * 300
    response = read_271(text)
    assert _plain(text) == _plain(SUBSCRIBER.read_text())
    [r] = response.results
    assert (r.trace_number, r.status) == (TRACE, "active")


def test_bare_st_se_is_read_with_a_warning():
    flat = _one_line(SUBSCRIBER.read_text())
    bare = flat[flat.index("ST*271") : flat.index("GE*")]
    response = read_271(bare)
    assert BARE_TRANSACTION_WARNING in response.warnings
    [r] = response.results
    assert (r.trace_number, r.level, r.status, r.plan_name) == (
        TRACE,
        "subscriber",
        "active",
        "GOLD 123 PLAN",
    )
    assert r.member_id == "123456789"


def test_no_interchange_at_all_is_still_a_structure_error():
    with pytest.raises(X12Error, match="no ISA"):
        read_271("HL*1**20*1~")


# --------------------------------------------------------------------------- whole-inquiry AAA

AT = datetime(2024, 3, 4, 9, 30, tzinfo=UTC)


def _request(trace: str, member: str) -> EligibilityRequest:
    return EligibilityRequest(
        trace_number=trace,
        payer_id="ACME01",
        payer_name="ACME HEALTH",
        provider_npi="1234567893",
        provider_name="NORTH CLINIC",
        member_id=member,
        subscriber=Person(first_name="JANE", last_name="DOE", birth_date=date(1980, 1, 2)),
        service_date=date(2024, 3, 4),
    )


def _inquiry(icn: int, *traces: str) -> str:
    """A 270 from intake's writer (GS06 = ISA13, as the flow renders it)."""
    requests = [_request(t, f"W{n}") for n, t in enumerate(traces)]
    return build_270(
        requests,
        sender_id="RCM",
        receiver_id="ACME",
        interchange_control_number=icn,
        group_control_number=icn,
        created_at=AT,
    )


def _segment(text: str, sid: str) -> list[str]:
    return next(s.split("*") for s in text.split("~") if s.startswith(sid + "*"))


def _source_rejection(bht03: str | None, aaa: str = "AAA*Y**42*R") -> str:
    """The payer's 271 refusing a whole 270 at the information source (2000A), as X279A1
    has it: no receiver or subscriber loops, no TRN; BHT03 echoes the 270's."""
    segs = [
        "ST*271*0001*005010X279A1",
        f"BHT*0022*11*{bht03 or ''}*20240304*0931",
        "HL*1**20*0",
        aaa,
        "NM1*PR*2*ACME HEALTH*****PI*ACME01",
    ]
    segs.append(f"SE*{len(segs) + 1}*0001")
    isa = (
        "ISA*00*          *00*          *ZZ*ACME           *ZZ*RCM            "
        "*240304*0931*^*00501*000000077*0*P*:~GS*HB*ACME*RCM*20240304*0931*77*X*005010X279A1~"
    )
    return isa + "~".join(segs) + "~GE*1*77~IEA*1*000000077~"


def test_source_rejection_answers_every_request_of_its_270_and_no_other():
    sent = _inquiry(41, "RCM0000000001-1", "RCM0000000002-2")
    bht03 = _segment(sent, "BHT")[3]
    response = read_271(_source_rejection(bht03))
    [r] = response.results
    assert (r.level, r.status, r.trace_number, r.inquiry_reference) == (
        "information_source",
        "rejected",
        None,
        bht03,
    )
    assert r.inquiry_interchange == 41
    assert response.rejected_interchanges == (41,)
    # Checks of the rejected 270 get the payer-down action; one sent in another 270 is
    # left waiting for its own answer.
    sent_in = {"RCM0000000001-1": 41, "RCM0000000002-2": 41, "RCM0000000003-1": 42}
    matched = match_results(sent_in, response.results, sent_in=sent_in)
    assert set(matched) == {"RCM0000000001-1", "RCM0000000002-2"}
    for result in matched.values():
        assert [(x.loop, x.reason, x.action) for x in result.rejections] == [
            ("2000A", "42", "retry")
        ]
        assert result.actions() == ("retry",)


@pytest.mark.parametrize(
    ("aaa", "action"),
    [("AAA*Y**42*R", "retry"), ("AAA*N**79*C", "review"), ("AAA*Y**80*N", "retry")],
)
def test_source_rejection_reason_decides_the_action(aaa, action):
    response = read_271(_source_rejection(_segment(_inquiry(5, "T-1"), "BHT")[3], aaa))
    matched = match_results(["T-1"], response.results, sent_in={"T-1": 5})
    assert matched["T-1"].actions() == (action,)


def test_a_foreign_bht03_still_answers_every_request_given():
    # Another writer's BHT03 (the TR3 example's) names no rcm interchange: the rejection
    # answers every request the caller asks about, as before.
    response = read_271(RECEIVER_ERROR.read_text())
    [r] = response.results
    assert (r.inquiry_reference, r.inquiry_interchange) == ("10001234", None)
    assert response.rejected_interchanges == ()
    matched = match_results(["A", "B"], response.results, sent_in={"A": 1, "B": 2})
    assert matched == {"A": r, "B": r}


def test_an_answer_with_its_own_trace_wins_over_the_whole_inquiry_rejection():
    own = read_271(SUBSCRIBER.read_text()).results[0]
    batch = read_271(_source_rejection("9-0001")).results[0]
    matched = match_results([TRACE, "X"], [batch, own], sent_in={TRACE: 9, "X": 9})
    assert matched[TRACE] is own
    assert matched["X"] is batch


def test_a_subscriber_loop_without_trn_rejects_no_request():
    text = _one_line(SUBSCRIBER.read_text())
    text = text.replace("TRN*2*93175-012547*9877281234~", "")
    text = text.replace("EB*1**30**GOLD 123 PLAN~", "AAA*Y**75*C~EB*1**30**GOLD 123 PLAN~")
    response = read_271(text)
    [r] = response.results
    assert (r.trace_number, r.status) == (None, "rejected")
    assert match_results(["A"], response.results) == {}


def test_rcm_270_bht03_has_the_interchange_the_271_names():
    # The writer's BHT03 is what inquiry_interchange reads back: keep the two in step.
    sent = _inquiry(123456, "T-1")
    result = read_271(_source_rejection(_segment(sent, "BHT")[3])).results[0]
    assert result.inquiry_interchange == 123456
    assert replace(result, inquiry_reference="x-1").inquiry_interchange is None
