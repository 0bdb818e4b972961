"""Intake service settings."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import ConfigurationError, ServiceSettings

if TYPE_CHECKING:  # the HL7 v2 package loads when its rules are read: `rcm code` never does
    from services.intake.domain.hl7v2 import Hl7Rules

CONCEPT_MAP_SUFFIXES = (".json", ".csv")


class IntakeCodes(BaseSettings):
    """Files that translate an EHR's own codes (read at start-up)."""

    model_config = SettingsConfigDict(env_prefix="RCM_INTAKE_", extra="ignore")

    # A concept-map file (FHIR ConceptMap JSON or CSV), or a directory of them (one per EHR or site).
    concept_maps: Path | None = None
    snomed_map: Path | None = None  # NLM's SNOMED CT to ICD-10-CM map (tab-separated release file)

    def concept_map_files(self) -> list[Path]:
        p = self.concept_maps
        if p is None:
            return []
        if p.is_dir():
            return sorted(f for f in p.iterdir() if f.suffix.lower() in CONCEPT_MAP_SUFFIXES)
        return [p]


class Hl7Settings(BaseSettings):
    """How HL7 v2 messages become visits (docs/hl7v2-intake.md), and who may send them."""

    model_config = SettingsConfigDict(env_prefix="RCM_INTAKE_HL7_", extra="ignore")

    visit_keys: str = "PV1-19,PID-18,PID-3+PV1-44"
    readiness: str = "clinic"  # the default rule: hospital, clinic or conditions joined by +
    site_readiness: str = ""  # SITE=RULE;...
    facilities: str = ""  # FACILITY=SITE;... (MSH-4, PV1-3.4, PV1-39)
    default_site: str | None = None
    # Allowed senders: FACILITY=SITE[,SITE...];... (MSH-4's first component). Unset: any
    # sender for any site (refused in production when the MLLP listener runs).
    senders: str = ""

    @cached_property
    def rules(self) -> Hl7Rules:
        """The rules these settings describe; ConfigurationError names a bad setting."""
        from services.intake.domain.hl7v2 import (
            Hl7Rules,
            RulesError,
            parse_readiness,
            parse_site_map,
            parse_visit_keys,
        )

        try:
            return Hl7Rules(
                visit_keys=parse_visit_keys(self.visit_keys),
                readiness=parse_readiness(self.readiness),
                site_readiness={
                    site: parse_readiness(rule)
                    for site, rule in parse_site_map(self.site_readiness, "readiness").items()
                },
                facilities=parse_site_map(self.facilities, "facilities"),
                default_site=self.default_site or None,
            )
        except RulesError as e:
            raise ConfigurationError(f"RCM_INTAKE_HL7_*: {e}") from e

    @cached_property
    def allowed_senders(self) -> dict[str, frozenset[str]] | None:
        """Sending facility -> the sites it may send for; None when any sender may send."""
        if not self.senders.strip():
            return None
        from services.intake.domain.hl7v2 import RulesError, parse_site_map

        try:
            pairs = parse_site_map(self.senders, "senders")
        except RulesError as e:
            raise ConfigurationError(f"RCM_INTAKE_HL7_SENDERS: {e}") from e
        out = {}
        for facility, sites in pairs.items():
            names = frozenset(s.strip() for s in sites.split(",") if s.strip())
            if not names:
                raise ConfigurationError("RCM_INTAKE_HL7_SENDERS: a sender without sites")
            out[facility] = names
        return out


class MllpSettings(BaseSettings):
    """The HL7 v2 listener (MLLP over TCP, optionally TLS)."""

    model_config = SettingsConfigDict(env_prefix="RCM_INTAKE_MLLP_", extra="ignore")

    port: int | None = Field(default=None, ge=0, le=65535)  # None: no listener
    host: str = "127.0.0.1"
    max_frame_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    idle_timeout_seconds: float = Field(default=300.0, gt=0)
    max_connections: int = Field(default=256, ge=1)
    tls_cert: Path | None = None  # PEM certificate chain; with tls_key: the listener is TLS only
    tls_key: Path | None = None
    tls_client_ca: Path | None = None  # PEM CAs: clients must present a certificate they signed
    # Test hook: seconds between the commit and the ACK (a crash in between is tested with it).
    ack_delay_seconds: float = Field(default=0.0, ge=0, le=60)

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None


class EligibilitySettings(BaseSettings):
    """Eligibility checks (X12 270/271) through the clearinghouse mailbox (docs/eligibility.md)."""

    model_config = SettingsConfigDict(env_prefix="RCM_INTAKE_ELIGIBILITY_", extra="ignore")

    # off: no 270 is sent and nothing is attached; intake: a 270 per coverage of each new
    # encounter without a fresh result, its encounter.documented held until the 271s answer
    # (at most wait_seconds); on_demand: only POST /eligibility/checks sends 270s, and a
    # fresh result is attached to the encounters that come after it.
    mode: Literal["off", "intake", "on_demand"] = "on_demand"
    fresh_hours: float = Field(default=24.0, gt=0)  # a result is reused this long
    wait_seconds: float = Field(default=30.0, ge=0, le=3600)  # then it goes out "unverified"
    service_types: str = "30"  # EQ01 codes, comma-separated (30: health benefit plan coverage)
    # AAA 42 (payer unable to respond) and no 271 at all: asked again after retry_seconds,
    # doubling each time up to retry_max_seconds, max_attempts 270s in all.
    retry_seconds: float = Field(default=60.0, gt=0)
    retry_max_seconds: float = Field(default=3600.0, gt=0)
    max_attempts: int = Field(default=5, ge=1, le=20)
    response_timeout_seconds: float = Field(default=600.0, gt=0)  # no 271: counted as AAA 80
    # ISA06 of the 270s. Not billing's 837 sender id: the clearinghouse refuses an interchange
    # number (ISA13) a sender used before, and intake numbers its interchanges on its own.
    sender_id: str = "RCMELIGIBILITY"
    receiver_id: str = "CLEARINGHOUSE"  # ISA08
    usage: Literal["P", "T"] = "P"
    poll_seconds: float = Field(default=1.0, gt=0)  # retries and held encounters are looked at
    # Scheduled visits (POST /appointments): a 270 per coverage once the date of service is
    # this many days away or fewer (0: no batch), and at check-in when no answer is fresh.
    batch_days: int = Field(default=0, ge=0, le=60)
    check_in: bool = True

    @property
    def service_type_codes(self) -> tuple[str, ...]:
        codes = tuple(c.strip() for c in self.service_types.split(",") if c.strip())
        if not codes or any(not (1 <= len(c) <= 2 and c.isalnum()) for c in codes):
            raise ConfigurationError(
                "RCM_INTAKE_ELIGIBILITY_SERVICE_TYPES: comma-separated 1-2 character EQ codes"
            )
        return codes


class IntakeSettings(ServiceSettings):
    service_name: str = "intake"
    codes: IntakeCodes = Field(default_factory=IntakeCodes)
    hl7: Hl7Settings = Field(default_factory=Hl7Settings)
    mllp: MllpSettings = Field(default_factory=MllpSettings)
    eligibility: EligibilitySettings = Field(default_factory=EligibilitySettings)

    @model_validator(mode="after")
    def _check_hl7(self):
        self.check_hl7()
        self.eligibility.service_type_codes  # noqa: B018 - a bad code list stops the start
        return self

    def check_hl7(self) -> None:
        """Refuse unusable or unsafe HL7 v2 settings, naming the first (ConfigurationError);
        run again at start-up, after `rcm serve intake --mllp-port` set the port."""
        self.hl7.rules  # noqa: B018 - a bad rule stops the start, naming the setting
        self.hl7.allowed_senders  # noqa: B018
        m = self.mllp
        if (m.tls_cert is None) != (m.tls_key is None):
            raise ConfigurationError("RCM_INTAKE_MLLP_TLS_CERT and _TLS_KEY go together")
        if m.tls_client_ca is not None and not m.tls:
            raise ConfigurationError("RCM_INTAKE_MLLP_TLS_CLIENT_CA needs _TLS_CERT and _TLS_KEY")
        if self.runtime.env == "production":
            if m.ack_delay_seconds:
                raise ConfigurationError("RCM_INTAKE_MLLP_ACK_DELAY_SECONDS is a test hook")
            if m.port is not None and self.hl7.allowed_senders is None:
                raise ConfigurationError(
                    "production requires RCM_INTAKE_HL7_SENDERS (the facilities that may send"
                    " HL7 v2, and for which sites) when the MLLP listener runs"
                )
