"""The business date (shared.clock): real UTC today unless RCM_AS_OF fixes it outside
production; every business-date caller of the services reads it there."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared import clock
from shared.settings import RuntimeSettings

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def fresh_clock():
    clock._fixed.cache_clear()
    yield
    clock._fixed.cache_clear()


def test_unset_is_today_in_utc(monkeypatch):
    monkeypatch.delenv("RCM_AS_OF", raising=False)
    assert clock.today() == datetime.now(UTC).date()


def test_a_test_environment_replays_its_data_as_of_a_fixed_day(monkeypatch):
    monkeypatch.setenv("RCM_ENV", "test")
    monkeypatch.setenv("RCM_AS_OF", "2019-10-15")
    assert clock.today() == date(2019, 10, 15)


def test_production_refuses_a_fixed_business_date(monkeypatch):
    monkeypatch.setenv("RCM_ENV", "production")
    monkeypatch.setenv("RCM_AS_OF", "2019-10-15")
    with pytest.raises(ValidationError, match="RCM_AS_OF"):
        RuntimeSettings()


def test_no_service_takes_the_business_date_from_the_wall_clock():
    """Billing rules (filing limits, aging, plans, statements) all take the one rule's date."""
    offenders = [
        f"{p.relative_to(ROOT)}:{n}"
        for service in ("intake", "billing", "payments", "followup")
        for p in (ROOT / "services" / service).rglob("*.py")
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if re.search(r"datetime\.now\([^)]*\)\.date\(\)|date\.today\(\)", line)
    ]
    assert offenders == []
