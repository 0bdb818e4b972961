"""The PHI scan helper (tests/phi_scan_support.py) on a run directory laid out as the
local stack lays it out: markers in the places PHI belongs are not findings; markers in
logs, traces, the stack's own logs, mailbox reason files and attempt counters are."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import phi_scan_support as scan

MARKER = "ZQXPATIENT7"
MEMBER = "ZQXMEMBER42"


def _put(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    r = tmp_path / "run"
    # Where PHI belongs.
    _put(r, "postgres/data/base/16384/2619", f"row {MARKER} {MEMBER}")
    _put(r, "kafka/data/rcm.encounter.documented.v1-0/00000000000000000000.log", MARKER)
    _put(r, "mailbox/inbound/processed/835_000000001.x12", f"NM1*QC*1*{MARKER}~")
    _put(r, "mailbox/outbound/C1.837", f"NM1*IL*1*{MARKER}~")
    _put(r, "statements/ST20240101-A1-0.pdf", f"%PDF {MARKER}")
    # Clean places outside them.
    _put(r, "logs/coding-0.log", '{"msg": "batch applied", "count": 3}\n')
    return r


def test_a_clean_run_has_no_findings(run_dir):
    assert scan.scan_run_dir(run_dir, [MARKER, MEMBER]) == []


def test_markers_in_logs_traces_and_reason_files_are_found_with_their_place(run_dir):
    _put(
        run_dir,
        "logs/payments-0.log",
        '{"msg": "ok"}\n{"msg": "x12 error", "error": "segment 15 (NM1|QC|1|zqxpatient7)"}\n',
    )
    span = {"name": "x12 parse 835", "attributes": {"rcm.note": f"pain {MEMBER}"}}
    _put(run_dir, "traces/spans.jsonl", '{"name": "a"}\n' + json.dumps(span) + "\n")
    _put(run_dir, "postgres/postgres.log", f"ERROR: bad value {MARKER}\n")
    _put(run_dir, "kafka/kafka.log", f"WARN record {MARKER}\n")
    _put(run_dir, "mailbox/inbound/failed/bad.835.reason.txt", f"segment 15: {MARKER}\n")
    _put(run_dir, "mailbox/inbound/.attempts/bad.835", f"1 2 3 1 {MARKER}\n")
    found = scan.scan_run_dir(run_dir, [MARKER, MEMBER])
    got = sorted((f.path, f.marker, f.kind, f.line, f.span) for f in found)
    assert got == [
        ("kafka/kafka.log", MARKER, "log", 1, None),
        ("logs/payments-0.log", MARKER, "log", 2, None),  # found in lower case too
        ("mailbox/inbound/.attempts/bad.835", MARKER, "file", 1, None),
        ("mailbox/inbound/failed/bad.835.reason.txt", MARKER, "reason", 1, None),
        ("postgres/postgres.log", MARKER, "log", 1, None),
        ("traces/spans.jsonl", MEMBER, "trace", 2, "x12 parse 835"),
    ]
    assert all(MARKER not in f.excerpt.upper() and MEMBER not in f.excerpt.upper() for f in found)
    assert "logs/payments-0.log:2: log carries marker" in scan.report(found)


def test_a_marker_across_two_chunks_is_found_once_on_its_line(run_dir):
    head = ("x" * 99 + "\n") * (scan._CHUNK // 100)  # ends just before the chunk boundary
    text = head + "y" * (scan._CHUNK - len(head) - 4) + MARKER + "\n" + MEMBER
    _put(run_dir, "logs/big.log", text)
    found = scan.scan_run_dir(run_dir, [MARKER, MEMBER])
    assert [(f.marker, f.line) for f in found] == [
        (MARKER, scan._CHUNK // 100 + 1),
        (MEMBER, scan._CHUNK // 100 + 2),
    ]


def test_other_allowed_places_and_skipped_inputs(run_dir, tmp_path):
    _put(run_dir, "inbound-elsewhere/processed/a.835", MARKER)
    _put(run_dir, "inputs/bundle.json", MARKER)
    found = scan.scan_run_dir(
        run_dir,
        [MARKER],
        allowed=[run_dir / "inbound-elsewhere"],
        skip=[run_dir / "inputs"],
    )
    assert found == []


def test_links_are_not_followed(run_dir, tmp_path):
    outside = _put(tmp_path, "outside.txt", MARKER)
    (run_dir / "logs" / "link.log").symlink_to(outside)
    assert scan.scan_run_dir(run_dir, [MARKER]) == []


def test_error_bodies_and_short_markers():
    body = '{"detail": [{"loc": ["body", "patient", "name"], "msg": "bad ZQXPATIENT7"}]}'
    (f,) = scan.scan_text("POST /encounters 422", body, [MARKER])
    assert (f.path, f.kind, f.line) == ("POST /encounters 422", "text", 1)
    assert scan.scan_text("GET /x 404", '{"detail": "not found"}', [MARKER]) == []
    with pytest.raises(ValueError, match="shorter than 6"):
        scan.scan_text("x", "y", ["DOE"])
