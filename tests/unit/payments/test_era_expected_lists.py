"""An 835 error never asks for the very segment it refuses (issue 21 item 5).

The probe once read "unexpected N1*PE; expected N1*PE" for a second payee loop. Every segment
of the real LinuxForHealth 835s (Apache 2.0, tests/fixtures/x12/835) is repeated in place, one
at a time, and every refusal that names what was expected must not name the refused segment.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.payments.domain.era import parse_835
from shared.x12 import X12Error, split_segments

ERAS = sorted(
    (Path(__file__).resolve().parents[2] / "fixtures/x12/835/linuxforhealth").glob("*.835")
)
_REFUSAL = re.compile(r"unexpected (\S+) .*; expected (.+)$")


def _with_repeated(text: str, index: int) -> str:
    segments, seps = split_segments(text)
    segments.insert(index + 1, list(segments[index]))
    se = next(i for i in range(index + 1, len(segments)) if segments[i][0] == "SE")
    st = max(i for i in range(index + 1) if segments[i][0] == "ST")
    segments[se][1] = str(se - st + 1)
    return "".join(seps.element.join(s) + seps.segment for s in segments)


def _expected(listing: str) -> set[str]:
    return {x.strip() for x in re.split(r", | or ", listing)}


@pytest.mark.parametrize("path", ERAS, ids=lambda p: p.name)
def test_a_repeated_segment_is_never_expected_in_its_own_refusal(path):
    text = path.read_text()
    segments, _ = split_segments(text)
    body = [i for i, s in enumerate(segments) if s[0] not in ("ISA", "GS", "ST", "SE", "GE", "IEA")]
    refusals = 0
    for i in body:
        try:
            parse_835(_with_repeated(text, i))
        except X12Error as e:
            m = _REFUSAL.search(str(e))
            if m is None:
                continue
            refusals += 1
            sid, expected = m.group(1), _expected(m.group(2))
            qualified = f"{sid}*{segments[i][1]}" if len(segments[i]) > 1 else sid
            assert sid not in expected and qualified not in expected, str(e)
    assert refusals > 0  # the header loops refuse a repeat: the check ran


def test_a_second_payee_is_refused_in_words_that_fit():
    text = (ERAS[0].parent / "managed-care.835").read_text()
    segments, _ = split_segments(text)
    payee = next(i for i, s in enumerate(segments) if s[:2] == ["N1", "PE"])
    with pytest.raises(X12Error) as err:
        parse_835(_with_repeated(text, payee))
    msg = str(err.value)
    assert "N1*PE" not in msg
    assert msg.endswith(
        "unexpected N1 in loop 1000B payee identification;"
        " expected N3, N4, REF, RDM, LX, CLP, PLB or SE"
    )
