"""Coding service settings."""

from decimal import Decimal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import ServiceSettings


class CodingRules(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RCM_CODING_", extra="ignore")

    # Every code's confidence must reach this for auto-finalisation.
    auto_threshold: Decimal = Decimal("0.80")


class CodingSettings(ServiceSettings):
    service_name: str = "coding"
    rules: CodingRules = Field(default_factory=CodingRules)
