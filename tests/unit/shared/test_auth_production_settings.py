"""A service in production refuses to start on development keys or missing token settings, in one
line naming the setting."""

from __future__ import annotations

import pytest

from rcm.cli.main import main
from shared.settings import ConfigurationError, ServiceSettings

GOOD = {
    "RCM_ENV": "production",
    "KAFKA_BOOTSTRAP_SERVERS": "kafka.internal:9093",
    "RCM_KAFKA_SECURITY_PROTOCOL": "SSL",  # production refuses PHI over PLAINTEXT
    "DATABASE_URL": "postgresql://svc@db.internal/rcm",
    "RCM_TOKEN_ISSUER": "https://login.example.org/realms/rcm",
    "RCM_TOKEN_AUDIENCE": "rcm-api",
}


@pytest.fixture
def env(monkeypatch, tmp_path):
    monkeypatch.setenv("RCM_HOME", str(tmp_path))

    def apply(**over):
        for k, v in {**GOOD, **over}.items():
            if v is None:
                monkeypatch.delenv(k, raising=False)
            else:
                monkeypatch.setenv(k, v)

    return apply


def test_a_complete_production_configuration_starts(env):
    env()
    s = ServiceSettings()
    assert s.auth.issuer == GOOD["RCM_TOKEN_ISSUER"] and s.auth.key_source("production") == "oidc"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"RCM_TOKEN_ISSUER": None}, "RCM_TOKEN_ISSUER"),
        ({"RCM_TOKEN_ISSUER": "urn:rcm:development"}, "RCM_TOKEN_ISSUER"),
        ({"RCM_TOKEN_ISSUER": "http://login.example.org/realms/rcm"}, "RCM_TOKEN_ISSUER"),
        ({"RCM_TOKEN_AUDIENCE": None}, "RCM_TOKEN_AUDIENCE"),
        ({"RCM_TOKEN_KEYS": "local"}, "RCM_TOKEN_KEYS"),
        ({"RCM_TOKEN_SECRET": ""}, "RCM_TOKEN_SECRET"),
        ({"RCM_TOKEN_SECRET": "short-secret"}, "RCM_TOKEN_SECRET"),
        ({"RCM_TOKEN_SECRET": "rcm-development-secret-change-me"}, "RCM_TOKEN_SECRET"),
        ({"DATABASE_URL": None}, "DATABASE_URL"),
    ],
)
def test_each_unsafe_setting_is_refused_in_one_line_naming_it(env, change, named):
    env(**change)
    with pytest.raises(ConfigurationError) as e:
        ServiceSettings()
    message = str(e.value)
    assert named in message and "\n" not in message
    assert "short-secret" not in message  # never the secret itself


def test_rcm_serve_says_it_in_one_line_and_exits(env, capsys):
    env(RCM_TOKEN_SECRET="")
    assert main(["serve", "payer_sim"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "RCM_TOKEN_SECRET" in err[0]


def test_development_needs_none_of_it(env, monkeypatch):
    for k in GOOD:
        monkeypatch.delenv(k, raising=False)
    s = ServiceSettings()
    assert (s.auth.issuer, s.auth.audience, s.auth.key_source(s.runtime.env)) == (
        "urn:rcm:development",
        "rcm",
        "local",
    )
