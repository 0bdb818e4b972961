"""Settings, composed per service from small pydantic-settings classes.

This module is the only place that reads the environment. Local defaults are
development-only: with ``RCM_ENV=production`` the broker, database, token issuer
and audience must be configured explicitly (``_refuse_unsafe_defaults`` names the
first missing or unsafe setting in one line).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.home import default_home

DEV_TOKEN_SECRET = "rcm-development-secret-change-me"


class RuntimeSettings(BaseSettings):
    """Where things live and which environment this is."""

    model_config = SettingsConfigDict(env_prefix="RCM_", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    home: Path = Field(default_factory=default_home)  # jar cache etc.
    run_dir: Path | None = None  # local stack data, mailboxes, traces
    # Comma-separated service names whose processes write a pyinstrument profile (dev extra)
    # to <run dir>/profiles/ when they stop; empty: none (RCM_PROFILE_SERVICES).
    profile_services: str = ""
    # The business date (RCM_AS_OF, YYYY-MM-DD): the day filing limits, aging, statements and
    # plans take as today (shared.clock). Unset: today in UTC. A test environment replaying
    # historical encounters sets it to a day of its data; production refuses it.
    as_of: date | None = None

    @model_validator(mode="after")
    def _no_business_date_in_production(self) -> RuntimeSettings:
        if self.env == "production" and self.as_of is not None:
            raise ValueError("RCM_AS_OF: a fixed business date is refused in production")
        return self

    @property
    def run_path(self) -> Path:
        return self.run_dir or (self.home / "run")

    def profiles(self, service: str) -> bool:
        return service in self.profile_services.split(",")


class ConnectionSettings(BaseSettings):
    """External systems. Unset means: use the local stack recorded in the run dir."""

    model_config = SettingsConfigDict(extra="ignore")

    kafka_bootstrap_servers: str | None = None
    # The service's own login role (docs/security.md "Database roles"): rights on its schema's
    # tables only. Postgres TLS goes in the URL: ?sslmode=verify-full&sslrootcert=/ca.pem.
    database_url: str | None = None
    # The schema owner's URL: migrations (`rcm migrate`, a service's start) run as it, and it
    # grants the tables to DATABASE_URL's role. None: migrations run as DATABASE_URL's role.
    rcm_db_owner_url: str | None = None


KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_SSL", "SASL_PLAINTEXT"]


class KafkaSecuritySettings(BaseSettings):
    """How every Kafka client of a process connects (docs/security.md "Transport security")."""

    model_config = SettingsConfigDict(env_prefix="RCM_KAFKA_", extra="ignore")

    security_protocol: KafkaSecurityProtocol = "PLAINTEXT"
    ssl_ca_file: Path | None = None  # None: the system's trust store
    ssl_cert_file: Path | None = None  # client certificate (mTLS), with ssl_key_file
    ssl_key_file: Path | None = None
    sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None

    @model_validator(mode="after")
    def _complete(self):
        if (self.ssl_cert_file is None) != (self.ssl_key_file is None):
            raise ConfigurationError(
                "RCM_KAFKA_SSL_CERT_FILE and RCM_KAFKA_SSL_KEY_FILE go together (mTLS)"
            )
        if self.security_protocol.startswith("SASL") and not (
            self.sasl_username and self.sasl_password
        ):
            raise ConfigurationError(
                f"RCM_KAFKA_SECURITY_PROTOCOL={self.security_protocol} needs "
                "RCM_KAFKA_SASL_USERNAME and RCM_KAFKA_SASL_PASSWORD"
            )
        return self


class KafkaTopicSettings(BaseSettings):
    """Who creates the topics (env prefix ``RCM_KAFKA_``)."""

    model_config = SettingsConfigDict(env_prefix="RCM_KAFKA_", extra="ignore")

    # True: a service creates the missing topics and their DLQs at start (the local stack, a
    # first look). False: the topics are the platform's (Strimzi KafkaTopics in the Helm chart,
    # with their partitions, replication and retention); the service then needs no right to
    # create topics (ACLs: docs/security.md) and never makes one with the wrong settings.
    create_topics: bool = True


class TelemetrySettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    otel_exporter_otlp_endpoint: str | None = None
    otel_exporter_zipkin_endpoint: str | None = None  # the standard OTel variable
    rcm_metrics_port: int | None = None  # Prometheus endpoint; None = no endpoint
    # Loopback by default; a pod scraped by Prometheus sets 0.0.0.0 (the endpoint holds no PHI).
    rcm_metrics_host: str = "127.0.0.1"
    rcm_log_level: str = "INFO"


MAX_BATCH_RECORDS = 5000


class ConsumerSettings(BaseSettings):
    """Kafka consumer tuning; micro-batches bound both records and wait."""

    model_config = SettingsConfigDict(env_prefix="RCM_CONSUMER_", extra="ignore")

    # None: the service's own default (its ServiceSpec). A batch span links each record (telemetry).
    max_records: int | None = Field(default=None, ge=1, le=MAX_BATCH_RECORDS)
    batch_timeout_ms: int = 50
    # The broker answers a fetch once it has this many bytes or waited this long. Under
    # load a consumer thus takes what arrived in the last 50 ms in one batch (one
    # transaction) instead of a few events at a time; at 330 encounters/s on 2 cores this
    # cut p95 end to end from 1.5-2.9 s to 1.1-1.2 s. The wait is what a quiet topic adds
    # per hop.
    fetch_min_bytes: int = Field(default=256 * 1024, ge=1)
    fetch_max_wait_ms: int = Field(default=50, ge=0, le=10_000)
    partitions: int = 4
    # Days an applied event's id is kept (inbox) to drop a redelivery: longer than the topics'
    # log retention (7 days locally), after which Kafka cannot deliver the event again.
    inbox_retention_days: int = Field(default=8, ge=1)


DEV_ISSUER = "urn:rcm:development"
DEV_AUDIENCE = "rcm"
ASYMMETRIC_ALGORITHMS = ("RS256", "ES256", "EdDSA")
MIN_SECRET_LENGTH = 32


class AuthSettings(BaseSettings):
    """Bearer JWTs: who signs them, what they must say, how long they may live (docs/security.md).

    In production the keys come from the OIDC issuer's JWKS (``RCM_TOKEN_ISSUER``); in
    development a local key pair under ``RCM_HOME/keys`` signs and verifies (``rcm token``).
    """

    model_config = SettingsConfigDict(env_prefix="RCM_", extra="ignore")

    # Development only: names the local signing key (one key pair per secret). Production
    # verifies the issuer's keys and refuses an empty, short or default secret when one is set.
    token_secret: str = DEV_TOKEN_SECRET
    lease_seconds: int = 900
    token_issuer: str | None = None  # the OIDC issuer URL; None = the development issuer
    token_audience: str | None = None  # the API's audience (client id); None = "rcm" in development
    # "oidc": the issuer's JWKS; "local": the development key. None: oidc in production, else local.
    token_keys: Literal["oidc", "local"] | None = None
    token_algorithms: list[Literal["RS256", "ES256", "EdDSA"]] = Field(
        default_factory=lambda: list(ASYMMETRIC_ALGORITHMS), min_length=1
    )
    # Lifetime cap from iat, whatever exp says: a token older than this is refused.
    token_max_lifetime_seconds: int = Field(default=12 * 3600, ge=60, le=7 * 24 * 3600)
    token_leeway_seconds: int = Field(default=30, ge=0, le=300)  # clock skew
    # Where the claims are: dotted paths (Keycloak: realm_access.roles; Entra ID: roles).
    token_role_claim: str = "roles"
    token_site_claim: str = "sites"
    token_jti_claim: str = "jti"  # Entra ID: uti
    # One revoked jti per line (# comments); re-read when it changes. None = no revocations.
    token_revocation_file: Path | None = None
    # Seconds between JWKS refreshes prompted by an unknown kid (a flood of made-up kids
    # must not become a flood of requests to the identity provider).
    token_jwks_min_refresh_seconds: float = Field(default=30, ge=0)

    @property
    def issuer(self) -> str:
        return self.token_issuer or DEV_ISSUER

    @property
    def audience(self) -> str:
        return self.token_audience or DEV_AUDIENCE

    def key_source(self, env: str) -> str:
        return self.token_keys or ("oidc" if env == "production" else "local")

    def production_problem(self) -> str | None:
        """The first unsafe token setting for production, as one line naming it; None when safe."""
        if not self.token_issuer or self.token_issuer == DEV_ISSUER:
            return "production requires RCM_TOKEN_ISSUER (the OIDC issuer URL)"
        if not is_secure_url(self.token_issuer):
            return "RCM_TOKEN_ISSUER must be an https URL in production"
        if not self.token_audience:
            return "production requires RCM_TOKEN_AUDIENCE (the audience tokens are issued for)"
        if self.key_source("production") != "oidc":
            return "RCM_TOKEN_KEYS=local (development keys) is refused in production"
        if "token_secret" in self.model_fields_set and (
            len(self.token_secret) < MIN_SECRET_LENGTH or self.token_secret == DEV_TOKEN_SECRET
        ):
            return (
                f"RCM_TOKEN_SECRET is empty, shorter than {MIN_SECRET_LENGTH} characters or the "
                "development default (production verifies the issuer's keys: unset it)"
            )
        return None


def is_secure_url(url: str) -> bool:
    """https, or http to this machine (a test or sidecar identity provider)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme == "https":
        return bool(parts.hostname)
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")


class ServiceIdentitySettings(BaseSettings):
    """How this service proves who it is to another rcm service (env prefix ``RCM_SERVICE_``).

    In production one of: ``client_id`` + ``client_secret`` (the OAuth 2.0 client credentials
    grant at the issuer's token endpoint), or ``token_file`` (a token the operator's agent keeps
    fresh). In development, without either, the local key signs a ``service:<name>`` token.
    """

    model_config = SettingsConfigDict(env_prefix="RCM_SERVICE_", extra="ignore")

    token_file: Path | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    token_url: str | None = None  # None: the issuer's token_endpoint (OIDC discovery)
    scope: str | None = None


class MailboxSettings(BaseSettings):
    """Clearinghouse mailboxes: plain directories, so an SFTP-synced one can be used."""

    model_config = SettingsConfigDict(env_prefix="RCM_MAILBOX_", extra="ignore")

    outbound: Path | None = None
    inbound: Path | None = None
    poll_seconds: float = 0.1  # a directory scan: cheap, and each mailbox hop waits up to this long
    # Inbound files above this go to failed/ after only their header was read (a valid 200 MB
    # 835 once took payments to 4.5 GB and was retried forever).
    max_file_bytes: int = Field(default=64 * 1024 * 1024, ge=4096)
    # A file whose processing failed this many times in a row (timed out, or the process died
    # on it) goes to failed/, and the mailbox moves on.
    max_attempts: int = Field(default=3, ge=1, le=100)
    # An attempt not settled after this long means the process applying it died (until then
    # the file is another instance's, not a failure): such a file is tried again after it.
    # An attempt whose process is known gone (same host, pid free or reused) is retried at once.
    in_flight_seconds: float = Field(default=300, gt=0)
    # Trading partners: the ISA06 sender ids each kind of file may come from, by kind (835,
    # 999, 277CA, 277, 837) or "*" for every kind, as JSON: {"*": ["CLEARINGHOUSE"]}. A file
    # from another sender goes to failed/. Empty: any sender (a warning at start; development).
    senders: dict[str, list[str]] = Field(default_factory=dict)
    # `rcm status` reports a file that has waited in a mailbox longer than this as stuck.
    stuck_seconds: float = Field(default=300, gt=0)

    def allowed_senders(self, kind: str) -> frozenset[str] | None:
        """The ISA06 ids a ``kind`` file may come from; None when any sender is accepted."""
        if not self.senders:
            return None
        return frozenset(s.strip() for s in self.senders.get(kind, []) + self.senders.get("*", []))


class HttpSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RCM_HTTP_", extra="ignore")

    port: int | None = None  # None = no HTTP API in this process
    host: str = "127.0.0.1"
    # Request bodies above this are refused with 413 before they are read.
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    # `rcm serve`'s processes sharing the port (SO_REUSEPORT, Linux); --workers overrides it.
    workers: int = Field(default=1, ge=1, le=64)
    # HTTPS: the server's certificate (chain, PEM) and private key. None: plain HTTP.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None

    @model_validator(mode="after")
    def _tls_pair(self):
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ConfigurationError("RCM_HTTP_TLS_CERT_FILE and RCM_HTTP_TLS_KEY_FILE go together")
        for name, path in (
            ("RCM_HTTP_TLS_CERT_FILE", self.tls_cert_file),
            ("RCM_HTTP_TLS_KEY_FILE", self.tls_key_file),
        ):
            if path is not None and not path.is_file():
                raise ConfigurationError(f"{name}: no such file")
        return self


class ServiceSettings(BaseSettings):
    """What every service process needs; services subclass it to add their own."""

    model_config = SettingsConfigDict(extra="ignore")

    service_name: str = "rcm"
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)
    connections: ConnectionSettings = Field(default_factory=ConnectionSettings)
    kafka: KafkaSecuritySettings = Field(default_factory=KafkaSecuritySettings)
    kafka_topics: KafkaTopicSettings = Field(default_factory=KafkaTopicSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    consumer: ConsumerSettings = Field(default_factory=ConsumerSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    mailbox: MailboxSettings = Field(default_factory=MailboxSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self):
        if self.runtime.env == "production":
            missing = [
                name
                for name, value in (
                    ("KAFKA_BOOTSTRAP_SERVERS", self.connections.kafka_bootstrap_servers),
                    ("DATABASE_URL", self.connections.database_url),
                )
                if not value
            ]
            if missing:
                raise ConfigurationError(f"production requires {', '.join(missing)}")
            problem = self.auth.production_problem()
            if problem:
                raise ConfigurationError(problem)
            if not self.kafka.security_protocol.endswith("SSL"):
                # Events carry PHI (names, member ids, notes): never unencrypted on a network.
                raise ConfigurationError(
                    f"RCM_KAFKA_SECURITY_PROTOCOL={self.kafka.security_protocol} is refused in "
                    "production: Kafka carries PHI, use SSL or SASL_SSL"
                )
        return self

    # -- resolved endpoints -------------------------------------------------

    @property
    def run_path(self) -> Path:
        return self.runtime.run_path

    def stack_file(self) -> Path:
        return self.run_path / "stack.json"

    def _stack(self) -> dict:
        try:
            return json.loads(self.stack_file().read_text())
        except (OSError, ValueError):
            return {}

    @property
    def zipkin_endpoint(self) -> str | None:
        """Where spans go besides the JSONL file: the configured Zipkin endpoint, else the
        local stack's trace viewer when `rcm stack up --traces` started one."""
        if self.telemetry.otel_exporter_zipkin_endpoint:
            return self.telemetry.otel_exporter_zipkin_endpoint
        z = self._stack().get("zipkin")
        return f"{z.rstrip('/')}/api/v2/spans" if z else None

    @property
    def kafka_servers(self) -> str:
        servers = self.connections.kafka_bootstrap_servers or self._stack().get("kafka")
        if not servers:
            raise ConfigurationError(
                "Kafka: KAFKA_BOOTSTRAP_SERVERS is not set and no local stack is running "
                f"(no {self.stack_file()}); run `rcm stack up`"
            )
        return servers

    @property
    def dsn(self) -> str:
        dsn = self.connections.database_url or self._stack().get("postgres")
        if not dsn:
            raise ConfigurationError(
                "Postgres: DATABASE_URL is not set and no local stack is running "
                f"(no {self.stack_file()}); run `rcm stack up`"
            )
        return dsn

    @property
    def owner_dsn(self) -> str:
        """Where migrations run: RCM_DB_OWNER_URL, else the service's own DSN."""
        return self.connections.rcm_db_owner_url or self.dsn

    @property
    def outbound_dir(self) -> Path:
        return self.mailbox.outbound or (self.run_path / "mailbox" / "outbound")

    @property
    def inbound_dir(self) -> Path:
        return self.mailbox.inbound or (self.run_path / "mailbox" / "inbound")

    @property
    def traces_file(self) -> Path:
        return self.run_path / "traces" / "spans.jsonl"


class ConfigurationError(RuntimeError):
    """A missing or unreachable dependency; reported as one line, no traceback."""
