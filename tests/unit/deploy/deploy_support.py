"""What the deployment tests share: the artefacts' paths, the deployable services, the settings'
environment names, and the Helm chart rendered by the Helm CLI that `make deploy-check` builds."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml
from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "rcm"
sys.path.insert(0, str(DEPLOY))
import check  # noqa: E402  (deploy/check.py: the CI driver these tests share code with)

# Environment the artefacts set that no settings class reads yet: each one is a change asked of
# shared/ (or of a service being written), listed in docs/deploy.md; delete a name here once a
# settings class reads it. Any other name the artefacts set must be read by a settings class, so a
# misspelt variable fails a test instead of being silently ignored by a service.
PROPOSED: set[str] = set()
# Read by libraries, not by rcm's settings: httpx's trust store; the chart's intermediate variable
# that DATABASE_URL and RCM_DB_OWNER_URL are composed from (Kubernetes $(VAR) expansion).
LIBRARY_ENV = {"SSL_CERT_FILE", "RCM_DATABASE_URI", "RCM_DB_OWNER_URI"}


def deployable_services() -> list[str]:
    """services/<name>/ packages: each is `rcm serve NAME`."""
    return sorted(p.name for p in (ROOT / "services").iterdir() if (p / "__init__.py").is_file())


def _env_names(cls: type[BaseSettings]) -> set[str]:
    prefix = cls.model_config.get("env_prefix", "")
    names = set()
    for name, field in cls.model_fields.items():
        sub = field.default_factory
        if isinstance(sub, type) and issubclass(sub, BaseSettings):
            names |= _env_names(sub)
        else:
            names.add(f"{prefix}{name}".upper())
    return names


def settings_env_names() -> set[str]:
    """Every environment variable a service's settings read (shared/settings.py and services/*)."""
    import importlib

    names: set[str] = set()
    for service in deployable_services():
        module = importlib.import_module(f"services.{service}.settings")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, BaseSettings):
                names |= _env_names(value)
    from shared.settings import ServiceIdentitySettings  # RCM_SERVICE_*: read where a call is made

    return names | _env_names(ServiceIdentitySettings)


def helm_binary() -> str:
    """The Helm CLI `make deploy-check` built; the test is skipped, saying how, when there is none."""
    explicit = os.environ.get("RCM_HELM")
    if explicit:
        return explicit
    home = Path(os.environ.get("RCM_HOME") or Path.home() / ".cache" / "rcm")
    built = sorted((home / "bin").glob("helm-v*"))
    if not built:
        pytest.skip(f"no Helm CLI in {home / 'bin'}: `make deploy-check` builds it")
    return str(built[-1])


def render(*args: str) -> list[dict]:
    """The chart's manifests rendered with ``args`` (helm arguments), as dicts."""
    return [d for d in yaml.safe_load_all(check.render(helm_binary(), list(args))) if d]


def by_kind(manifests: list[dict], kind: str) -> dict[str, dict]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}
