"""X12 helpers for tests: pyx12's verdict (plus the errors, so a failure says why), and
segment damage for the parsers' property tests."""

from __future__ import annotations

import io
import json


def pyx12_validate(text: str) -> tuple[bool, list]:
    import pyx12.error_handler  # noqa: F401  (imported for its side effects on pyx12)
    import pyx12.params
    import pyx12.x12n_document

    out = io.StringIO()
    ok = pyx12.x12n_document.x12n_document(
        param=pyx12.params.params(),
        src_file=io.StringIO(text),
        fd_997=None,
        fd_html=None,
        fd_xmldoc=None,
        fd_json=out,
        xslt_files=None,
        map_path=None,
    )
    errors: list = []

    def collect(node):
        if isinstance(node, dict):
            errors.extend(node.get("errors", []))
            for v in node.values():
                collect(v)
        elif isinstance(node, list):
            for v in node:
                collect(v)

    collect(json.loads(out.getvalue() or "{}"))
    return ok, errors


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
