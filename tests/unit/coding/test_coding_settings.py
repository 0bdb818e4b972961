"""Coding's settings live in services/coding/settings.py, escalation of provider queries included."""

from services.coding.app import CodingContext
from services.coding.settings import QuerySettings


def test_coding_query_escalation_settings_come_from_coding_settings(monkeypatch):
    monkeypatch.setenv("RCM_CODING_QUERY_ESCALATE_AFTER_HOURS", "1.5")
    monkeypatch.setenv("RCM_CODING_QUERY_CHECK_SECONDS", "5")
    assert QuerySettings().escalate_after_hours == 1.5
    context = CodingContext(work_watch=None)  # type: ignore[arg-type]
    assert (context.queries.escalate_after_hours, context.queries.check_seconds) == (1.5, 5.0)
    monkeypatch.delenv("RCM_CODING_QUERY_ESCALATE_AFTER_HOURS")
    assert QuerySettings().escalate_after_hours == 72.0
