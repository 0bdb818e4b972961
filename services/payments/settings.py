"""Payments service settings (env prefix ``RCM_PAYMENTS_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import ServiceSettings


class PaymentsRules(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RCM_PAYMENTS_", extra="ignore")

    # Where 835s arrive; unset = the shared clearinghouse inbound mailbox (RCM_MAILBOX_INBOUND).
    era_inbound_dir: Path | None = None
    # Largest page GET /balances and the remittance queues return.
    page_limit: int = Field(default=5000, gt=0)


class PaymentsSettings(ServiceSettings):
    service_name: str = "payments"
    payments: PaymentsRules = Field(default_factory=PaymentsRules)

    @property
    def era_inbound(self) -> Path:
        return self.payments.era_inbound_dir or self.inbound_dir
