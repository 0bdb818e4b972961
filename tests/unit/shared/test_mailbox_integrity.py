"""Mailbox integrity without a database: what a poller refuses before reading a file
whole, what it never reads, archive names, modes and the report ``rcm status`` shows.

The file is a real-world sample in tests/fixtures (a LinuxForHealth 835). The paths that apply a file (and need PostgreSQL) are in
tests/integration/test_mailbox_integrity.py.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shared import mailbox
from shared.settings import MailboxSettings

X12 = Path(__file__).resolve().parents[2] / "fixtures" / "x12"
ERA = (X12 / "835" / "linuxforhealth" / "managed-care.835").read_text()  # ISA06 000000005


async def _not_applied(conn, text, file_name, emitter):  # pragma: no cover - never reached
    raise AssertionError(f"{file_name} must not be applied")


def _box(directory: Path, kinds=("835",), **settings) -> mailbox.InboundMailbox:
    return mailbox.InboundMailbox(
        directory,
        frozenset(kinds),
        "payments",
        _not_applied,
        handles_unknown=True,
        settings=MailboxSettings(**settings),
    )


def _reason(directory: Path, name: str) -> str:
    return (directory / "failed" / f"{name}.reason.txt").read_text().strip()


def _sparse(path: Path, text: str, size: int) -> None:
    """``text``, then zeros up to ``size`` bytes that take no disk (a sparse file)."""
    path.write_text(text)
    os.truncate(path, size)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


async def test_a_symlink_to_a_file_outside_the_mailbox_is_moved_unread(tmp_path):
    secret = tmp_path / "outside" / "secret.835"
    secret.parent.mkdir()
    secret.write_text(ERA)
    box = _box(tmp_path / "in")
    (box.directory / "evil.835").symlink_to(secret)
    assert await box.poll_once(None) == 1  # no database needed: nothing was applied
    moved = box.directory / "failed" / "evil.835"
    assert moved.is_symlink() and os.readlink(moved) == str(secret)  # the link, not its target
    assert _reason(box.directory, "evil.835") == ("not a regular file (a symbolic link): not read")
    assert secret.read_text() == ERA and _mode(secret) == 0o644  # target untouched, not chmod-ed


async def test_a_fifo_is_refused_without_blocking(tmp_path):
    box = _box(tmp_path / "in")
    os.mkfifo(box.directory / "pipe.835")
    assert await box.poll_once(None) == 1
    assert "a named pipe" in _reason(box.directory, "pipe.835")


async def test_only_the_poller_for_unknown_files_moves_what_it_cannot_read(tmp_path):
    box = _box(tmp_path / "in")
    box.handles_unknown = False
    (box.directory / "evil.835").symlink_to("/etc/passwd")
    assert await box.poll_once(None) == 0
    assert (box.directory / "evil.835").is_symlink()  # left for the poller that takes garbage


async def test_a_hard_linked_file_is_left_unread(tmp_path):
    outside = tmp_path / "outside.835"
    outside.write_text(ERA)
    box = _box(tmp_path / "in")
    os.link(outside, box.directory / "linked.835")
    assert await box.poll_once(None) == 0
    assert (box.directory / "linked.835").exists()
    report = mailbox.mailbox_report(box.directory)
    assert report["not_regular"] == ["linked.835"] and report["waiting"] == 0


async def test_a_name_outside_the_safe_set_is_archived_under_a_safe_one(tmp_path):
    box = _box(tmp_path / "in")
    (box.directory / "DOE JOHN\n.835").write_text(ERA)
    assert await box.poll_once(None) == 1
    assert sorted(p.name for p in (box.directory / "failed").iterdir()) == [
        "DOE_JOHN_.835",
        "DOE_JOHN_.835.reason.txt",
    ]
    assert "file name has characters outside" in _reason(box.directory, "DOE_JOHN_.835")


async def test_an_oversized_file_is_refused_after_reading_its_header_only(tmp_path):
    box = _box(tmp_path / "in", max_file_bytes=64 * 1024)
    big = box.directory / "big.835"
    _sparse(big, ERA, 200 * 1024 * 1024)  # reading 200 MB whole would take the time
    started = time.perf_counter()
    assert await box.poll_once(None) == 1
    assert time.perf_counter() - started < 2
    assert _reason(box.directory, "big.835") == (
        "file is 209715200 bytes, above this mailbox's limit of 65536 bytes"
        " (RCM_MAILBOX_MAX_FILE_BYTES): not read"
    )


async def test_an_oversized_file_of_another_poller_is_left_to_it(tmp_path):
    box = _box(tmp_path / "in", kinds=("999",), max_file_bytes=4096)
    _sparse(box.directory / "big.835", ERA, 10 * 1024 * 1024)
    assert await box.poll_once(None) == 0
    assert (box.directory / "big.835").exists()


async def test_a_file_from_a_sender_that_is_no_trading_partner_is_refused(tmp_path):
    box = _box(tmp_path / "in", kinds=("835", "999"), senders={"999": ["EMEDNYBAT"]})
    (box.directory / "era.835").write_text(ERA)
    assert await box.poll_once(None) == 1  # the 999 list says nothing of 835s: no sender may
    assert _reason(box.directory, "era.835") == (
        "unknown sender: ISA06 '000000005' is not a trading partner configured for 835 files"
        " (RCM_MAILBOX_SENDERS)"
    )


def test_trading_partners_per_kind_and_for_every_kind():
    s = MailboxSettings(senders={"*": ["CLEARINGHOUSE"], "835": ["PAYER1 "]})
    assert s.allowed_senders("835") == {"PAYER1", "CLEARINGHOUSE"}
    assert s.allowed_senders("999") == {"CLEARINGHOUSE"}
    assert MailboxSettings().allowed_senders("835") is None  # none configured: any sender


def test_trading_partners_from_the_environment(monkeypatch):
    monkeypatch.setenv("RCM_MAILBOX_SENDERS", '{"835": ["PAYER1"]}')
    monkeypatch.setenv("RCM_MAILBOX_MAX_FILE_BYTES", "1048576")
    monkeypatch.setenv("RCM_MAILBOX_MAX_ATTEMPTS", "5")
    s = MailboxSettings()
    assert s.allowed_senders("835") == {"PAYER1"} and s.allowed_senders("277") == frozenset()
    assert (s.max_file_bytes, s.max_attempts) == (1048576, 5)


async def test_hidden_and_temporary_names_are_never_taken_and_are_reported(tmp_path):
    box = _box(tmp_path / "in")
    names = [".hidden.835", "..dots.835", "x.835.tmp", "y.835.part", "z.835.filepart"]
    for name in names:
        (box.directory / name).write_text(ERA)
    assert await box.poll_once(None) == 0
    assert all((box.directory / n).exists() for n in names)
    report = mailbox.mailbox_report(box.directory, stuck_seconds=3600)
    assert report["hidden"] == ["..dots.835", ".hidden.835"]
    assert report["temporary"] == ["x.835.tmp", "y.835.part", "z.835.filepart"]
    assert report["stuck"] == [] and report["waiting"] == 0
    old = time.time() - 7200
    os.utime(box.directory / "x.835.tmp", (old, old))
    assert mailbox.mailbox_report(box.directory, stuck_seconds=3600)["stuck"] == ["x.835.tmp"]


def test_mailbox_report_counts_waiting_failed_and_retrying(tmp_path):
    box = _box(tmp_path / "in")
    (box.directory / "a.835").write_text(ERA)
    (box.directory / "failed" / "b.835").write_text(ERA)
    (box.directory / "failed" / "b.835.reason.txt").write_text("why\n")
    box._count_attempt(box.directory / "a.835")
    report = mailbox.mailbox_report(box.directory)
    assert (report["waiting"], report["failed"], report["retrying"]) == (1, 1, {"a.835": 1})
    assert mailbox.mailbox_report(tmp_path / "absent")["waiting"] == 0


def test_is_temporary_and_safe_name():
    assert mailbox.is_temporary(".x") and mailbox.is_temporary("..x")
    assert mailbox.is_temporary("era.835.TMP") and mailbox.is_temporary("era.835.part")
    assert not mailbox.is_temporary("era.835") and not mailbox.is_temporary("temp.835")
    assert mailbox.safe_name("../../etc/passwd") == "_.._etc_passwd"
    assert mailbox.safe_name("...") == "unnamed"


def test_archived_files_are_never_overwritten(tmp_path):
    archive = tmp_path / "processed"
    archive.mkdir()
    names = []
    for content in ("one", "two", "three"):
        src = tmp_path / "era.835"
        src.write_text(content)
        names.append(mailbox._move_unique(src, archive, "era.835").name)
    assert names == ["era.835", "era-2.835", "era-3.835"]
    assert [(archive / n).read_text() for n in names] == ["one", "two", "three"]
    src = tmp_path / "NOEXT"
    src.write_text("x")
    (archive / "NOEXT").write_text("old")
    assert mailbox._move_unique(src, archive, "NOEXT").name == "NOEXT-2"
    assert mailbox._move_unique(tmp_path / "gone", archive, "gone") is None


def test_outbound_files_are_0600_in_0700_directories(tmp_path):
    out = tmp_path / "mailbox" / "outbound"
    path = mailbox.write_atomically(out, "C1.837", "ISA*...~")
    assert _mode(path) == 0o600
    assert _mode(out) == 0o700 and _mode(out.parent) == 0o700  # parents made here too
    assert [p.name for p in out.iterdir()] == ["C1.837"]  # no temp file left


def test_a_temp_file_planted_as_a_link_is_not_written_through(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    target = tmp_path / "victim"
    target.write_text("keep")
    (out / ".C1.837.tmp").symlink_to(target)
    mailbox.write_atomically(out, "C1.837", "ISA*...~")
    assert target.read_text() == "keep" and (out / "C1.837").read_text() == "ISA*...~"


def test_private_dir_tightens_our_directories(tmp_path):
    d = tmp_path / "statements"
    d.mkdir(mode=0o755)
    os.chmod(d, 0o755)
    assert _mode(mailbox.private_dir(d)) == 0o700
    shared = tmp_path / "inbound"
    shared.mkdir()
    os.chmod(shared, 0o775)
    assert _mode(mailbox.private_dir(shared, keep_group=True)) == 0o770  # an SFTP group's


async def test_archives_and_reasons_are_0600_in_0700_directories(tmp_path):
    box = _box(tmp_path / "in", max_file_bytes=4096)
    _sparse(box.directory / "big.835", ERA, 8192)
    os.chmod(box.directory / "big.835", 0o644)  # as a sender might leave it
    await box.poll_once(None)
    for sub in ("", "processed", "failed", ".attempts"):
        assert _mode(box.directory / sub) == 0o700, sub
    assert _mode(box.directory / "failed" / "big.835") == 0o600
    assert _mode(box.directory / "failed" / "big.835.reason.txt") == 0o600


def test_an_attempt_is_counted_before_it_starts_and_a_new_file_starts_again(tmp_path):
    box = _box(tmp_path / "in")
    path = box.directory / "a.835"
    path.write_text(ERA)
    assert box._count_attempt(path).count == 1
    assert box._count_attempt(path).count == 2
    marker = box.directory / ".attempts" / "a.835"
    assert _mode(marker) == 0o600
    assert mailbox._read_attempts(marker).last_error == "the process stopped while applying it"
    assert "a.835" not in box._attempts()  # young and unsettled: another instance's, skipped
    path.unlink()
    path.write_text(ERA + "\n")  # another file under the same name
    assert box._count_attempt(path).count == 1


def _attempt_by(box, name: str, owner: str) -> None:
    """An unsettled attempt at ``name`` recorded by the process ``owner``, just now."""
    st = (box.directory / name).lstat()
    marker = box.directory / ".attempts" / name
    sig = (st.st_ino, st.st_mtime_ns, st.st_size)
    mailbox._write_attempts(marker, mailbox._Attempts(sig, 1, mailbox.IN_FLIGHT, owner))


def test_an_attempt_records_its_process_and_old_records_still_read(tmp_path):
    box = _box(tmp_path / "in")
    path = box.directory / "a.835"
    path.write_text(ERA)
    box._count_attempt(path)
    marker = box.directory / ".attempts" / "a.835"
    a = mailbox._read_attempts(marker)
    host, pid, start = a.owner.split(":")
    assert (host, int(pid)) == (socket.gethostname(), os.getpid()) and start
    assert a.last_error == mailbox.IN_FLIGHT
    marker.write_text("1 2 3 2 TimeoutError\n")  # written before owners were recorded
    assert mailbox._read_attempts(marker) == mailbox._Attempts((1, 2, 3), 2, "TimeoutError", "")


def test_a_file_whose_process_died_is_taken_again_at_once(tmp_path):
    """A service killed while applying a file must not leave it for in_flight_seconds
    (five minutes) once it restarts: the chaos run's payer simulator did, and claims stayed
    unanswered that long. A live process's attempt, or one on another host, still waits."""
    box = _box(tmp_path / "in", in_flight_seconds=300)
    for name in ("dead.835", "alive.835", "remote.835", "reused.835"):
        (box.directory / name).write_text(ERA)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # its pid is free now (a reuse within this test is all but impossible)
    here = mailbox._owner()
    host, pid, start = here.split(":")
    _attempt_by(box, "dead.835", f"{host}:{gone.pid}:1")
    _attempt_by(box, "alive.835", here)
    _attempt_by(box, "remote.835", f"another-host:{gone.pid}:1")
    _attempt_by(box, "reused.835", f"{host}:{pid}:{int(start) - 1}")  # our pid, an older process
    attempts = box._attempts()
    assert set(attempts) == {"dead.835", "reused.835"}
    assert attempts["dead.835"].count == 1
    assert box._in_flight == {"alive.835", "remote.835"}


@pytest.mark.parametrize(
    ("error", "kept"),
    [
        (TimeoutError(), "TimeoutError"),  # the file's doing: it stays counted
        (ConnectionRefusedError(), None),  # the database away: taken back
    ],
)
def test_an_attempt_that_raised_is_kept_or_taken_back(tmp_path, error, kept):
    box = _box(tmp_path / "in")
    path = box.directory / "a.835"
    path.write_text(ERA)
    attempt = box._count_attempt(path)
    box._settle_attempt(path, attempt, error)
    a = box._attempts().get("a.835")
    assert (a.last_error if a else None) == kept


def test_an_attempt_taken_back_leaves_the_earlier_failure_as_it_was(tmp_path):
    """A file that timed out once, retried while the database was away: the retry is not
    counted, and the file waits for no one (it used to be left "in flight" for five minutes)."""
    box = _box(tmp_path / "in")
    path = box.directory / "a.835"
    path.write_text(ERA)
    box._settle_attempt(path, box._count_attempt(path), TimeoutError())
    retry = box._count_attempt(path)
    assert retry.count == 2
    box._settle_attempt(path, retry, ConnectionRefusedError())
    a = box._attempts()["a.835"]
    assert (a.count, a.last_error) == (1, "TimeoutError") and box._in_flight == set()


def test_a_private_file_replaces_a_planted_link_and_stays_0600(tmp_path):
    d = tmp_path / "statements"
    victim = tmp_path / "victim"
    victim.write_text("keep")
    private = mailbox.private_file(d / "ST1.pdf")
    assert _mode(private) == 0o600 and _mode(d) == 0o700
    private.unlink()
    (d / "ST1.pdf").symlink_to(victim)
    mailbox.private_file(d / "ST1.pdf").write_bytes(b"%PDF")
    assert victim.read_text() == "keep" and not (d / "ST1.pdf").is_symlink()


def test_statement_pdfs_are_0600_in_a_0700_directory(tmp_path):
    from datetime import date
    from decimal import Decimal

    from pypdf import PdfReader

    from services.followup.domain.statements import StatementLine, build_statement
    from services.followup.statements_run import _render_private

    line = StatementLine(
        date(2024, 3, 4), "99213", "Office visit", *map(Decimal, ("150", "80", "40", "30"))
    )
    statement = build_statement(
        "ST1", "A1", "Clinic", "Jane Q Patient", ["12 Elm St"], [line], date(2024, 4, 1), 0
    )
    path = tmp_path / "run" / "statements" / "ST1.pdf"
    _render_private(statement, path)
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700 and _mode(path.parent.parent) == 0o700
    assert "Jane Q Patient" in PdfReader(path).pages[0].extract_text()


def test_counters_of_files_no_longer_waiting_are_dropped(tmp_path):
    box = _box(tmp_path / "in")
    path = box.directory / "a.835"
    path.write_text(ERA)
    box._count_attempt(path)
    path.unlink()  # removed by hand
    assert box._attempts() == {}
    assert list((box.directory / ".attempts").iterdir()) == []


def test_a_file_another_instance_is_applying_is_skipped_not_counted_as_failed(tmp_path):
    """Several instances poll one mailbox: an attempt still in flight is not a failure."""
    one = _box(tmp_path / "in")
    path = one.directory / "a.835"
    path.write_text(ERA)
    for _ in range(5):  # more attempts in flight than max_attempts, by live instances
        one._count_attempt(path)
    other = _box(tmp_path / "in")
    assert other._attempts() == {}
    assert other._in_flight == {"a.835"}
    old = time.time() - 3600  # an hour without settling: the process applying it died
    os.utime(one.directory / ".attempts" / "a.835", (old, old))
    assert other._attempts()["a.835"].count == 5
