"""``iter_835``: an ERA file's transaction sets one at a time, the same as ``parse_835``'s.

Posting a large ERA file transaction set by transaction set keeps one payment's objects
in memory instead of the whole file's (issue 18: a 200 MB 835 took payments to 4.5 GB).
"""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from services.payments.domain.era import iter_835, parse_835
from shared.x12 import X12Error

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "x12" / "835"
FILES = sorted(FIXTURES.glob("*/*.835"))
MULTI = (FIXTURES / "authored" / "multi-st.835").read_text()
TWO_INTERCHANGES = (FIXTURES / "authored" / "two-interchanges.835").read_text()


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_iter_835_yields_exactly_the_transactions_of_parse_835(path):
    text = path.read_text()
    assert list(iter_835(text)) == parse_835(text).transactions


def test_several_transaction_sets_come_one_by_one_before_the_file_is_read_to_its_end():
    assert len(parse_835(MULTI).transactions) > 1
    broken = MULTI.rstrip().removesuffix("~").rsplit("~", 1)[0] + "~"  # no IEA: truncated
    it = iter_835(broken)
    first = next(it)
    assert first == parse_835(MULTI).transactions[0]
    with pytest.raises(X12Error, match="file truncated"):
        list(it)


def test_both_interchanges_of_a_file_are_yielded():
    assert [t.isa_control_number for t in iter_835(TWO_INTERCHANGES)] == [
        t.isa_control_number for t in parse_835(TWO_INTERCHANGES).transactions
    ]


def test_the_caller_runs_with_the_garbage_collector_as_it_was():
    assert gc.isenabled()
    for _ in iter_835(MULTI):
        assert gc.isenabled()  # off only while the parser runs
    gc.disable()
    try:
        for _ in iter_835(MULTI):
            assert not gc.isenabled()
    finally:
        gc.enable()


def test_errors_like_parse_835():
    with pytest.raises(X12Error):
        list(iter_835("not an interchange"))
    with pytest.raises(TypeError):
        list(iter_835(MULTI.encode()))
