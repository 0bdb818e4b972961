"""Gate's case-sensitive twin (prefilter.Gate without ``fold``): the scan runs on the
lower-cased text, the caller still gets the regex's own match on its own text, so
groups keep their case and every match is the one ``rx.search``/``rx.finditer`` give."""

import importlib.util
import re
from datetime import date
from pathlib import Path

import pytest

from services.coding.domain import diagnoses, em, engine, procedures, rules, specificity, text
from services.coding.domain.prefilter import Gate
from tests.unit.coding.coding_support import engine_gates

VIGNETTES = Path(__file__).resolve().parents[2] / "fixtures" / "vignettes"
_MODULES = (diagnoses, em, engine, procedures, rules, specificity, text)  # their Gates, loaded


def _same(a: re.Match | None, b: re.Match | None) -> bool:
    if a is None or b is None:
        return a is b
    return (
        a.span() == b.span()
        and a.groups() == b.groups()
        and a.regs == b.regs
        and a.lastindex == b.lastindex
        and a.group(0) == b.group(0)
        and a.string is b.string
        and a.re is b.re
    )


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    from rcm.simulation.samples import generate_samples

    spec = importlib.util.spec_from_file_location("bv_gate_twin", VIGNETTES / "build_vignettes.py")
    bv = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bv)
    notes = [bv.encounter(v).note or "" for v in bv.VIGNETTES]
    notes += [
        s.encounter.note or "" for s in generate_samples(40, seed=11, start_date=date(2026, 10, 1))
    ]
    notes += [
        "Sliding scale INSULIN only; Lantus 10 units. Former smoker, non-smoker now. "
        "No abnormal findings. Without abnormal findings? r/o PNA ?pneumonia. Family hx DM.",
        "? fever.  cough? HX asthma. Abnormal findings noted. SMOKER, 1 PPD.",
    ]
    texts = []
    for n in notes:
        texts.append(n)
        texts.extend(n[s.start : s.end] for s in text.sentences(n))
    return texts + [t.upper() for t in texts[::3]] + [t.swapcase() for t in texts[1::3]]


def _gates() -> list[Gate]:
    return [g for g in engine_gates() if not g.folding]


def test_twin_answers_as_the_regex_on_its_own_text(corpus):
    gates = _gates()
    assert sum(g.twin() is not None for g in gates) > 40
    for g in gates:
        for t in corpus:
            assert _same(g.search(t), g.rx.search(t)), (g.pattern[:60], t[:60])
            got, want = list(g.finditer(t)), list(g.rx.finditer(t))
            assert len(got) == len(want), (g.pattern[:60], t[:60])
            assert all(_same(a, b) for a, b in zip(got, want, strict=True)), g.pattern[:60]
            scanned = list(g.scan(t, t.lower() if t.isascii() else None))
            assert [m.span() for m in scanned] == [m.span() for m in want]


def test_twin_keeps_the_case_of_groups_and_sees_text_before_the_match():
    g = Gate(re.compile(r"(?<!no )\b(insulin|lantus)\b", re.I))
    assert g.twin() is not None
    m = g.search("No INSULIN; on Lantus daily")
    assert m is not None and m.group(1) == "Lantus" and m.span() == (15, 21)
    assert [m.group(0) for m in g.finditer("INSULIN, lantus")] == ["INSULIN", "lantus"]


def test_no_twin_for_patterns_that_match_the_empty_string_or_fold_case_oddly():
    assert Gate(re.compile(r"\b(?:fever)?", re.I)).twin() is None  # empty matches
    assert Gate(re.compile(r"\bBMI\b", re.I)).twin() is None  # upper-case literal
    assert Gate(re.compile(r"fever")).twin() is None  # already case-sensitive
    empty = Gate(re.compile(r"x*", re.I))
    assert [m.span() for m in empty.finditer("axxb")] == [
        m.span() for m in re.finditer(r"x*", "axxb", re.I)
    ]
