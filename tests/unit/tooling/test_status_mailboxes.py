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
