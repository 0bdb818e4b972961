"""HL7 v2 gets the same note and encounter size limits as ``POST /encounters`` (issue 18,
item 5): a message whose note alone is above RCM_INTAKE_MAX_NOTE_BYTES is refused AR naming
the limit (never the content), over MLLP frames and ``POST /hl7`` bodies alike; an encounter
above either limit is named by ``too_large``. The MLLP frame reader keeps at most the limit
(plus a head) of a frame that never fits."""

from __future__ import annotations

from services.intake.domain.hl7v2 import build_ack
from services.intake.hl7_intake import Hl7Intake
from services.intake.limits import IntakeLimits, too_large
from services.intake.mapping import Codes
from services.intake.mllp import END, START, FrameReader, read_ack
from services.intake.settings import Hl7Settings
from tests.unit.intake_hl7v2.hl7v2_support import MESSAGES, registry

ADT = (MESSAGES / "visit_v251_adt_a04.hl7").read_bytes()
MDM = (MESSAGES / "visit_v251_mdm_t02.hl7").read_bytes()
MARKER = b"ZQXHL7NOTEMARKER"
LIMITS = IntakeLimits(max_note_bytes=4096, max_encounter_bytes=64 * 1024)


def _intake(limits: IntakeLimits = LIMITS) -> Hl7Intake:
    s = Hl7Settings(facilities="NORTHGATE=north-clinic")
    return Hl7Intake(None, None, Codes(), s, lambda: None, limits=limits)  # type: ignore[arg-type]


def big_note(data: bytes, size: int) -> bytes:
    """The MDM with its progress note (OBX-5) grown by ``size`` bytes of text."""
    return data.replace(b"CC: right ankle injury", b"CC: " + MARKER + b" ankle " * (size // 7))


def test_a_message_whose_note_is_above_the_limit_is_refused_ar_naming_the_limit():
    item = _intake().read_frame(big_note(MDM, 6000), registry())
    assert item.rejected
    [err] = [p for p in item.received.problems if p.is_error]
    assert "RCM_INTAKE_MAX_NOTE_BYTES" in err.message and "at most 4096" in err.message
    ack = build_ack(item.received.meta, "AR", item.received.problems).encode()
    summary = read_ack(ack)
    assert (summary.code, summary.control_id) == ("AR", "MDM-V20260511-01")
    assert any("RCM_INTAKE_MAX_NOTE_BYTES" in e for e in summary.errors)
    assert MARKER not in ack and b"ankle" not in ack


def test_the_same_limit_holds_for_a_post_hl7_body():
    body = ADT + b"\r" + big_note(MDM, 6000)
    items, problems = _intake().read_body(body, registry())
    assert problems == []
    assert [i.rejected for i in items] == [False, True]
    [err] = [p for p in items[1].received.problems if p.is_error]
    assert "RCM_INTAKE_MAX_NOTE_BYTES" in err.message


def test_a_note_under_the_limit_and_messages_without_notes_pass():
    assert not _intake().read_frame(big_note(MDM, 3000), registry()).rejected
    assert not _intake().read_frame(ADT, registry()).rejected
    # The default limit (256 KiB) lets the same 6 KB note through.
    assert not _intake(IntakeLimits()).read_frame(big_note(MDM, 6000), registry()).rejected


def test_too_large_names_the_note_or_the_encounter():
    from tests.unit.billing.billing_support import make_coded

    enc = make_coded().encounter
    assert too_large(enc.model_copy(update={"note": "x" * 100}), LIMITS) is None
    where, why = too_large(enc.model_copy(update={"note": "x" * 5000}), LIMITS)
    assert where == "note" and why.startswith("the note is 5000 bytes; at most 4096")
    tight = IntakeLimits(max_note_bytes=64 * 1024, max_encounter_bytes=4096)
    where, why = too_large(enc.model_copy(update={"note": "x" * 5000}), tight)
    assert where == "" and "RCM_INTAKE_MAX_ENCOUNTER_BYTES" in why and "x" * 10 not in why


def test_a_frame_that_never_fits_is_not_buffered_past_the_limit():
    reader = FrameReader(64 * 1024)
    reader.feed(START + MDM[:100])
    for _ in range(200):  # 200 x 64 KiB = 12.5 MiB into one frame
        assert reader.feed(b"x" * 65536) == []
        assert len(reader._buf) <= 64 * 1024
    [frame] = reader.feed(b"tail" + END)
    assert frame.oversize and frame.data.startswith(b"MSH|") and len(frame.data) <= 4096
