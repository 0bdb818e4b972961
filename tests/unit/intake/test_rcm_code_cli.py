"""`rcm code` as a user runs it: a real input coded offline, without loading what only the
running pipeline needs (the local stack, the database client, the PDF reader, HL7 v2, the
settings machinery and asyncio: a fifth of a second), and the
command line's one-line errors still reported for the stack."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rcm.cli import main as cli

ROOT = Path(__file__).resolve().parents[3]
# Microsoft FHIR-Converter's C-CDA progress note as FHIR (MIT; tests/fixtures/realworld/fhir/SOURCES.md)
PROGRESS_NOTE = ROOT / "tests/fixtures/realworld/fhir/ms-fhir-converter/Progress_Note-expected.json"

_PROBE = """
import contextlib, io, json, sys
from rcm.cli.main import main
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
    status = main(["code", sys.argv[1]])
heavy = ("rcm.localstack", "asyncpg", "pypdf", "aiokafka", "services.intake.domain.hl7v2",
         "pydantic_settings", "shared.settings", "asyncio")
print(json.dumps({"status": status, "result": json.loads(out.getvalue()),
                  "loaded": [m for m in heavy if m in sys.modules]}))
"""


def test_rcm_code_codes_a_real_input_without_loading_the_pipeline():
    r = subprocess.run(
        [sys.executable, "-c", _PROBE, str(PROGRESS_NOTE)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["status"] == 0
    assert got["result"]["route"] in ("auto", "review")
    assert got["result"]["diagnoses"] or got["result"]["edits"]
    assert got["loaded"] == []


def test_a_stack_error_is_still_one_line(monkeypatch, capsys):
    from rcm.localstack import StackError

    def fails(_args):
        raise StackError("kafka did not start")

    parser = argparse.ArgumentParser()
    parser.set_defaults(func=fails)
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    assert cli.main([]) == 2
    assert capsys.readouterr().err == "rcm: kafka did not start\n"


def test_other_errors_are_not_swallowed(monkeypatch):
    def fails(_args):
        raise RuntimeError("a bug")

    parser = argparse.ArgumentParser()
    parser.set_defaults(func=fails)
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    with pytest.raises(RuntimeError):
        cli.main([])


def test_a_configuration_error_is_still_one_line(monkeypatch, capsys):
    from shared.settings import ConfigurationError

    def fails(_args):
        raise ConfigurationError("RCM_KAFKA_BOOTSTRAP: required in production")

    parser = argparse.ArgumentParser()
    parser.set_defaults(func=fails)
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    assert cli.main([]) == 2
    assert capsys.readouterr().err == "rcm: RCM_KAFKA_BOOTSTRAP: required in production\n"


def test_the_command_line_starts_without_the_event_models():
    """Every `rcm` command builds the whole parser first: its help texts must not load
    pydantic and the event models (0.25 s; `rcm --help` took 0.35 s with them)."""
    probe = (
        "import sys; from rcm.cli.main import build_parser; build_parser();"
        " print(sorted(m for m in ('pydantic', 'shared.events', 'asyncio') if m in sys.modules))"
    )
    r = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
