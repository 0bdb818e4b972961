"""What the deployment artefacts must say for issue 18's transport and identity settings: Kafka
over TLS in production (the chart refuses to render without it), each service's own database
roles (DATABASE_URL and RCM_DB_OWNER_URL), followup's service identity (RCM_SERVICE_*), and
services that create no topics where the platform owns them."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml
from deploy_support import CHART, DEPLOY, by_kind, check, deployable_services, helm_binary, render

ALL_FEATURES = ("--values", str(CHART / "ci" / "all-features-values.yaml"))


def _env(container: dict) -> dict:
    return {e["name"]: e for e in container.get("env", [])}


def test_default_values_speak_tls_to_kafka():
    config = by_kind(render(), "ConfigMap")["rcm-env"]["data"]
    assert config["RCM_KAFKA_SECURITY_PROTOCOL"] == "SSL"
    assert config["RCM_KAFKA_SSL_CA_FILE"] == "/etc/rcm/tls/kafka/ca.crt"
    assert config["RCM_KAFKA_CREATE_TOPICS"] == "false"


def test_production_without_kafka_tls_does_not_render():
    with pytest.raises(subprocess.CalledProcessError) as e:
        check.render(helm_binary(), ["--set", "kafka.tls.caSecret="])
    assert "kafka.tls.caSecret is required in production" in e.value.stderr
    dev = render("--set", "kafka.tls.caSecret=", "--set", "environment=development")
    assert "RCM_KAFKA_SECURITY_PROTOCOL" not in by_kind(dev, "ConfigMap")["rcm-env"]["data"]


def test_each_service_connects_as_its_own_role_and_migrates_as_its_owner():
    manifests = render(*ALL_FEATURES)
    for name in deployable_services():
        if name == "payer_sim":
            continue
        deployment = by_kind(manifests, "Deployment").get(f"rcm-prod-{name}")
        if deployment is None:
            continue
        env = _env(deployment["spec"]["template"]["spec"]["containers"][0])
        login = env["RCM_DATABASE_URI"]["valueFrom"]["secretKeyRef"]
        owner = env["RCM_DB_OWNER_URI"]["valueFrom"]["secretKeyRef"]
        assert login == {"name": f"rcm-db-{name}", "key": "uri"}
        assert owner == {"name": f"rcm-db-{name}", "key": "owner-uri"}
        assert env["RCM_DB_OWNER_URL"]["value"].startswith(
            "$(RCM_DB_OWNER_URI)?sslmode=verify-full"
        )
    job = by_kind(manifests, "Job")["rcm-prod-migrate"]
    containers = job["spec"]["template"]["spec"]["containers"]
    assert {c["name"]: c["args"] for c in containers} == {
        f"migrate-{n}": ["migrate", n] for n in deployable_services() if n != "payer_sim"
    }
    for c in containers:
        env = _env(c)
        assert (
            env["RCM_DB_OWNER_URI"]["valueFrom"]["secretKeyRef"]["name"] == "rcm-db-" + c["args"][1]
        )
        assert env["RCM_KAFKA_SECURITY_PROTOCOL"]["value"] == "SASL_SSL"


def test_default_values_keep_one_shared_role_and_one_migration():
    manifests = render()
    env = _env(
        by_kind(manifests, "Deployment")["rcm-billing"]["spec"]["template"]["spec"]["containers"][0]
    )
    assert "RCM_DB_OWNER_URL" not in env and "RCM_DATABASE_URI" in env
    [container] = by_kind(manifests, "Job")["rcm-migrate"]["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["migrate"]


def test_followup_gets_its_service_identity_from_a_secret():
    deployment = by_kind(render(*ALL_FEATURES), "Deployment")["rcm-prod-followup"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    refs = [s["secretRef"]["name"] for s in container["envFrom"] if "secretRef" in s]
    assert "rcm-followup-identity" in refs


def test_compose_services_have_their_own_roles_and_followup_its_identity():
    compose = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    services = compose["services"]
    for name in ("intake", "coding", "billing", "payments", "followup", "workbench"):
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith(f"postgresql://rcm_{name}:")
        assert env["RCM_DB_OWNER_URL"].startswith(f"postgresql://rcm_{name}_owner:")
    assert "./postgres-init:/docker-entrypoint-initdb.d:ro" in services["postgres"]["volumes"]
    init = (DEPLOY / "compose" / "postgres-init" / "10-rcm-roles.sh").read_text()
    assert "CREATE SCHEMA ${schema} AUTHORIZATION rcm_${schema}_owner" in init
    followup = services["followup"]["environment"]
    assert followup["RCM_SERVICE_CLIENT_ID"] == "rcm-followup"
    realm = json.loads((DEPLOY / "keycloak" / "rcm-realm.json").read_text())
    client = next(c for c in realm["clients"] if c["clientId"] == "rcm-followup")
    assert client["serviceAccountsEnabled"] and not client["standardFlowEnabled"]
    account = next(u for u in realm["users"] if u.get("serviceAccountClientId") == "rcm-followup")
    assert account["realmRoles"] == ["service"]
