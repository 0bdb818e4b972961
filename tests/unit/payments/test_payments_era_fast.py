"""The fast 835 path: chunked tokenizer, segment memo, positional builders.

Each shortcut must give exactly what the plain reading gives: same segments,
same objects, same warnings and errors with the segment's own number.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle
from datetime import date
from decimal import Decimal as D
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.payments.domain import check_era, era, parse_835
from services.payments.domain.remittance import (
    EMPTY_DICT,
    EMPTY_LIST,
    ClaimPayment,
    ServiceLine,
    fast_constructor,
    new_claim_payment,
    new_service_line,
)
from shared.x12 import X12Error, segment_chunks, split_segments
from tests.x12_support import KINDS, damage

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "x12" / "835"
CAS_FILE = (FIXTURES / "authored" / "claim-and-line-cas.835").read_text()
SEGS = CAS_FILE.strip().rstrip("~").split("~")  # SEGS[i] is segment number i + 1


def join(segs: list[str]) -> str:
    return "~".join(segs) + "~\n"


def with_se(segs: list[str]) -> str:
    """Re-count SE01 after inserting or removing segments."""
    segs = list(segs)
    st_i = next(i for i, s in enumerate(segs) if s.startswith("ST*"))
    se_i = next(i for i, s in enumerate(segs) if s.startswith("SE*"))
    segs[se_i] = f"SE*{se_i - st_i + 1}*0001"
    return join(segs)


# ------------------------------------------------------------------ tokenizer

SEPARATOR_NOISE = st.sampled_from(["", "", "", "\n", "\r\n", " ", "  ", "~", " ~ ", "\t"])


@settings(max_examples=150, deadline=None)
@given(
    noise=st.lists(SEPARATOR_NOISE, min_size=len(SEGS), max_size=len(SEGS)),
    size=st.integers(0, 400),
    lead=st.sampled_from(["", "  ", "junk\n"]),
)
def test_segment_chunks_equal_split_segments(noise, size, lead):
    text = lead + "".join(s + "~" + extra for s, extra in zip(SEGS, noise, strict=True))
    chunks, seps = segment_chunks(text, size=size)
    flat = [raw for chunk in chunks for raw in chunk]
    assert [raw.split(seps.element) for raw in flat] == split_segments(text)[0]


def test_segment_chunks_with_newline_terminator_and_no_isa():
    text = CAS_FILE.replace("~\n", "\n").replace("~", "\n") + "\n\n"
    chunks, seps = segment_chunks(text, size=64)
    assert seps.segment == "\n"
    assert [r.split("*") for c in chunks for r in c] == split_segments(text)[0]
    with pytest.raises(X12Error, match="no ISA segment"):
        segment_chunks("hello")


def test_parse_is_independent_of_chunk_size(monkeypatch):
    text = (FIXTURES / "linuxforhealth" / "medicare-part-a.835").read_text()
    whole = parse_835(text)
    monkeypatch.setattr(era, "segment_chunks", lambda t: segment_chunks(t, size=1))
    assert parse_835(text) == whole
    broken = text.replace("SE*", "SE*9", 1)
    with pytest.raises(X12Error) as small:
        parse_835(broken)
    monkeypatch.undo()
    with pytest.raises(X12Error) as big:
        parse_835(broken)
    assert str(small.value) == str(big.value) and small.value.segment == big.value.segment


# ------------------------------------------------------------------ builders


def test_fast_builders_match_the_dataclass_constructors():
    one = D(1)
    line = new_service_line("HC", "99213", ("25",), D("100"), D("80"), None, one)
    assert line == ServiceLine("HC", "99213", ("25",), D("100"), D("80"))
    claim = new_claim_payment("CLM1", "1", D(5), D(4), None, "12", None, None, None, None)
    assert claim == ClaimPayment("CLM1", "1", D(5), D(4), None, "12")
    # Every field is set (a new field would be too); empty containers are the
    # shared read-only sentinels, so a write that forgot to replace one fails loudly.
    for obj in (line, claim):
        assert all(hasattr(obj, f.name) for f in dataclasses.fields(obj))
    other = new_service_line("HC", "99214", (), D(1), D(1), None, one)
    assert other.refs is line.refs is EMPTY_DICT and other.adjustments is EMPTY_LIST
    with pytest.raises(TypeError):
        other.adjustments.append("x")
    assert line.adjustments == [] and line.refs == {}
    # fast_constructor's default still gives fresh containers.
    fresh = fast_constructor(ServiceLine, "qualifier", "code", "modifiers", "charge", "paid")
    a, b = fresh("HC", "1", (), one, one), fresh("HC", "2", (), one, one)
    a.adjustments.append("x")
    assert b.adjustments == [] and a.refs is not b.refs


def test_fast_constructor_refuses_what_it_cannot_build():
    with pytest.raises(TypeError, match="no field"):
        fast_constructor(ServiceLine, "qualifier", "nope")

    @dataclasses.dataclass
    class NoDefault:
        a: int
        b: int

    with pytest.raises(TypeError, match="has no default"):
        fast_constructor(NoDefault, "a")

    @dataclasses.dataclass
    class Post:
        a: int = 0

        def __post_init__(self) -> None:
            pass

    with pytest.raises(TypeError, match="__post_init__"):
        fast_constructor(Post, "a")


# ------------------------------------------------------------------ memo


def test_same_dtm_text_lands_by_loop_each_time():
    # DTM*472 at line level, then the very same text at claim level: the
    # memoized record must follow the loop, not the first use.
    segs = list(SEGS)
    dtm = next(s for s in segs if s.startswith("DTM*472"))
    clp = next(i for i, s in enumerate(segs) if s.startswith("CLP*"))
    segs.insert(clp + 1, dtm)  # claim level: DTM01 472 is not a claim date
    tx = parse_835(with_se(segs)).transactions[0]
    assert tx.warnings == [f"segment {clp + 2} (DTM): DTM01 '472' ignored in loop 2100"]
    assert all(line.service_date is not None for line in tx.claims[0].service_lines)


def test_repeated_bad_date_warns_with_each_segment_number():
    segs = list(SEGS)
    clp = next(i for i, s in enumerate(segs) if s.startswith("CLP*"))
    segs[clp + 1 : clp + 1] = ["DTM*232*20240231", "DTM*233*20240231"]
    tx = parse_835(with_se(segs)).transactions[0]
    assert tx.warnings == [
        f"segment {clp + 2} (DTM): DTM02 is not a valid CCYYMMDD date",
        f"segment {clp + 3} (DTM): DTM02 is not a valid CCYYMMDD date",
    ]
    assert tx.claims[0].statement_from == date(2024, 3, 3)  # the file's own DTM*232 follows


def test_memoized_name_in_the_wrong_loop_names_its_own_segment():
    segs = list(SEGS)
    nm82 = next(s for s in segs if s.startswith("NM1*82"))
    svc = next(i for i, s in enumerate(segs) if s.startswith("SVC*"))
    segs.insert(svc + 1, nm82)  # second use, now inside loop 2110
    with pytest.raises(X12Error) as exc:
        parse_835(with_se(segs))
    assert exc.value.segment == svc + 2
    assert str(exc.value).startswith(f"segment {svc + 2} (NM1): unexpected NM1 in loop 2110")


def test_repeated_segments_share_immutable_values_only():
    claim = "CLP*C{0}*1*100*80**12*P{0}~NM1*QC*1*DOE*JANE****MI*M{0}~NM1*82*2*DR SMITH*****XX*1234567893~DTM*232*20240301~SVC*HC:99213*100*80**1~DTM*472*20240301~CAS*CO*45*20~REF*6R*L{0}~"  # noqa: E501
    head = SEGS[: next(i for i, s in enumerate(SEGS) if s.startswith("CLP*"))]
    body = "".join(claim.format(i) for i in range(3)).rstrip("~").split("~")
    segs = head + body + SEGS[-3:]
    segs[3] = "BPR*I*240*C*CHK************20240315"
    era_ = parse_835(with_se(segs))
    assert check_era(era_) == []
    c1, c2, _ = era_.claims
    assert c1.rendering_provider is c2.rendering_provider  # shared NamedTuple
    assert c1.statement_from == date(2024, 3, 1)
    assert c1.service_lines[0] is not c2.service_lines[0]
    assert c1.service_lines[0].adjustments == c2.service_lines[0].adjustments
    assert c1.service_lines[0].adjustments[0] is c2.service_lines[0].adjustments[0]  # NamedTuple
    c1.service_lines[0].adjustments.clear()
    assert len(c2.service_lines[0].adjustments) == 1
    assert [c.patient.id for c in era_.claims] == ["M0", "M1", "M2"]


def test_same_head_with_another_last_element_is_read_afresh():
    # Each of these shares the text before its last element (the memo key)
    # with a segment of the first claim or the payee loop.
    claim2 = [
        "CLP*CLM3002*1*100*60**12*ICN9002*11*1",
        "CAS*CO*45*40",  # claim level now: not the line CAS*CO*45 record's Adjustment
        "NM1*82*1*DOCTOR*ALICE****XX*9999999999",  # same name, another NPI
        "DTM*232*20240231",  # impossible date
        "SVC*HC:99213*0*0**1",
        "DTM*472*20240304",  # another date
        "REF*TJ*987654321",  # first seen in the payee loop
        "AMT*B6*1e5",  # not a number
    ]
    segs = SEGS[:-3] + claim2 + SEGS[-3:]
    with pytest.raises(X12Error) as exc:
        parse_835(with_se(segs))
    amt = segs.index("AMT*B6*1e5")
    assert exc.value.segment == amt + 1 and "AMT02 is not a number" in str(exc.value)
    segs[amt] = "AMT*B6*0"
    era_ = parse_835(with_se(segs))
    c1, c2 = era_.claims
    tx = era_.transactions[0]
    assert [(a.level, a.amount) for a in c2.adjustments] == [("claim", D(40))]
    assert {a.level for ln in c1.service_lines for a in ln.adjustments} == {"line"}
    assert (c1.rendering_provider.id, c2.rendering_provider.id) == ("1234567893", "9999999999")
    dtm = segs.index("DTM*232*20240231") + 1
    assert tx.warnings == [f"segment {dtm} (DTM): DTM02 is not a valid CCYYMMDD date"]
    assert c2.statement_from is None
    line = c2.service_lines[0]
    assert line.service_date == date(2024, 3, 4) and line.amounts == {"B6": D(0)}
    assert line.refs == {"TJ": "987654321"} and tx.payee.refs == {"TJ": "123456789"}


class _Forgetful(dict):
    """A memo that never remembers: every segment takes the checking path."""

    def get(self, key, default=None):
        return default

    def __setitem__(self, key, value):
        pass


def _outcome(text: str, heads=None):
    try:
        return era._parse(*segment_chunks(text), heads)
    except X12Error as exc:
        return ("X12Error", str(exc), exc.segment)


_CLAIM = SEGS[next(i for i, s in enumerate(SEGS) if s.startswith("CLP*")) : -3]
# The fixtures, and one where most heads recur: with the same last element
# (claim repeated) and with another (the second claim's name, dates, amounts).
_OTHER = [s.replace("1234567893", "9999999999").replace("2024030", "2024040") for s in _CLAIM]
MEMO_TEXTS = [p.read_text() for p in sorted(FIXTURES.rglob("*.835"))]
MEMO_TEXTS.append(
    with_se(SEGS[:-3] + _CLAIM + [s.replace("*15", "*16") for s in _OTHER] + SEGS[-3:])
)
LAST_ELEMENTS = ["", "0", "-5.5", "1e5", "X", "20240229", "20240231", "9999999999", "1:2"]


@settings(max_examples=400, deadline=None)
@given(
    which=st.integers(0, len(MEMO_TEXTS) - 1),
    edits=st.lists(
        st.tuples(
            st.sampled_from([*KINDS, "copy", "last"]),
            st.integers(0, 10_000),
        ),
        min_size=1,
        max_size=4,
    ),
    recount=st.booleans(),
)
def test_memo_hits_give_what_the_checking_path_gives(which, edits, recount):
    segs = MEMO_TEXTS[which].strip().rstrip("~").split("~")
    for kind, k in edits:
        i = k % len(segs)
        if kind == "copy":  # a segment repeated elsewhere: its head is then known
            segs.insert(k // 7 % len(segs), segs[i])
        elif kind == "last":  # same head, another last element
            head, sep, _ = segs[i].rpartition("*")
            segs.insert(i + 1, head + sep + LAST_ELEMENTS[k % len(LAST_ELEMENTS)])
        else:
            damage(segs, kind, k)
    if recount:  # keep the SE counts right, so that more edited files parse to the end
        st_at = None
        for j, seg in enumerate(segs):
            if seg.startswith("ST*"):
                st_at = j
            elif seg.startswith("SE*") and st_at is not None:
                els = seg.split("*")
                segs[j] = "*".join([els[0], str(j - st_at + 1), *els[2:]])
    text = "~".join(segs) + "~"
    assert _outcome(text) == _outcome(text, _Forgetful())


# ------------------------------------------------------------------ shared empties


def test_empty_containers_are_the_shared_read_only_sentinels():
    segs = list(SEGS)
    svc = next(i for i, s in enumerate(segs) if s.startswith("SVC*"))
    segs[svc + 1 : svc + 1] = ["QTY*ZK*2", "LQ*HE*N130"]  # the first line only
    era_ = parse_835(with_se(segs))
    c1 = era_.claims[0]
    first, second = c1.service_lines
    assert first.quantities == {"ZK": D(2)} and first.remarks == ["N130"]
    assert second.quantities is EMPTY_DICT and second.remarks == ["M15"]
    assert c1.refs is c1.amounts is c1.quantities is EMPTY_DICT
    assert EMPTY_LIST == [] and EMPTY_DICT == {} and len(EMPTY_LIST) == len(EMPTY_DICT) == 0
    # Looks like an empty list/dict to readers, refuses writers.
    assert repr(second.quantities) == "{}" and json.dumps([EMPTY_LIST, EMPTY_DICT]) == "[[], {}]"
    assert second == dataclasses.replace(second, quantities={})
    for write in (
        lambda: second.quantities.__setitem__("ZK", D(1)),
        lambda: second.quantities.update(ZK=D(1)),
        lambda: c1.refs.setdefault("F8", "X"),
        lambda: EMPTY_LIST.append("MA01"),
        lambda: EMPTY_LIST.extend(["MA01"]),
        lambda: EMPTY_LIST.insert(0, "MA01"),
    ):
        with pytest.raises(TypeError):
            write()
    with pytest.raises(TypeError):
        c1.refs |= {"F8": "X"}
    assert EMPTY_LIST == [] and EMPTY_DICT == {}
    # Copies keep the sentinel (one plain dict for all would alias the fields);
    # asdict gives plain containers of the caller's own.
    assert copy.deepcopy(c1).refs is pickle.loads(pickle.dumps(era_)).claims[0].refs is EMPTY_DICT
    as_dict = dataclasses.asdict(c1)
    assert type(as_dict["refs"]) is dict and as_dict["refs"] is not as_dict["amounts"]
    # A new parse of another file starts from the same, still empty, sentinels.
    again = parse_835(CAS_FILE).claims[0]
    assert again.service_lines[0].quantities is EMPTY_DICT and EMPTY_DICT == {}


# ------------------------------------------------------------------ amounts


@pytest.mark.parametrize("bad", [".-5", "5-5", "1e5", "+5", "١٢", " 5", "5 ", "1_0", "NaN", "."])
def test_amounts_outside_r_type_are_x12_errors(bad):
    clp = next(i for i, s in enumerate(SEGS) if s.startswith("CLP*"))
    segs = list(SEGS)
    els = segs[clp].split("*")
    els[3] = bad
    segs[clp] = "*".join(els)
    with pytest.raises(X12Error) as exc:
        parse_835(join(segs))
    assert exc.value.segment == clp + 1 and "CLP03 is not a number" in str(exc.value)


@pytest.mark.parametrize("good", ["-5", "5.", ".5", "-.5", "007.10", "0"])
def test_amounts_inside_r_type_parse(good):
    assert era.number(good, 1, "AMT", 2) == D(good)
