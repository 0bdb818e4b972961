"""Find marker PHI where it must not be (issue 18: "a scan of every log, trace, error body
and file after an end-to-end run with marker PHI finds 0 markers outside the places PHI
belongs").

A test feeds encounters whose names, member ids, addresses and notes carry unusual marker
strings (``ZQXPATIENT7``...), runs them end to end, then calls ``scan_run_dir`` on the run
directory: every file under it is read in chunks and each marker looked for (ASCII case
folded: X12 writes names in capitals), except in the places PHI belongs:

- the database's own files (``postgres/data``; NOT ``postgres/postgres.log``: the probe
  found note fragments there),
- the broker's topic storage (``kafka/data``; events carry PHI, protected by TLS, SASL and
  ACLs, see docs/security.md; NOT ``kafka/kafka.log``),
- the mailboxes (``mailbox/``, and any directory given in ``allowed``): the X12 files,
  their archives in ``processed/`` and ``failed/`` — but NOT ``*.reason.txt`` (error text)
  nor the ``.attempts`` counters,
- the patient statements (``statements/``).

Everything else is scanned: service logs (``logs/*.log``), traces (``traces/*.jsonl``),
the stack's own logs, reason files, and anything a component left elsewhere. HTTP error
bodies and captured stderr are scanned with ``scan_text``. A finding names the file, the
marker, the line (the span name too, for a trace line) and a short excerpt with the
markers masked, so the report itself carries no PHI.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# Relative to the run directory: where PHI belongs.
ALLOWED = ("postgres/data", "kafka/data", "mailbox", "statements")
# Inside an allowed place and still scanned: what rcm writes about a file is no place for PHI.
NEVER_ALLOWED_SUFFIXES = (".reason.txt",)
NEVER_ALLOWED_DIRS = (".attempts",)
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Finding:
    path: str  # relative to the run dir, or the label given to scan_text
    marker: str
    kind: str  # "log", "trace", "reason", "file" or "text"
    line: int  # 1-based
    excerpt: str  # about 60 characters around it, every marker masked
    span: str | None = None  # a trace line's span name

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" + (f" (span {self.span!r})" if self.span else "")
        return f"{where}: {self.kind} carries marker {self.marker!r}: ...{self.excerpt}..."


def is_allowed(path: Path, run_dir: Path, allowed: Iterable[Path] = ()) -> bool:
    """Whether ``path`` is a place PHI belongs (see the module doc)."""
    if path.name.endswith(NEVER_ALLOWED_SUFFIXES):
        return False
    if any(part in NEVER_ALLOWED_DIRS for part in path.parts):
        return False
    places = [run_dir / p for p in ALLOWED] + [Path(p) for p in allowed]
    resolved = path.resolve()
    return any(resolved.is_relative_to(p.resolve()) for p in places)


def scan_run_dir(
    run_dir: Path,
    markers: Iterable[str],
    *,
    allowed: Iterable[Path] = (),
    skip: Iterable[Path] = (),
) -> list[Finding]:
    """Every marker found under ``run_dir`` outside the places PHI belongs.

    ``allowed``: more places PHI belongs (a mailbox or statements directory configured
    outside the run dir, when it is under it). ``skip``: paths not to look at (a test's
    own input files). Symbolic links are not followed.
    """
    markers = _markers(markers)
    allowed = list(allowed)
    skipped = [Path(p).resolve() for p in skip]
    findings: list[Finding] = []
    for path in sorted(_files(run_dir)):
        if is_allowed(path, run_dir, allowed):
            continue
        if any(path.resolve().is_relative_to(s) for s in skipped):
            continue
        findings += scan_file(path, markers, label=str(path.relative_to(run_dir)))
    return findings


def scan_file(path: Path, markers: Iterable[str], label: str | None = None) -> list[Finding]:
    """Each occurrence of a marker in one file, read in chunks (a large log is never held whole)."""
    markers = _markers(markers)
    kind = _kind(path)
    label = label or str(path)
    findings: list[Finding] = []
    longest = max((len(folded) for _, folded in markers), default=1)
    line_no, carry = 1, b""
    try:
        f = open(path, "rb")  # noqa: SIM115 - read in a loop below
    except OSError:
        return findings  # a socket, a file that went away: nothing to read
    with f:
        while True:
            chunk = f.read(_CHUNK)
            if not chunk:
                break
            data = carry + chunk
            findings += _search(data, markers, label, kind, line_no, len(carry))
            keep = min(len(data), longest - 1)
            line_no += data[: len(data) - keep].count(b"\n")
            carry = data[len(data) - keep :] if keep else b""
    if kind == "trace":
        findings = [_with_span(path, f) for f in findings]
    return findings


def scan_text(label: str, text: str | bytes, markers: Iterable[str]) -> list[Finding]:
    """Markers in a text the test holds: an HTTP error body, captured stderr, a log record."""
    data = text.encode("utf-8", "replace") if isinstance(text, str) else text
    return _search(data, _markers(markers), label, "text", 1, 0)


def report(findings: list[Finding]) -> str:
    """One line per finding, for an assertion message."""
    return "\n".join(str(f) for f in findings) or "no marker outside its place"


# --------------------------------------------------------------------------- internals


def _markers(markers: Iterable) -> list[tuple[str, bytes]]:
    """(marker as given, its bytes ASCII-folded); already made pairs pass through."""
    out = [m if isinstance(m, tuple) else (m, m.encode().lower()) for m in markers]
    if any(len(folded) < 6 for _, folded in out):
        raise ValueError("markers shorter than 6 characters would match by chance")
    return out


def _files(root: Path) -> Iterable[Path]:
    for path in root.rglob("*"):
        if path.is_symlink() or not path.is_file():
            continue
        yield path


def _kind(path: Path) -> str:
    if path.name.endswith(".reason.txt"):
        return "reason"
    if path.suffix == ".jsonl" or "traces" in path.parts:
        return "trace"
    if path.suffix == ".log" or "logs" in path.parts:
        return "log"
    return "file"


def _search(
    data: bytes,
    markers: list[tuple[str, bytes]],
    label: str,
    kind: str,
    first_line: int,
    carried: int,
) -> list[Finding]:
    """Occurrences in ``data`` whose line starts at ``first_line``; its first ``carried``
    bytes ended the previous chunk, so a match lying wholly in them was reported then."""
    folded = data.lower()
    out = []
    for name, m in markers:
        start = folded.find(m)
        while start >= 0:
            if start + len(m) > carried:
                line = first_line + data.count(b"\n", 0, start)
                excerpt = _excerpt(data, folded, start, markers)
                out.append(Finding(label, name, kind, line, excerpt))
            start = folded.find(m, start + 1)
    return out


def _excerpt(data: bytes, folded: bytes, at: int, markers: list[tuple[str, bytes]]) -> str:
    lo, hi = max(0, at - 30), min(len(data), at + 30)
    # Whole markers cut by the window's edges are masked too: look a marker's length wider.
    longest = max(len(m) for _, m in markers)
    wlo, whi = max(0, lo - longest), min(len(data), hi + longest)
    piece = bytearray(data[wlo:whi])
    low = folded[wlo:whi]
    for _, m in markers:
        i = low.find(m)
        while i >= 0:
            piece[i : i + len(m)] = b"#" * len(m)
            i = low.find(m, i + 1)
    piece = piece[lo - wlo : len(piece) - (whi - hi)]
    return piece.decode("utf-8", "replace").replace("\n", "\\n")


def _with_span(path: Path, finding: Finding) -> Finding:
    """The span name of a trace line (a JSON object per line)."""
    try:
        with open(path, "rb") as f:
            for n, raw in enumerate(f, start=1):
                if n == finding.line:
                    name = json.loads(raw).get("name")
                    return Finding(**{**finding.__dict__, "span": name})
    except (OSError, ValueError, AttributeError):
        pass
    return finding
