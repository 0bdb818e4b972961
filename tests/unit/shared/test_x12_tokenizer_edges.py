"""Real files as other systems deliver them, read by the one shared tokenizer (issue 21 item 5).

Each case is built in the test from a real file in tests/fixtures/x12 (LinuxForHealth 835s,
Apache 2.0; imsweb 999/277CA, BSD 3-clause: licences beside them), never edited on disk:
- wrapped at a fixed width, so CR/LF fall inside the ISA's 106 characters;
- Ctrl-Z or NUL padding after the IEA;
- a bare ST..SE transaction set with no ISA/GS (accepted with a warning);
and every reader (835, 999, 277CA, the mailbox's classify) reads them as it reads the original.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from services.billing.domain.acks import parse_277ca, parse_277ca_file, parse_999
from services.followup.domain.x12_277 import parse_277
from services.payments.domain.era import iter_835, parse_835
from shared.mailbox import classify
from shared.x12 import (
    BARE_TRANSACTION_WARNING,
    WRAPPED_WARNING,
    X12Error,
    check_envelope,
    detect_separators,
    prepare,
    split_segments,
)
from tests.unit.shared.x12_variants_support import bare, wrapped

X12 = Path(__file__).resolve().parents[2] / "fixtures" / "x12"
ERAS = sorted((X12 / "835" / "linuxforhealth").glob("*.835"))
ACK_999 = sorted((X12 / "billing" / "imsweb").glob("x12_999_*.txt"))
ACK_277CA = sorted((X12 / "billing" / "imsweb").glob("x12_277CA_*.txt"))
STATUS_277 = X12 / "followup" / "status_response.277"
EVERY_FILE = [*ERAS, *ACK_999, *ACK_277CA, STATUS_277]


def _claims_835(text: str):
    era = parse_835(text)
    return [(t.payment, t.payer, t.payee, t.claims) for t in era.transactions]


def _parser(path: Path):
    """What a reader makes of the file (an ERA's warnings aside: a repair adds one)."""
    if path.suffix == ".835":
        return _claims_835
    if path == STATUS_277:
        return parse_277
    return parse_999 if "999" in path.name else parse_277ca


@pytest.mark.parametrize("path", EVERY_FILE, ids=lambda p: p.name)
@pytest.mark.parametrize("width, newline", [(80, "\r\n"), (64, "\n"), (100, "\r\n")])
def test_an_isa_wrapped_inside_its_106_characters_is_read_as_the_original(path, width, newline):
    text = path.read_text()
    variant = wrapped(text, width, newline)
    isa_line = variant.split(newline)[0]
    assert len(isa_line) < 106  # the line break falls inside the ISA
    # Read off the fixed positions as they are, the separators come out wrong (the probe).
    try:
        misread = detect_separators(variant)
    except X12Error:
        misread = None
    assert misread != detect_separators(text)
    notes: list[str] = []
    segments, seps = split_segments(variant, warnings=notes)
    assert seps == detect_separators(text)
    assert segments == split_segments(text)[0]
    assert notes == [WRAPPED_WARNING]
    check_envelope(segments)
    assert _parser(path)(variant) == _parser(path)(text)
    assert classify(variant) == classify(text)


@pytest.mark.parametrize("path", ERAS, ids=lambda p: p.name)
def test_an_era_read_after_unwrapping_says_so(path):
    text = path.read_text()
    era = parse_835(wrapped(text))
    original = parse_835(text)
    assert era.claims == original.claims
    for tx, orig in zip(era.transactions, original.transactions, strict=True):
        assert tx.warnings == [WRAPPED_WARNING, *orig.warnings]


@pytest.mark.parametrize("path", EVERY_FILE, ids=lambda p: p.name)
@pytest.mark.parametrize("padding", ["\x1a", "\r\n\x1a", "\x00" * 512, "\n\x00\x00\x1a"])
def test_ctrl_z_or_nul_padding_after_iea_is_dropped(path, padding):
    text = path.read_text()
    variant = text + padding
    segments, _ = split_segments(variant)
    assert segments == split_segments(text)[0]
    check_envelope(segments)
    assert _parser(path)(variant) == _parser(path)(text)
    assert classify(variant) == classify(text)


def test_padding_was_the_problem():
    # Without the tokenizer's trim the padding is a segment of its own with no id.
    text = ERAS[0].read_text()
    raw = (text + "\x1a").split("~")
    assert raw[-1].strip() == "\x1a"


@pytest.mark.parametrize("path", ERAS, ids=lambda p: p.name)
def test_a_bare_835_transaction_set_is_accepted_with_a_warning(path):
    text = path.read_text()
    era = parse_835(bare(text))
    original = parse_835(text)
    assert era.claims == original.claims
    assert [t.payment for t in era.transactions] == [t.payment for t in original.transactions]
    for tx in era.transactions:
        assert tx.warnings[0] == BARE_TRANSACTION_WARNING
    assert [t.claims for t in iter_835(bare(text))] == [t.claims for t in original.transactions]
    # no interchange of its own: nothing to take for a sender or ISA13
    assert era.sender_id == "" and classify(bare(text)).interchange_control_number is None
    assert classify(bare(text)).kind == "835"


def test_several_bare_transaction_sets_in_one_file():
    text = (X12 / "835" / "authored" / "multi-st.835").read_text()
    original = parse_835(text)
    assert len(original.transactions) > 1
    era = parse_835(bare(text))
    assert era.claims == original.claims
    assert len(era.transactions) == len(original.transactions)


@pytest.mark.parametrize("path", ACK_999, ids=lambda p: p.name)
def test_a_bare_999_is_read_as_the_original(path):
    text = path.read_text()
    assert parse_999(bare(text)) == parse_999(text)
    assert prepare(bare(text)).warnings == (BARE_TRANSACTION_WARNING,)
    assert classify(bare(text)).kind == "999"


@pytest.mark.parametrize("path", ACK_277CA, ids=lambda p: p.name)
def test_a_bare_277ca_is_read_as_the_original(path):
    text = path.read_text()
    ack = parse_277ca_file(bare(text))
    assert ack.claims == parse_277ca(text)
    assert ack.warnings == [BARE_TRANSACTION_WARNING]
    assert classify(bare(text)).kind == "277CA"


def test_a_bare_transaction_keeps_its_own_separators():
    # imsweb's rejected 277CA uses '|' between components (ISA16): found without an ISA.
    text = (X12 / "billing" / "imsweb" / "x12_277CA_rejected.txt").read_text()
    assert prepare(bare(text)).seps == detect_separators(text)
    (claim,) = parse_277ca(bare(text))
    assert [(s.category, s.code, s.entity) for s in claim.statuses] == [("A7", "562", "85")]


def test_a_bare_transaction_cut_short_is_still_refused():
    text = bare(ERAS[0].read_text())
    with pytest.raises(X12Error, match="SE"):
        parse_835(text[: text.index("SE*")])


def test_text_that_is_no_x12_is_still_refused():
    for junk in ("hello", "", "\x1a\x00", "STATEMENT OF ACCOUNT"):
        with pytest.raises(X12Error, match="no ISA segment"):
            split_segments(junk)
        assert classify(junk).kind == "unknown"
