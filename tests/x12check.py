"""pyx12 validation for tests: its boolean verdict, plus the errors so a failure says why."""

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
