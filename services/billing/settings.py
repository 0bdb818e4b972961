"""Billing service settings."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import ServiceSettings


class ClaimSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RCM_BILLING_", extra="ignore")

    max_claims_per_file: int = 1000
    sender_id: str = "RCMSUBMITTER"
    receiver_id: str = "CLEARINGHOUSE"
    submitter_name: str = "RCM BILLING"
    usage: str = "P"  # ISA15: P production, T test
    payer_rules_file: Path | None = None  # JSON; None = bundled sample rules
    ncci_ptp_file: Path | None = None  # CMS NCCI PTP quarterly table (user-supplied: carries CPT)
    mue_file: Path | None = None  # CMS MUE quarterly table
    # Coordination of benefits: days to wait for the next payer's 835 after a crossover
    # (the prior payer forwarded the claim) before a biller work item opens.
    crossover_wait_days: int = Field(default=30, ge=1)
    crossover_check_seconds: float = Field(default=3600.0, gt=0)


class BillingSettings(ServiceSettings):
    service_name: str = "billing"
    claims: ClaimSettings = Field(default_factory=ClaimSettings)
