"""Compliant provider-query wording (AHIMA/ACDIS): what the validator accepts and refuses.

The refused examples are the kinds of query the 2022 "Guidelines for Achieving a Compliant
Query Practice" give as non-compliant: leading (a single answer, "please document",
presumed agreement), yes/no for a new diagnosis, and any mention of the financial impact.
"""

from __future__ import annotations

import pytest

from services.coding.domain import queries as q

NOTE = (
    "Subjective: 58 yo here for follow up of diabetes. Taking metformin 500 mg BID.\n"
    "Objective: A1c 8.2 last month. BP 128/80.\n"
    "Assessment: Diabetes mellitus, not at goal. Ankle sprain after a fall.\n"
    "Plan: increase metformin. Follow up 3 months."
)
QUOTES = [("Diabetes mellitus, not at goal", None), ("Taking metformin 500 mg BID", None)]
OPTIONS = ["Type 1 diabetes mellitus", "Type 2 diabetes mellitus", "Secondary diabetes"]
QUESTION = (
    "Based on the clinical indicators quoted from the record, please clarify the type of "
    "diabetes mellitus being treated at this encounter."
)


def draft(question=QUESTION, options=OPTIONS, quotes=QUOTES, reason="diabetes_type"):
    return q.QueryDraft(reason, question, q.locate(NOTE, quotes), q.with_standard_options(options))


def problems(d: q.QueryDraft) -> list[tuple[str, str]]:
    return [(p.field, p.message) for p in q.validate(d, NOTE)]


def test_a_compliant_multiple_choice_query_passes():
    d = draft()
    assert problems(d) == []
    assert d.options[-2:] == (q.OTHER, q.UNDETERMINED)  # always offered, added when missing
    assert d.indicators[0].text == NOTE[d.indicators[0].start : d.indicators[0].end]


@pytest.mark.parametrize(
    "question",
    [
        "Please clarify the laterality of the ankle sprain documented in the assessment.",
        "Can you clarify the type of diabetes, given the indicators quoted from the note?",
        "The A1c and the medications are quoted below. What type of diabetes is the patient "
        "being treated for at this visit?",
        # "fall" and "BP" are clinical words; "audit" would be AUDIT-C here, not money
        "Following the fall, please clarify the diagnosis that best describes the ankle injury.",
    ],
)
def test_neutral_questions_pass(question):
    assert problems(draft(question=question)) == []


@pytest.mark.parametrize(
    ("question", "rule"),
    [
        (
            "Please document type 2 diabetes mellitus so that the record is complete.",
            "please document",
        ),
        ("Could you document the diabetes as uncontrolled?", "particular answer"),
        ("The diabetes should be documented as type 2 with hyperglycemia.", "must say"),
        ("Don't you agree the patient has type 2 diabetes given the metformin?", "presumes"),
        ("We recommend documenting the type of diabetes for the patient.", "recommends"),
        (
            "The metformin suggests it: is this Type 2 diabetes mellitus or something else?",
            "names one of the answers",
        ),
        ("What is the best answer for the diabetes type seen at this encounter?", "preferred"),
    ],
)
def test_leading_questions_are_refused(question, rule):
    found = problems(draft(question=question))
    assert any(f == "question" and "lead" in m and rule in m for f, m in found) or any(
        f == "question" and rule in m for f, m in found
    ), found


@pytest.mark.parametrize(
    ("question", "term"),
    [
        (
            "Clarifying the diabetes type will improve reimbursement for this visit.",
            "reimbursement",
        ),
        ("Please clarify the diabetes type; this affects the DRG assigned.", "drg"),
        ("Please clarify the diabetes type, as it changes the patient's HCC risk score.", "hcc"),
        ("Please clarify the diabetes type: the payer denies unspecified codes.", "payer"),
        ("Please clarify the diabetes type; the difference is worth $45.", "an amount of money"),
        (
            "Please clarify the diabetes type for the risk adjustment of this patient.",
            "risk adjustment",
        ),
        ("Please clarify the diabetes type so the claim can be billed.", "claim"),
    ],
)
def test_any_mention_of_money_is_refused_naming_the_term(question, term):
    found = problems(draft(question=question))
    assert [f for f, m in found if term in m and "payment or financial impact" in m] == [
        "question"
    ], found


def test_options_must_offer_real_alternatives():
    # one clinical answer alone is a leading query
    found = problems(draft(options=["Type 2 diabetes mellitus"]))
    assert any("at least two" in m for _, m in found), found
    # yes/no for a diagnosis not yet documented
    found = problems(draft(options=["Yes", "No"]))
    assert any("yes/no" in m for _, m in found), found
    # an option marked as the expected one
    found = problems(draft(options=["Type 2 diabetes mellitus (recommended)", "Type 1"]))
    assert ("options[0]", "leads: marks this answer as the preferred one") in found
    # money in an option
    found = problems(draft(options=["Type 2 (higher reimbursement)", "Type 1"]))
    assert any(f == "options[0]" and "reimbursement" in m for f, m in found), found
    # the same answer twice
    found = problems(draft(options=["Type 1", "type 1", "Type 2"]))
    assert ("options", "the same option is offered twice") in found


def test_other_and_clinically_undetermined_are_required():
    d = q.QueryDraft("diabetes_type", QUESTION, q.locate(NOTE, QUOTES), tuple(OPTIONS))
    fields = problems(d)
    assert ("options", f"must include '{q.OTHER}'") in fields
    assert ("options", f"must include '{q.UNDETERMINED}'") in fields


def test_indicators_are_quotes_from_the_note():
    with pytest.raises(q.QueryDraftError) as e:
        q.locate(NOTE, [("Diabetes mellitus, not at goal", None), ("type 2 diabetes", None)])
    assert [p.field for p in e.value.problems] == ["indicators[1]"]
    assert "type 2" not in str(e.value)  # the draft is never quoted back
    # a span that no longer matches the note (it was edited since) is refused
    d = draft()
    moved = q.QueryDraft(
        d.reason,
        d.question,
        (q.Indicator(d.indicators[0].text, d.indicators[0].start + 1, d.indicators[0].end + 1),),
        d.options,
    )
    assert ("indicators[0]", "is not quoted from the note (no such span)") in problems(moved)
    assert ("indicators", "cite at least one clinical indicator quoted from the note") in (
        problems(q.QueryDraft(d.reason, d.question, (), d.options))
    )
    # a quote that occurs twice is taken where the coder says
    twice = "metformin"
    second = NOTE.index(twice, NOTE.index(twice) + 1)
    [ind] = q.locate(NOTE, [(twice, second)])
    assert ind.start == second


def test_refusals_never_repeat_the_drafts_words():
    d = draft(question="Zqxmarker: please document type 2 to improve payment.")
    messages = " ".join(m for _, m in problems(d))
    assert "zqxmarker" not in messages.lower() and "type 2" not in messages.lower()
    assert "'payment'" in messages  # the listed term it matched, nothing else


def test_unknown_reason_and_short_question():
    found = problems(draft(question="Type?", reason="upcoding"))
    assert {f for f, _ in found} >= {"reason", "question"}
