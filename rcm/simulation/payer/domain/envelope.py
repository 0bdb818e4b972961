"""Read only the envelopes of an 837 (ISA/GS/ST/BHT/submitter), tolerating a broken body.

Used to answer a file ``read_837`` refused: a 999 must still name the group and the
transaction sets it rejects.
"""

from __future__ import annotations

from shared.x12 import X12Error, split_segments

from .model import Submission, SubmittedTransaction


def read_envelope(text: str) -> tuple[Submission, dict[str, int]]:
    """Return the submission's envelopes (no claims) and each ST's 1-based segment number.

    Raises ``shared.x12.X12Error`` only when there is no usable ISA/GS to reply to.
    """
    segs, _ = split_segments(text)
    isa = segs[0]
    if isa[0] != "ISA" or len(isa) < 14:
        raise X12Error("no usable ISA header to acknowledge", 1, isa[0])
    gs = next((s for s in segs if s[0] == "GS"), None)
    if gs is None or len(gs) < 9:
        raise X12Error("no usable GS header to acknowledge", 2, "GS")
    starts: dict[str, int] = {}
    transactions: list[SubmittedTransaction] = []
    current: dict | None = None
    for n, seg in enumerate(segs, start=1):
        tag = seg[0]
        if tag == "ST":
            current = {
                "cn": seg[2] if len(seg) > 2 else "",
                "impl": seg[3] if len(seg) > 3 else gs[8],
            }
            current.update(ref="", name="", id="", claims=0)
            starts[current["cn"]] = n
        elif current is None:
            continue
        elif tag == "BHT" and len(seg) > 3:
            current["ref"] = seg[3]
        elif tag == "NM1" and len(seg) > 9 and seg[1] == "41":
            current.update(name=seg[3], id=seg[9])
        elif tag == "CLM":
            current["claims"] += 1
        elif tag == "SE":
            transactions.append(
                SubmittedTransaction(
                    current["cn"],
                    current["impl"],
                    current["ref"],
                    current["name"],
                    current["id"],
                    current["claims"],
                )
            )
            current = None
    if current is not None:  # truncated: no SE, still acknowledge what was started
        transactions.append(
            SubmittedTransaction(
                current["cn"],
                current["impl"],
                current["ref"],
                current["name"],
                current["id"],
                current["claims"],
            )
        )
    submission = Submission(
        interchange_control_number=isa[13],
        sender_id=isa[6].strip(),
        receiver_id=isa[8].strip() if len(isa) > 8 else "",
        group_control_number=gs[6],
        functional_id=gs[1],
        version=gs[8],
        transactions=tuple(transactions),
        claims=(),
    )
    return submission, starts
