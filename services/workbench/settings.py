"""Workbench settings (env prefix ``RCM_WORKBENCH_``): sign-in, session cookies, the services it calls."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import ConfigurationError, ServiceSettings, is_secure_url

LOOPBACK = ("127.0.0.1", "localhost", "::1")


class WorkbenchConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RCM_WORKBENCH_", extra="ignore")

    # Where browsers reach the workbench (redirect and post-logout URIs are built from it).
    # None: from each request's own URL (fine on one machine; set it behind a proxy).
    public_url: str | None = None
    # "oidc": authorization code flow with PKCE against RCM_TOKEN_ISSUER; "dev": the local
    # sign-in page listing the demo users (never in production). None: oidc when an issuer
    # is configured and the services verify its keys, else dev.
    sign_in: Literal["oidc", "dev"] | None = None
    client_id: str = "rcm-workbench"
    client_secret: str | None = None  # the confidential client's secret at the identity provider
    scopes: str = "openid profile"
    # Secure cookies; off only for http://localhost development (refused otherwise).
    cookie_secure: bool = True
    session_idle_seconds: int = Field(default=30 * 60, ge=60)
    session_max_seconds: int = Field(default=10 * 3600, ge=300)
    # "postgres": sessions in the workbench schema (any number of instances); "memory": this
    # process only (a single instance; lost on restart).
    session_store: Literal["postgres", "memory"] = "postgres"
    # The services' HTTP APIs.
    intake_url: str | None = None
    coding_url: str | None = None
    billing_url: str | None = None
    payments_url: str | None = None
    followup_url: str | None = None
    upstream_timeout_seconds: float = Field(default=10.0, gt=0)
    # "Next item" long-polls coding for up to this long per request.
    next_wait_seconds: float = Field(default=20.0, ge=0, le=30)
    # A trace viewer for encounters (Jaeger, Tempo): "{encounter_id}" is replaced. None: the
    # workbench renders the local span file (`rcm trace`'s data) itself.
    trace_url: str | None = None


class WorkbenchSettings(ServiceSettings):
    service_name: str = "workbench"
    workbench: WorkbenchConfig = Field(default_factory=WorkbenchConfig)

    @model_validator(mode="after")
    def _refuse_unsafe_workbench(self):
        problem = self.workbench_problem()
        if problem:
            raise ConfigurationError(problem)
        return self

    @property
    def sign_in_mode(self) -> str:
        wb = self.workbench
        if wb.sign_in:
            return wb.sign_in
        oidc = self.auth.token_issuer and self.auth.key_source(self.runtime.env) == "oidc"
        return "oidc" if oidc else "dev"

    @property
    def oidc_issuer(self) -> str:
        return self.auth.issuer

    def workbench_problem(self) -> str | None:
        """The first unsafe workbench setting, as one line naming it; None when safe."""
        wb = self.workbench
        production = self.runtime.env == "production"
        if self.sign_in_mode == "dev":
            if production:
                return "RCM_WORKBENCH_SIGN_IN=dev (the demo users' sign-in page) is refused in production"
            if self.auth.key_source(self.runtime.env) != "local":
                return (
                    "RCM_WORKBENCH_SIGN_IN=dev signs development tokens, but RCM_TOKEN_KEYS says the "
                    "services verify the identity provider's keys: use RCM_WORKBENCH_SIGN_IN=oidc"
                )
        else:
            if not self.auth.token_issuer:
                return "RCM_WORKBENCH_SIGN_IN=oidc requires RCM_TOKEN_ISSUER (the OIDC issuer URL)"
            if not wb.client_secret:
                return "RCM_WORKBENCH_SIGN_IN=oidc requires RCM_WORKBENCH_CLIENT_SECRET"
        if wb.public_url is not None and not is_secure_url(wb.public_url):
            return "RCM_WORKBENCH_PUBLIC_URL must be https (or http to this machine)"
        if not wb.cookie_secure:
            host = urlsplit(wb.public_url or "http://127.0.0.1").hostname
            if production or host not in LOOPBACK:
                return (
                    "RCM_WORKBENCH_COOKIE_SECURE=false is only for http://localhost development "
                    "(RCM_WORKBENCH_PUBLIC_URL on 127.0.0.1 or localhost, not production)"
                )
        for name in ("intake_url", "coding_url", "billing_url", "payments_url", "followup_url"):
            url = getattr(wb, name)
            if production and url and not is_secure_url(url):
                return f"RCM_WORKBENCH_{name.upper()} must be https in production"
        return None
