"""Mailbox integrity on the real stack (issue 18, items 5-7), each probe finding set up
again and its fixed outcome checked.

The probe's findings: a 200 MB 835 took payments to 4.5 GB and was retried forever; a
symlink was followed (to /etc/passwd); a new file with an archived file's name
overwrote the archive; ``x.835.tmp`` and ``..x`` files stayed forever unreported; an 835
reusing an interchange number with new content was silently dropped; a file from any
sender was processed; parse errors printed whole segments with the patient's name; 835s
were world-readable.

The payments service runs in this process (``payments_support``) for the end-to-end
cases; the cases that need other settings (trading partners, a small size limit, a
failing apply) poll a mailbox of their own with payments' real ``apply_era`` against the
same database.
"""

from __future__ import annotations

import asyncio
import os
import resource
import stat
import sys
import textwrap
import time
from pathlib import Path

import pytest

from services.payments.posting import apply_era
from shared import mailbox
from shared.settings import MailboxSettings
from tests import phi_scan_support as scan
from tests.integration import payments_support as harness
from tests.integration.payments_support import RUN, Clp, D, era_835, new_id, submitted

payments = harness.payments
ledger_invariant = harness.ledger_invariant
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("ledger_invariant")]
ROOT = Path(__file__).resolve().parents[2]


def _era(payer: str | None = None, claim: str | None = None, patient: str = "TESTPATIENT") -> str:
    """A valid 835 paying one claim (an unknown one: it waits in the unmatched queue)."""
    text = era_835(
        [Clp(claim or new_id("CL"), D("100.00"), D("80.00"), pr=D("20.00"))],
        payer_id=payer or new_id("PY"),
        trace=new_id("TRN"),
    )
    return text.replace("NM1*QC*1*TESTPATIENT*PAT", f"NM1*QC*1*{patient}*PAT")


def _icn(text: str) -> str:
    return mailbox.classify(text).interchange_control_number


def _with_icn(text: str, icn: str) -> str:
    old = _icn(text)
    return text.replace(f"*{old}*", f"*{icn}*", 1).replace(f"IEA*1*{old}", f"IEA*1*{icn}")


def _reason(directory: Path, name: str) -> str:
    return (directory / "failed" / f"{name}.reason.txt").read_text().strip()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


async def _posted_traces(pool, text: str) -> int:
    """How many deposits (835 transactions) of ``text``'s trace number payments recorded."""
    trace = text.split("TRN*1*")[1].split("*")[0]
    return await pool.fetchval(
        "SELECT count(*) FROM payments.remittance_advice WHERE trace_number = $1", trace
    )


async def _until(predicate, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


# --------------------------------------------------------------------------- end to end


async def test_a_symlink_to_a_file_outside_the_mailbox_is_never_read(payments, tmp_path):
    outside = tmp_path / "elsewhere.835"
    outside.write_text(_era())
    passwd = payments.inbound / f"passwd-{RUN}.835"
    evil = payments.inbound / f"evil-{RUN}.835"
    passwd_mode = _mode(Path("/etc/passwd"))
    passwd.symlink_to("/etc/passwd")
    evil.symlink_to(outside)
    assert await payments.wait_file(passwd.name) == "failed"
    assert await payments.wait_file(evil.name) == "failed"
    for name, target in ((passwd.name, "/etc/passwd"), (evil.name, str(outside))):
        moved = payments.inbound / "failed" / name
        assert moved.is_symlink() and os.readlink(moved) == target  # the link moved, unread
        assert _reason(payments.inbound, name) == "not a regular file (a symbolic link): not read"
    assert await _posted_traces(payments.pool, outside.read_text()) == 0
    assert _mode(Path("/etc/passwd")) == passwd_mode  # never chmod-ed through the link
    root_line = Path("/etc/passwd").read_text().splitlines()[0]
    assert (
        await payments.pool.fetchval(
            "SELECT count(*) FROM payments.mailbox_file WHERE reason LIKE '%' || $1 || '%'",
            root_line,
        )
        == 0
    )


async def test_a_name_already_in_processed_gets_a_numbered_archive(payments):
    first, second = _era(), _era()
    name = f"same-{RUN}.835"
    assert await payments.drop(first, name) == "processed"
    mailbox.write_atomically(payments.inbound, name, second)
    renamed = payments.inbound / "processed" / f"same-{RUN}-2.835"
    await _until(renamed.exists)
    assert (payments.inbound / "processed" / name).read_text() == first  # not overwritten
    assert renamed.read_text() == second
    assert await _posted_traces(payments.pool, first) == 1
    assert await _posted_traces(payments.pool, second) == 1


async def test_hidden_and_temporary_files_stay_and_are_reported(payments):
    names = [f".{RUN}.835", f"..{RUN}.835", f"{RUN}.835.tmp", f"{RUN}.835.part"]
    texts = {n: _era() for n in names}
    for n, text in texts.items():
        (payments.inbound / n).write_text(text)
    try:
        # A file dropped after them is taken: the poller passed them by.
        assert await payments.drop(_era()) == "processed"
        await asyncio.sleep(0.5)
        assert all((payments.inbound / n).exists() for n in names)
        for text in texts.values():
            assert await _posted_traces(payments.pool, text) == 0
        report = mailbox.mailbox_report(payments.inbound, stuck_seconds=3600)
        assert {f".{RUN}.835", f"..{RUN}.835"} <= set(report["hidden"])
        assert {f"{RUN}.835.tmp", f"{RUN}.835.part"} <= set(report["temporary"])
        old = time.time() - 7200
        os.utime(payments.inbound / f"{RUN}.835.tmp", (old, old))
        report = mailbox.mailbox_report(payments.inbound, stuck_seconds=3600)
        assert f"{RUN}.835.tmp" in report["stuck"]
    finally:
        for n in names:
            (payments.inbound / n).unlink()


async def test_an_interchange_number_reused_with_other_content_goes_to_failed(payments):
    payer, claim = new_id("PY"), new_id("CL")
    await payments.register(submitted(claim, D("100.00"), payer_id=payer))
    first = _era(payer, claim)
    reused = _with_icn(_era(payer), _icn(first))  # the same sender and ISA13, another payment
    assert reused != first and _icn(reused) == _icn(first)
    a, b = f"icn-a-{RUN}.835", f"icn-b-{RUN}.835"
    assert await payments.drop(first, a) == "processed"
    assert await payments.drop(reused, b) == "failed"
    reason = _reason(payments.inbound, b)
    assert reason == (
        f"interchange control number (ISA13) {_icn(first)} from sender {payer!r} was used"
        f" before by {a!r} with other content: a sender never reuses one; nothing of this"
        " file was applied"
    )
    assert await _posted_traces(payments.pool, reused) == 0
    row = await payments.pool.fetchrow(
        "SELECT status, reason FROM payments.mailbox_file WHERE file_name = $1", b
    )
    assert (row["status"], row["reason"]) == ("failed", reason)
    # The same bytes as the first file are still a plain duplicate: taken, not applied again.
    assert await payments.drop(first, f"icn-c-{RUN}.835") == "processed"
    assert await _posted_traces(payments.pool, first) == 1


async def test_a_200_mb_835_is_refused_unread_and_the_next_file_posts(payments):
    """Sparse: the 835's header, then zeros to 200 MB (the service never reads past the head)."""
    name = f"huge-{RUN}.835"
    tmp = payments.inbound / f".{name}.tmp"
    tmp.write_text(_era())
    os.truncate(tmp, 200 * 1024 * 1024)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB; payments runs here
    started = time.monotonic()
    os.replace(tmp, payments.inbound / name)
    assert await payments.wait_file(name) == "failed"
    assert time.monotonic() - started < 10
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert grown_mb < 50, f"peak RSS grew {grown_mb:.0f} MB"
    assert _reason(payments.inbound, name) == (
        f"file is {200 * 1024 * 1024} bytes, above this mailbox's limit of"
        f" {MailboxSettings().max_file_bytes} bytes (RCM_MAILBOX_MAX_FILE_BYTES): not read"
    )
    nxt = _era()
    assert await payments.drop(nxt) == "processed"
    assert await _posted_traces(payments.pool, nxt) == 1


async def test_a_parse_error_names_the_segment_never_the_patient(payments, run_dir):
    """The probe's 835 parse error quoted ``NM1|QC|1|DOE|JOHN|...``: a claim segment written
    with another separator than ISA's was taken whole for its segment id."""
    marker = f"ZQXDOE{RUN}"
    text = _era(patient=marker)
    segment = next(s for s in text.split("~") if s.startswith("NM1*QC*"))
    broken = text.replace(segment, segment.replace("*", "|"))
    name = f"broken-{RUN}.835"
    assert await payments.drop(broken, name) == "failed"
    reason = _reason(payments.inbound, name)
    assert reason.startswith("segment ") and "segment id is not 2-3 letters or digits" in reason
    stored = await payments.pool.fetchval(
        "SELECT reason FROM payments.mailbox_file WHERE file_name = $1", name
    )
    assert stored == reason
    found = scan.scan_text("payments.mailbox_file.reason", stored, [marker])
    # Reason files, logs, traces, everything; the mailbox itself holds the file (its place).
    found += scan.scan_run_dir(run_dir, [marker], allowed=[payments.inbound])
    assert found == [], scan.report(found)


async def test_files_rcm_writes_are_0600_in_0700_directories(payments, tmp_path):
    era = _era()
    name = f"modes-{RUN}.835"
    path = payments.inbound / name
    path.write_text(era)
    os.chmod(path, 0o644)  # as a clearinghouse's SFTP upload may leave it
    assert await payments.wait_file(name) == "processed"
    assert _mode(payments.inbound / "processed" / name) == 0o600
    for sub in ("processed", "failed", ".attempts"):
        assert _mode(payments.inbound / sub) == 0o700, sub
    assert _mode(payments.inbound) & 0o077 == 0  # created by rcm: 0700

    # The outbound writer (billing's 837s, followup's 276s, payer_sim's answers).
    out = tmp_path / "clearinghouse" / "outbound"
    file_name = f"C{RUN}.837"
    async with payments.pool.acquire() as conn:
        await mailbox.add_outbound(conn, "payments", out, file_name, "ISA*00*...~")
    assert await mailbox.write_pending(payments.pool, "payments") >= 1
    assert _mode(out / file_name) == 0o600
    assert _mode(out) == 0o700 and _mode(out.parent) == 0o700


# --------------------------------------------------------------------------- own mailboxes


def _own_box(directory: Path, apply=apply_era, **settings) -> mailbox.InboundMailbox:
    return mailbox.InboundMailbox(
        directory,
        frozenset({"835"}),
        "payments",
        apply,
        handles_unknown=True,
        settings=MailboxSettings(**settings),
    )


async def test_a_file_from_an_unknown_sender_goes_to_failed(payments, tmp_path):
    partner, stranger = new_id("PY"), new_id("PY")
    box = _own_box(tmp_path / "in", senders={"835": [partner]})
    known, unknown = _era(partner), _era(stranger)
    (box.directory / "a.835").write_text(unknown)
    (box.directory / "b.835").write_text(known)
    assert await box.poll_once(payments.pool) == 2
    assert _reason(box.directory, "a.835") == (
        f"unknown sender: ISA06 {stranger!r} is not a trading partner configured for 835 files"
        " (RCM_MAILBOX_SENDERS)"
    )
    assert (box.directory / "processed" / "b.835").exists()
    assert await _posted_traces(payments.pool, unknown) == 0
    assert await _posted_traces(payments.pool, known) == 1
    # Not recorded as failed content: once the sender is a partner, the same file is taken.
    box = _own_box(tmp_path / "in", senders={"835": [partner, stranger]})
    mailbox.write_atomically(box.directory, "a-again.835", unknown)
    assert await box.poll_once(payments.pool) == 1
    assert await _posted_traces(payments.pool, unknown) == 1


async def test_a_valid_835_above_the_limit_is_refused_without_posting(payments, tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_835 import generate_835

    text = generate_835(10_000, shape="typical")  # a valid 835 of about 2.7 MB
    box = _own_box(tmp_path / "in", max_file_bytes=1024 * 1024)
    (box.directory / "big.835").write_text(text)
    assert await box.poll_once(payments.pool) == 1
    assert _reason(box.directory, "big.835").startswith(
        f"file is {len(text)} bytes, above this mailbox's limit of 1048576 bytes"
    )
    assert await _posted_traces(payments.pool, text) == 0


async def test_a_file_that_times_out_three_times_goes_to_failed_and_the_others_post(
    payments, tmp_path
):
    async def apply(conn, text, file_name, emitter):
        if file_name.startswith("a-slow"):  # the probe's 200 MB file: every try times out
            await conn.execute("SET LOCAL statement_timeout = '100ms'")
            await conn.execute("SELECT pg_sleep(2)")
        await apply_era(conn, text, file_name, emitter)

    box = _own_box(tmp_path / "in", apply=apply, max_attempts=3)
    slow, good, later = _era(), _era(), _era()
    (box.directory / "a-slow.835").write_text(slow)
    (box.directory / "b-good.835").write_text(good)
    # 1st: both in one transaction, which times out: each attempt is on record.
    assert await box.poll_once(payments.pool) == 0
    assert mailbox.mailbox_report(box.directory)["retrying"] == {"a-slow.835": 1, "b-good.835": 1}
    # 2nd: each alone; the slow one fails alone, the good one posts.
    assert await box.poll_once(payments.pool) == 1
    assert (box.directory / "processed" / "b-good.835").exists()
    (box.directory / "c-later.835").write_text(later)
    # 3rd: the slow one's last try; the file dropped meanwhile posts in the same pass.
    assert await box.poll_once(payments.pool) == 1
    assert (box.directory / "processed" / "c-later.835").exists()
    # 4th: three failures in a row: to failed/, not tried again.
    assert await box.poll_once(payments.pool) == 1
    assert _reason(box.directory, "a-slow.835") == (
        "processing failed 3 times in a row (last: QueryCanceledError); not tried again"
    )
    assert mailbox.mailbox_report(box.directory)["retrying"] == {}
    assert await box.poll_once(payments.pool) == 0
    assert await _posted_traces(payments.pool, slow) == 0
    assert await _posted_traces(payments.pool, good) == 1
    assert await _posted_traces(payments.pool, later) == 1


async def test_a_process_killed_while_applying_a_file_counts_it_as_an_attempt(
    payments, tmp_path, stack_endpoints
):
    """The probe's payments process ran out of memory on a file and started over on it,
    forever: a crash leaves the attempt counted, so the file goes to failed/ in the end."""
    # An unsettled attempt of a live process is that process's for in_flight_seconds (five
    # minutes); one whose process is gone is retried at the next poll, as here.
    box = _own_box(tmp_path / "in", max_attempts=2)
    era = _era()
    (box.directory / "crash.835").write_text(era)
    script = textwrap.dedent(
        f"""
        import asyncio, asyncpg
        from shared.mailbox import InboundMailbox
        from shared.settings import MailboxSettings

        async def hang(conn, text, name, emitter):
            print("applying", flush=True)
            await asyncio.sleep(3600)

        async def main():
            pool = await asyncpg.create_pool({stack_endpoints["postgres"]!r})
            box = InboundMailbox(
                __import__("pathlib").Path({str(box.directory)!r}), frozenset({{"835"}}),
                "payments", hang, settings=MailboxSettings(max_attempts=2),
            )
            await box.poll_once(pool)

        asyncio.run(main())
        """
    )
    for attempt in (1, 2):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, cwd=ROOT, stdout=asyncio.subprocess.PIPE
        )
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            assert line.decode().strip() == "applying"
        finally:
            proc.kill()  # SIGKILL: no clean-up runs, as when the kernel kills it
            await proc.wait()
        assert mailbox.mailbox_report(box.directory)["retrying"] == {"crash.835": attempt}
    assert await box.poll_once(payments.pool) == 1
    assert _reason(box.directory, "crash.835") == (
        "processing failed 2 times in a row (last: the process stopped while applying it);"
        " not tried again"
    )
    assert await _posted_traces(payments.pool, era) == 0
