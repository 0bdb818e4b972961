"""Provider queries: their states, answers as addenda, and the drafts the engine's result calls for."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.coding.domain import engine
from services.coding.domain import queries as q
from shared.events import Encounter


def test_the_life_of_a_query():
    assert q.next_state("draft", "send") == "sent"
    assert q.next_state("sent", "escalate") == "escalated"
    assert q.next_state("escalated", "answer") == "answered"
    assert q.next_state("answered", "close") == "closed"
    assert q.next_state("sent", "answer") == "answered"
    for state in ("draft", "sent", "escalated"):
        assert q.next_state(state, "cancel") == "cancelled"
    assert q.OPEN == {"sent", "escalated"}
    assert set(q.STATES) == {"draft", "sent", "answered", "closed", "cancelled", "escalated"}


@pytest.mark.parametrize(
    ("state", "action"),
    [
        ("draft", "answer"),  # nobody was asked yet
        ("draft", "escalate"),
        ("answered", "answer"),  # answered once
        ("answered", "cancel"),
        ("closed", "send"),
        ("cancelled", "send"),
        ("cancelled", "answer"),
        ("escalated", "escalate"),
    ],
)
def test_steps_a_state_does_not_allow(state, action):
    with pytest.raises(q.QueryStateError) as e:
        q.next_state(state, action)
    assert state in str(e.value)


def test_answers_are_one_of_the_options_and_other_needs_words():
    options = list(q.with_standard_options(["Right", "Left"]))
    assert q.check_answer(options, "Left", None) == []
    assert q.check_answer(options, q.UNDETERMINED, None) == []
    assert [p.field for p in q.check_answer(options, "Both", None)] == ["answer"]
    assert [p.field for p in q.check_answer(options, q.OTHER, "  ")] == ["text"]
    assert q.check_answer(options, q.OTHER, "Bilateral, worse on the left") == []


def test_the_answer_becomes_an_addendum_appended_once():
    on = date(2026, 5, 4)
    a = q.addendum(7, "Left", "Left ankle, lateral ligaments.", on)
    assert a == "Addendum (provider query 7, 2026-05-04): Left. Left ankle, lateral ligaments."
    assert q.addendum(8, q.OTHER, "Bilateral", on).endswith("): Bilateral")
    assert q.addendum(9, q.UNDETERMINED, None, on).endswith("): Clinically undetermined.")
    note = "Assessment: ankle sprain."
    amended = q.amended_note(note, [a])
    assert amended == f"{note}\n\n{a}"
    assert q.amended_note(amended, [a]) == amended  # a re-sent note already carrying it
    assert q.amended_note(None, []) is None and q.amended_note(None, [a]) == a


def _suggestions(*dx: tuple[str, str, str]) -> dict:
    out = []
    for code, note, span in dx:
        start = note.index(span)
        out.append(
            {"code": code, "evidence": {"text": span, "start": start, "end": start + len(span)}}
        )
    return {"diagnoses": out, "procedures": []}


def test_engine_drafts_a_diabetes_type_query_only_when_the_type_is_missing():
    note = (
        "Here for follow up of diabetes. Taking metformin 500 mg BID. A1c 8.2.\n"
        "Assessment: Diabetes mellitus, not at goal.\nPlan: increase metformin."
    )
    [d] = q.engine_drafts(note, _suggestions(("E119", note, "Diabetes mellitus")))
    assert d.reason == "diabetes_type" and q.validate(d, note) == []
    quoted = [i.text for i in d.indicators]
    assert "Assessment: Diabetes mellitus, not at goal" in quoted
    assert any("metformin" in t for t in quoted) and any("A1c" in t for t in quoted)
    assert "Type 2 diabetes mellitus" in d.options and q.OTHER in d.options
    typed = note.replace("Diabetes mellitus, not", "Type 2 diabetes mellitus, not")
    assert q.engine_drafts(typed, _suggestions(("E119", typed, "Type 2 diabetes"))) == []


def test_engine_drafts_a_laterality_query_for_an_unspecified_side():
    note = "Twisted ankle playing soccer.\nAssessment: Ankle sprain.\nPlan: RICE."
    [d] = q.engine_drafts(note, _suggestions(("S93409A", note, "Ankle sprain")))
    assert d.reason == "laterality" and q.validate(d, note) == []
    assert [i.text for i in d.indicators] == ["Assessment: Ankle sprain"]
    assert d.options[:2] == ("Right", "Left")
    # a sided code, or a code with no sided siblings, asks nothing
    assert q.engine_drafts(note, _suggestions(("S93402A", note, "Ankle sprain"))) == []
    assert q.engine_drafts(note, _suggestions(("J069", note, "Ankle sprain"))) == []


def test_engine_drafts_a_status_query_for_a_history_of_mention():
    note = "Assessment: history of gout, on allopurinol.\nPlan: continue."
    [d] = q.engine_drafts(note, _suggestions(("M109", note, "history of gout")))
    assert d.reason == "history_status" and q.validate(d, note) == []
    # already coded as a personal history (Z86-Z87): nothing to ask
    assert q.engine_drafts(note, _suggestions(("Z8739", note, "history of gout"))) == []


def test_the_hook_reads_the_engines_own_result():
    note = (
        "Twisted ankle playing soccer yesterday.\nAssessment: Ankle sprain.\nPlan: RICE, ibuprofen."
    )
    enc = Encounter.model_validate(
        {
            "encounter_id": "Q-1",
            "site_id": "s",
            "service_date": "2026-04-20",
            "billing_provider": {"name": "Clinic"},
            "patient": {"birth_date": "1980-01-01", "gender": "F"},
            "note": note,
        }
    )
    result = engine.offline_json(engine.code_encounter(enc, threshold=Decimal("0.80")))
    unsided = [d["code"] for d in result["diagnoses"] if d["code"].startswith("S9340")]
    drafts = q.engine_drafts(note, result)
    if unsided == ["S93409A"]:  # the engine left the side unspecified: it is asked
        assert [d.reason for d in drafts] == ["laterality"]
    for d in drafts:
        assert q.validate(d, note) == []
