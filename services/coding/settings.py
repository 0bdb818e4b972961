"""Coding service settings."""

from decimal import Decimal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import ServiceSettings


class CodingRules(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RCM_CODING_", extra="ignore")

    # Every code's confidence must reach this for auto-finalisation.
    auto_threshold: Decimal = Decimal("0.80")


class QuerySettings(BaseSettings):
    """Provider queries (env prefix ``RCM_CODING_QUERY_``)."""

    model_config = SettingsConfigDict(env_prefix="RCM_CODING_QUERY_", extra="ignore")

    # A sent query unanswered this long is escalated (AHIMA leaves the time to policy;
    # facilities commonly use two to three business days).
    escalate_after_hours: float = 72.0
    # How often the loop looks for queries to escalate.
    check_seconds: float = 60.0


class CodingSettings(ServiceSettings):
    service_name: str = "coding"
    rules: CodingRules = Field(default_factory=CodingRules)
