"""Damaged 835s either parse or raise X12Error: never IndexError, AttributeError, ..."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from services.payments.domain import check_era, parse_835
from shared.x12 import X12Error
from tests.x12_support import KINDS, damage

AUTHORED = Path(__file__).resolve().parents[2] / "fixtures" / "x12" / "835" / "authored"
TEXTS = [p.read_text() for p in sorted(AUTHORED.glob("*.835"))]


def parses_or_x12error(text: str) -> None:
    try:
        parse_835(text)
    except X12Error as exc:
        assert exc.segment is not None and str(exc).startswith("segment ")


def test_every_truncation_point():
    text = TEXTS[2]  # claim-and-line-cas.835
    for cut in range(0, len(text) - 2, 3):
        parses_or_x12error(text[:cut])


@settings(max_examples=300, deadline=None)
@given(
    which=st.integers(0, len(TEXTS) - 1),
    edits=st.lists(
        st.tuples(st.sampled_from(KINDS), st.integers(0, 10_000)),
        min_size=1,
        max_size=3,
    ),
)
def test_damaged_segments(which, edits):
    segs = TEXTS[which].strip().rstrip("~").split("~")
    for kind, k in edits:
        damage(segs, kind, k)
    parses_or_x12error("~".join(segs) + "~")


def test_two_plb_segments_in_one_transaction():
    text = TEXTS[3]  # plb-interest-recoupment.835
    assert "PLB*1234567893*20241231*L6:ICN8001*-4.25*WO:ICN6001*100*FB:FB0001*25~" in text
    segs = text.split("~")
    i = next(k for k, s in enumerate(segs) if s.startswith("PLB"))
    se = segs[i + 1].split("*")
    segs[i : i + 2] = [
        "PLB*1234567893*20241231*L6:ICN8001*-4.25*WO:ICN6001*100",
        "PLB*1234567893*20241231*FB:FB0001*25",
        f"SE*{int(se[1]) + 1}*{se[2]}",
    ]
    era = parse_835("~".join(segs))
    assert [a.reason for a in era.transactions[0].provider_adjustments] == ["L6", "WO", "FB"]
    assert check_era(era) == []
