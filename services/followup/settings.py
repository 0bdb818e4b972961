"""Followup service settings (env prefix ``RCM_FOLLOWUP_``)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import ServiceSettings


class FollowupRules(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RCM_FOLLOWUP_", extra="ignore")

    # No-response job: how often the loop runs (it also re-prioritises open work items).
    noresponse_interval_seconds: float = Field(default=3600, gt=0)
    # Payer policy JSON (timely filing, appeal, no-ack / no-payment days); unset = packaged policies.
    payer_policies_file: Path | None = None
    # 276 envelope: our submitter id (ISA06/GS02, ETIN) and the clearinghouse's receiver id.
    sender_id: str = "RCM"
    receiver_id: str = "CLEARINGHOUSE"
    # Patient statements: a statement goes out when the patient balance is above this.
    statement_threshold: Decimal = Decimal("5.00")
    statements_dir: Path | None = None  # unset = <run dir>/statements
    # Open balances come from followup's claim projection (it mirrors payments' ledger postings).
    # When set, a write-off is checked against payments' ledger (GET {payments_url}/claims/{id}/balance) instead.
    payments_url: str | None = None


class FollowupSettings(ServiceSettings):
    service_name: str = "followup"
    followup: FollowupRules = Field(default_factory=FollowupRules)

    @property
    def statements_path(self) -> Path:
        return self.followup.statements_dir or (self.run_path / "statements")

    def payer_policies(self):
        """The payer policies in force; raises ``ValueError`` naming the file when it is unreadable."""
        from services.followup.domain.deadlines import DEFAULT_POLICIES, PayerPolicies

        path = self.followup.payer_policies_file
        if path is None:
            return DEFAULT_POLICIES
        try:
            return PayerPolicies.from_json(path.read_text())
        except OSError as e:
            raise ValueError(f"{path}: cannot read payer policies ({e.strerror})") from e
