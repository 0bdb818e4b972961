"""Who sees which screen, where sign-in may send a browser, and the settings production refuses."""

from __future__ import annotations

import pytest

from services.workbench.domain import access, actions
from services.workbench.settings import WorkbenchConfig, WorkbenchSettings
from shared.settings import (
    AuthSettings,
    ConfigurationError,
    ConnectionSettings,
    KafkaSecuritySettings,
    RuntimeSettings,
)


def test_navigation_and_home_per_role():
    assert [a.key for a in access.navigation(["coder"])] == ["coding"]
    assert [a.key for a in access.navigation(["biller"])] == ["billing"]
    assert [a.key for a in access.navigation(["supervisor"])] == ["coding", "billing", "dashboard"]
    assert [a.key for a in access.navigation(["ops"])] == ["dashboard"]
    assert access.home_path(["auditor"]) == "/no-screens"
    assert access.home_path(["supervisor"]) == "/dashboard"
    assert access.home_path(["biller"]) == "/billing"
    assert not access.allowed("billing", ["coder"]) and access.allowed("coding", ["supervisor"])


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("/coder/items/12", "/coder/items/12"),
        ("https://evil.example/x", "/"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("/ok\r\nSet-Cookie: x", "/"),
        (None, "/"),
    ],
)
def test_safe_next_stays_on_this_site(given, expected):
    assert access.safe_next(given) == expected


def _settings(env="development", **wb) -> WorkbenchSettings:
    conn = ConnectionSettings(kafka_bootstrap_servers="k:9092", database_url="postgresql://db/rcm")
    auth = wb.pop("auth", AuthSettings())
    return WorkbenchSettings(
        runtime=RuntimeSettings(env=env),
        connections=conn,
        kafka=KafkaSecuritySettings(security_protocol="SSL"),  # production refuses PLAINTEXT
        auth=auth,
        workbench=WorkbenchConfig(**wb),
    )


def test_development_defaults_to_the_dev_sign_in():
    s = _settings(cookie_secure=False, followup_url="http://127.0.0.1:1")
    assert s.sign_in_mode == "dev"


def test_oidc_when_the_services_verify_an_issuer():
    auth = AuthSettings(
        token_issuer="https://idp.example/realms/rcm", token_audience="rcm", token_keys="oidc"
    )
    s = _settings(auth=auth, client_secret="s3cret-of-the-client")
    assert s.sign_in_mode == "oidc" and s.oidc_issuer == "https://idp.example/realms/rcm"


@pytest.mark.parametrize(
    ("env", "fields", "named"),
    [
        (
            "production",
            {
                "sign_in": "dev",
                "auth": AuthSettings(token_issuer="https://idp.example/r", token_audience="rcm"),
            },
            "RCM_WORKBENCH_SIGN_IN=dev",
        ),
        ("development", {"sign_in": "oidc"}, "RCM_TOKEN_ISSUER"),
        (
            "development",
            {"cookie_secure": False, "public_url": "http://wb.example"},
            "RCM_WORKBENCH_PUBLIC_URL",
        ),
        (
            "development",
            {"cookie_secure": False, "public_url": "https://wb.example"},
            "RCM_WORKBENCH_COOKIE_SECURE",
        ),
    ],
)
def test_unsafe_settings_are_refused_in_one_line(env, fields, named):
    with pytest.raises(ConfigurationError, match=named):
        _settings(env, **fields)


def test_production_oidc_needs_the_client_secret_and_https_services():
    auth = AuthSettings(token_issuer="https://idp.example/realms/rcm", token_audience="rcm")
    with pytest.raises(ConfigurationError, match="CLIENT_SECRET"):
        _settings("production", auth=auth)
    with pytest.raises(ConfigurationError, match="CODING_URL must be https"):
        _settings("production", auth=auth, client_secret="x" * 32, coding_url="http://coding:8601")
    ok = _settings(
        "production", auth=auth, client_secret="x" * 32, coding_url="https://coding.internal"
    )
    assert ok.sign_in_mode == "oidc" and ok.workbench.followup_url is None


def test_action_form_needs_a_reason_and_well_formed_amounts():
    a = actions.read({"action": "write_off", "reason": "small balance", "amount": "$12.5"}, "tok")
    assert a.problems == [] and a.request == {
        "action": "write_off",
        "reason": "small balance",
        "lease_token": "tok",
        "amount": "12.50",
    }
    a = actions.read(
        {"action": "appeal", "letter": "Please reconsider: the visit was medically necessary."},
        None,
    )
    assert a.request["reason"].startswith("Please reconsider") and "lease_token" not in a.request
    a = actions.read({"action": "correct", "reason": "wrong dx", "diagnoses": "s93.401a, R52"}, "t")
    assert a.request["diagnoses"] == ["S93401A", "R52"]
    assert actions.read({"action": "resolve", "reason": "x"}, "t").problems == [
        "reason: say why (at least 3 characters)"
    ]
    assert actions.read(
        {"action": "transfer_to_patient", "reason": "deductible", "amount": "1.234"}, "t"
    ).problems == ["amount: a positive amount in dollars and cents"]
    assert actions.read(
        {"action": "appeal_outcome", "reason": "letter back", "outcome": "won"}, "t"
    ).problems == ["outcome: overturned, partial or upheld"]
    assert actions.read({"action": "delete"}, "t").problems == [
        "action: choose one of the offered actions"
    ]
