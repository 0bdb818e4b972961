"""Real X12 files as other systems deliver them, built in memory (the files are never edited)."""

from __future__ import annotations


def wrapped(text: str, width: int = 80, newline: str = "\r\n") -> str:
    """The file as a mainframe or an old mailbox writes it: cut into lines of ``width``."""
    flat = text.replace("\r", "").replace("\n", "")
    return newline.join(flat[i : i + width] for i in range(0, len(flat), width)) + newline


def bare(text: str) -> str:
    """Only the ST..SE transaction sets, as some payers' portals let one download them."""
    return text[text.index("ST*") : text.index("GE*")]
