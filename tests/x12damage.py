"""Damage X12 segment lists in place, for the parser's property tests."""

from __future__ import annotations

# What a damaged file can do to one segment (with k choosing where and how).
KINDS = ["drop", "dup", "swap", "empty", "chop"]


def damage(segs: list[str], kind: str, k: int) -> None:
    """Apply one ``KINDS`` edit at segment ``k % len(segs)``; the last segment is never dropped."""
    i = k % len(segs)
    if kind == "drop" and len(segs) > 1:
        del segs[i]
    elif kind == "dup":
        segs.insert(i, segs[i])
    elif kind == "swap" and i + 1 < len(segs):
        segs[i], segs[i + 1] = segs[i + 1], segs[i]
    elif kind == "empty":
        els = segs[i].split("*")
        if k % len(els):  # keep the segment id
            els[k % len(els)] = ""
        segs[i] = "*".join(els)
    elif kind == "chop":
        segs[i] = segs[i][: max(1, k % (len(segs[i]) + 1))]
