"""deploy/compose/compose.yaml: valid by the compose specification, and it runs what rcm is."""

from __future__ import annotations

import yaml
from deploy_support import (
    DEPLOY,
    LIBRARY_ENV,
    PROPOSED,
    check,
    deployable_services,
    settings_env_names,
)

COMPOSE = DEPLOY / "compose" / "compose.yaml"
MAILBOX_USERS = {"billing", "payments", "followup"}


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_file_is_valid_by_the_compose_spec_schema():
    assert check.compose_errors(COMPOSE) == []


def test_the_schema_check_finds_a_broken_compose_file(tmp_path):
    broken = COMPOSE.read_text().replace("condition: service_healthy", "condition: healthy", 1)
    broken = broken.replace(
        "    restart: unless-stopped\n", "    restart: unless-stopped\n    retsart: no\n", 1
    )
    path = tmp_path / "compose.yaml"
    path.write_text(broken)
    errors = check.compose_errors(path)
    assert any(e.startswith("services/coding/depends_on:") for e in errors), errors
    assert any("retsart" in e for e in errors), errors


def test_every_deployable_service_runs_from_the_one_image_and_the_simulator_never():
    services = _compose()["services"]
    for name in deployable_services():
        assert services[name]["command"] == [name], name
        assert services[name]["build"]["dockerfile"] == "deploy/Dockerfile"
    assert not [n for n in services if "sim" in n]
    infra = {"kafka", "postgres", "keycloak", "zipkin", "otel-collector"}
    assert set(services) == set(deployable_services()) | infra


def test_healthy_dependencies_have_health_checks_and_exist():
    services = _compose()["services"]
    for name, svc in services.items():
        for dep, how in svc.get("depends_on", {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            if how["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep}'s health"
    for name in deployable_services():
        assert services[name]["depends_on"]["kafka"]["condition"] == "service_healthy"
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert "/health" in " ".join(services[name]["healthcheck"]["test"])


def test_mailbox_volume_is_shared_by_billing_payments_and_followup_only():
    doc = _compose()
    assert "mailbox" in doc["volumes"]
    for name, svc in doc["services"].items():
        mounts = [v for v in svc.get("volumes", []) if v.startswith("mailbox:")]
        if name in MAILBOX_USERS:
            assert mounts == ["mailbox:/var/lib/rcm/mailbox"], name
        else:
            assert mounts == [], name


def test_rcm_services_set_only_settings_rcm_reads():
    known = settings_env_names() | PROPOSED | LIBRARY_ENV
    services = _compose()["services"]
    for name in deployable_services():
        unknown = set(services[name]["environment"]) - known
        assert not unknown, f"{name}: {sorted(unknown)}"


def test_keycloak_imports_the_realm_directory_and_the_services_trust_its_issuer():
    services = _compose()["services"]
    keycloak = services["keycloak"]
    assert "--import-realm" in keycloak["command"]
    assert "../keycloak:/opt/keycloak/data/import:ro" in keycloak["volumes"]
    issuer = services["coding"]["environment"]["RCM_TOKEN_ISSUER"]
    assert issuer == keycloak["environment"]["KC_HOSTNAME"] + "/realms/rcm"
    assert issuer.startswith("https://")  # the JWKS is fetched over https only (shared/auth.py)
