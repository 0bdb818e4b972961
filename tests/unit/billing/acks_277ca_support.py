"""imsweb's real 277CA files (BSD 3-clause, tests/fixtures/x12/billing/imsweb/LICENSE) and
edits of their segments, for tests of batch-level rejections; the files are never edited."""

from __future__ import annotations

from pathlib import Path

from shared.x12 import split_segments

IMSWEB = Path(__file__).resolve().parents[2] / "fixtures" / "x12" / "billing" / "imsweb"
REJECTED = (IMSWEB / "x12_277CA_rejected.txt").read_text()
ACCEPTED = (IMSWEB / "x12_277CA_accepted.txt").read_text()


def rebuilt(text: str, edit) -> str:
    """The file's segments through ``edit`` (a list -> list function), SE01 recounted."""
    segments, seps = split_segments(text)
    segments = edit([list(s) for s in segments])
    st = next(i for i, s in enumerate(segments) if s[0] == "ST")
    se = next(i for i, s in enumerate(segments) if s[0] == "SE")
    segments[se][1] = str(se - st + 1)
    return "".join(seps.element.join(s) + seps.segment for s in segments)


def without_claims(segments: list[list[str]]) -> list[list[str]]:
    """Drop every patient loop (HL PT to the next HL or SE)."""
    out, skipping = [], False
    for s in segments:
        if s[0] == "HL":
            skipping = len(s) > 3 and s[3] == "PT"
        elif s[0] == "SE":
            skipping = False
        if not skipping:
            out.append(s)
    return out


def status_at(level: str, stc: str):
    def edit(segments):
        segments = without_claims(segments)
        hl = next(i for i, s in enumerate(segments) if s[0] == "HL" and s[3] == level)
        nxt = next(i for i in range(hl + 1, len(segments)) if segments[i][0] in ("HL", "SE"))
        here = [i for i in range(hl, nxt) if segments[i][0] == "STC"]
        for i in reversed(here):
            del segments[i]
        at = next(i for i in range(hl, nxt) if segments[i][0] == "TRN") + 1
        segments.insert(at, ["STC", stc, "20110311", "U", "199.14"])
        return segments

    return edit
