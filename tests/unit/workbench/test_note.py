"""The note cut into evidence and context segments, from the coding engine's own output."""

from __future__ import annotations

import json
from pathlib import Path

from services.coding.domain import engine
from services.intake.domain.fhir import parse_intake
from services.workbench.domain.note import Span, context_spans, evidence_spans, locate, segments

VIGNETTES = Path(__file__).resolve().parents[2] / "fixtures" / "vignettes"


def _coded(name: str) -> tuple[str, dict]:
    enc = parse_intake(json.loads((VIGNETTES / name).read_text()))
    return enc.note or "", engine.offline_json(engine.code_encounter(enc))


def test_engine_evidence_lands_on_the_words_it_quotes():
    note, suggestions = _coded("ed_ankle_sprain_right.json")
    spans, placed = evidence_spans(note, suggestions)
    assert placed == {"dx-0", "px-0"}
    segs = segments(note, spans)
    assert "".join(s.text for s in segs) == note  # nothing lost or repeated
    marked = [s for s in segs if s.refs]
    assert [s.text for s in marked] == ["Sprain of right ankle"]
    assert marked[0].refs == ("dx-0", "px-0")  # one phrase, two codes


def test_overlapping_spans_cut_at_every_boundary():
    note = "No fever. History of asthma, now wheezing."
    spans = [
        Span(0, 9, kind="negated"),
        Span(3, 8, ref="dx-0"),
        Span(10, 27, kind="history"),
        Span(21, 27, ref="dx-1"),
    ]
    segs = segments(note, spans)
    assert [(s.text, s.refs, s.kinds, s.opens) for s in segs] == [
        ("No ", (), ("negated",), ("negated",)),
        ("fever", ("dx-0",), ("negated",), ()),
        (".", (), ("negated",), ()),
        (" ", (), (), ()),
        ("History of ", (), ("history",), ("history",)),
        ("asthma", ("dx-1",), ("history",), ()),
        (", now wheezing.", (), (), ()),
    ]


def test_spans_that_do_not_fit_are_left_out_or_found_nearby():
    note = "Patient reports cough and fever."
    assert locate(note, 16, 21, "cough") == (16, 21)
    assert locate(note, 10, 15, "cough") == (16, 21)  # moved: found near the given offsets
    assert locate(note, 16, 21, "sneeze") is None
    assert locate(note, 20, 999, None) is None
    assert locate(note, "16", 21, None) is None
    assert locate(note, 40, 45, "cough") == (16, 21)  # offsets past the end, text within reach
    assert locate(note, 900, 905, "cough") is None  # too far from where it was said to be
    suggestions = {"diagnoses": [{"code": "R509", "evidence": None}]}
    assert evidence_spans(note, suggestions) == ([], set())


def test_context_kinds_are_read_only_when_known():
    note = "Denies chest pain. Family history of diabetes."
    suggestions = {
        "context": [
            {"start": 0, "end": 17, "kind": "negated"},
            {"start": 19, "end": 45, "kind": "family"},
            {"start": 0, "end": 5, "kind": "made-up"},
            "junk",
        ]
    }
    assert [(s.start, s.end, s.kind) for s in context_spans(note, suggestions)] == [
        (0, 17, "negated"),
        (19, 45, "family"),
    ]
    assert context_spans(note, {}) == []
