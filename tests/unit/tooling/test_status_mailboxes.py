"""`rcm status` shows the files no mailbox poller will take by itself."""

from __future__ import annotations

from rcm.cli.status import render
from shared.mailbox import mailbox_report


def test_status_reports_temporary_and_hidden_files(tmp_path):
    (tmp_path / "era.835").write_text("ISA*")
    (tmp_path / "x.835.tmp").write_text("ISA*")
    (tmp_path / "..sneaky.835").write_text("ISA*")
    report = mailbox_report(tmp_path)
    text = render({"schemas": {}, "consumer_lag": {}, "mailboxes": {"inbound": report}})
    line = next(x for x in text.splitlines() if x.startswith("mailbox inbound"))
    assert "1 waiting" in line
    assert "1 temporary" in line and "1 hidden" in line


def test_status_shows_intakes_eligibility_waits_and_no_lag():
    snap = {
        "outbox_backlog": 3,
        "dead_letters": 1,
        "pending_files": 2,
        "failed_files": 0,
        "eligibility": {
            "checks_waiting": 4,
            "checks_retrying": 1,
            "encounters_held": 2,
            "work_items_open": 5,
        },
    }
    text = render({"schemas": {"intake": snap}, "consumer_lag": {"rcm-coding": 7}})
    line = next(x for x in text.splitlines() if x.startswith("intake"))
    assert line.split()[:6] == ["intake", "-", "3", "1", "2", "0"]
    assert line.endswith("eligibility 4 waiting, 1 retrying, 2 encounters held, 5 work open")
