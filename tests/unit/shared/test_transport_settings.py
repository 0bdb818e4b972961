"""Transport settings (issue 18, item 8): production refuses Kafka without TLS, in one line naming
the setting; RCM_KAFKA_CREATE_TOPICS is read (true locally, false where the platform owns topics)."""

from __future__ import annotations

import pytest

from rcm.cli.main import main
from shared.settings import ConfigurationError, ServiceSettings

PRODUCTION = {
    "RCM_ENV": "production",
    "KAFKA_BOOTSTRAP_SERVERS": "kafka.internal:9093",
    "DATABASE_URL": "postgresql://svc@db.internal/rcm?sslmode=verify-full",
    "RCM_TOKEN_ISSUER": "https://login.example.org/realms/rcm",
    "RCM_TOKEN_AUDIENCE": "rcm-api",
    "RCM_KAFKA_SASL_USERNAME": "rcm-billing",
    "RCM_KAFKA_SASL_PASSWORD": "scram-password",
}


@pytest.fixture
def env(monkeypatch, tmp_path):
    monkeypatch.setenv("RCM_HOME", str(tmp_path))
    for name in ("RCM_KAFKA_SECURITY_PROTOCOL", "RCM_KAFKA_CREATE_TOPICS"):
        monkeypatch.delenv(name, raising=False)

    def apply(**values):
        for k, v in values.items():
            monkeypatch.setenv(k, v)

    return apply


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SASL_PLAINTEXT", None])
def test_production_refuses_kafka_without_tls_naming_the_setting(env, protocol):
    env(**PRODUCTION, **({"RCM_KAFKA_SECURITY_PROTOCOL": protocol} if protocol else {}))
    with pytest.raises(ConfigurationError) as e:
        ServiceSettings()
    message = str(e.value)
    assert "RCM_KAFKA_SECURITY_PROTOCOL" in message and "\n" not in message
    assert "scram-password" not in message


@pytest.mark.parametrize("protocol", ["SSL", "SASL_SSL"])
def test_production_takes_kafka_over_tls(env, protocol):
    env(**PRODUCTION, RCM_KAFKA_SECURITY_PROTOCOL=protocol)
    assert ServiceSettings().kafka.security_protocol == protocol


def test_development_keeps_plaintext_for_the_local_stack(env):
    env(RCM_ENV="development")
    assert ServiceSettings().kafka.security_protocol == "PLAINTEXT"


def test_a_service_in_production_on_plaintext_stops_at_once_with_one_line(env, capsys):
    env(**PRODUCTION)
    assert main(["serve", "billing"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rcm: RCM_KAFKA_SECURITY_PROTOCOL=PLAINTEXT is refused in production")
    assert "\n" not in err and "Traceback" not in err


def test_create_topics_is_on_locally_and_off_when_set(env):
    assert ServiceSettings().kafka_topics.create_topics is True
    env(RCM_KAFKA_CREATE_TOPICS="false")
    assert ServiceSettings().kafka_topics.create_topics is False
