"""deploy/helm/rcm rendered by the Helm CLI: what rcm needs is in it, and what is unsafe is not.

kubeconform's schema validation of the same renderings is `make deploy-check` (deploy/check.py);
these tests read the rendered manifests for the facts a schema cannot know."""

from __future__ import annotations

import importlib
import subprocess

import pytest
import yaml
from deploy_support import (
    CHART,
    LIBRARY_ENV,
    PROPOSED,
    by_kind,
    deployable_services,
    render,
    settings_env_names,
)

from shared import topics

VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
PARTITIONS = VALUES["kafka"]["topics"]["partitions"]


@pytest.fixture(scope="module")
def default() -> list[dict]:
    return render()


@pytest.fixture(scope="module")
def all_features() -> list[dict]:
    return render("--values", str(CHART / "ci" / "all-features-values.yaml"))


def _pod(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]


def _env(container: dict) -> dict:
    return {e["name"]: e for e in container.get("env", [])}


def test_chart_topic_list_is_shared_topics():
    assert sorted(VALUES["kafka"]["topics"]["names"]) == sorted(topics.ALL)


def test_every_topic_and_its_dlq_is_a_strimzi_kafka_topic(default):
    kafka_topics = {t["spec"]["topicName"]: t for t in by_kind(default, "KafkaTopic").values()}
    wanted = {*topics.ALL, *(topics.dlq(t) for t in topics.ALL)}
    assert set(kafka_topics) == wanted
    for name, topic in kafka_topics.items():
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "rcm-kafka"
        assert topic["spec"]["replicas"] == 3
        assert topic["spec"]["config"]["min.insync.replicas"] == "2"
        dlq = name.endswith(".dlq")
        assert topic["spec"]["partitions"] == (3 if dlq else PARTITIONS), name


def test_services_create_no_topics_at_start(default):
    env = by_kind(default, "ConfigMap")["rcm-env"]["data"]
    assert env["RCM_KAFKA_CREATE_TOPICS"] == "false"
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "rcm-kafka-kafka-bootstrap:9093"  # TLS listener


def test_every_service_has_a_deployment_serving_it_and_the_simulator_none(default):
    deployments = by_kind(default, "Deployment")
    assert set(deployments) == {f"rcm-{s}" for s in deployable_services()}
    for name in deployable_services():
        container = _pod(deployments[f"rcm-{name}"])["containers"][0]
        assert container["command"] == ["rcm"]
        assert container["args"] == ["serve", name]
    assert "payer_sim" not in yaml.safe_dump_all(default)


@pytest.mark.parametrize("service", deployable_services())
def test_chart_topics_of_each_service_are_its_consumer_groups_topics(service):
    spec = importlib.import_module(f"services.{service}.app").spec()
    assert VALUES["services"][service]["topics"] == spec.topics


def test_pods_run_non_root_read_only_with_health_probes_and_resources(default):
    for name, deployment in by_kind(default, "Deployment").items():
        pod = _pod(deployment)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        assert pod["automountServiceAccountToken"] is False
        container = pod["containers"][0]
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"]["path"] == "/health", (name, probe)
            assert container[probe]["httpGet"]["port"] == "http"
        assert container["resources"]["requests"]["memory"], name
        assert container["resources"]["limits"]["memory"], name
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert {"/var/lib/rcm", "/tmp"} <= mounts  # writable places on the read-only root


def test_database_url_comes_from_the_cloudnativepg_app_secret(default):
    cluster = by_kind(default, "Cluster")["rcm-db"]
    assert cluster["spec"]["bootstrap"]["initdb"] == {"database": "rcm", "owner": "rcm"}
    for deployment in by_kind(default, "Deployment").values():
        env = _env(_pod(deployment)["containers"][0])
        uri = env["RCM_DATABASE_URI"]["valueFrom"]["secretKeyRef"]
        assert uri == {"name": "rcm-db-app", "key": "uri"}
        assert env["DATABASE_URL"]["value"].startswith("$(RCM_DATABASE_URI)?sslmode=verify-full")
        volumes = {v["name"]: v for v in _pod(deployment)["volumes"]}
        assert volumes["tls-postgres"]["secret"]["secretName"] == "rcm-db-ca"


def test_consumers_scale_on_their_group_lag_within_the_partitions(default):
    scaled = by_kind(default, "ScaledObject")
    consumers = {n for n, s in VALUES["services"].items() if s["topics"]}
    assert set(scaled) == {f"rcm-{n}" for n in consumers}
    for name in consumers:
        obj = scaled[f"rcm-{name}"]
        assert obj["spec"]["scaleTargetRef"]["name"] == f"rcm-{name}"
        assert obj["spec"]["maxReplicaCount"] <= PARTITIONS
        triggers = obj["spec"]["triggers"]
        assert [t["metadata"]["topic"] for t in triggers] == VALUES["services"][name]["topics"]
        assert {t["metadata"]["consumerGroup"] for t in triggers} == {f"rcm-{name}"}
        assert {t["type"] for t in triggers} == {"kafka"}
        # KEDA owns the replica count of a scaled Deployment.
        assert "replicas" not in by_kind(default, "Deployment")[f"rcm-{name}"]["spec"]


def test_more_replicas_than_partitions_is_refused():
    with pytest.raises(subprocess.CalledProcessError) as failed:
        render("--set", f"services.billing.autoscaling.maxReplicas={PARTITIONS + 1}")
    assert "services.billing.autoscaling.maxReplicas" in failed.value.stderr
    assert f"exceeds the partitions of its topics ({PARTITIONS})" in failed.value.stderr


def test_more_partitions_allow_more_replicas(all_features):
    coding = by_kind(all_features, "ScaledObject")["rcm-prod-coding"]
    assert coding["spec"]["maxReplicaCount"] == 24  # rcm.encounter.documented.v1 has 24 there


def test_every_service_has_a_pdb_service_and_service_monitor(default):
    pdbs, services = by_kind(default, "PodDisruptionBudget"), by_kind(default, "Service")
    monitors = by_kind(default, "ServiceMonitor")
    for name in deployable_services():
        assert pdbs[f"rcm-{name}"]["spec"]["maxUnavailable"] == 1
        ports = {p["name"]: p["port"] for p in services[f"rcm-{name}"]["spec"]["ports"]}
        assert ports == {"http": 8080, "metrics": 9464}
        assert monitors[f"rcm-{name}"]["spec"]["endpoints"][0]["port"] == "metrics"


def test_mailboxes_are_one_read_write_many_claim_for_billing_payments_followup(default):
    claim = by_kind(default, "PersistentVolumeClaim")["rcm-mailbox"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    for name, deployment in by_kind(default, "Deployment").items():
        claims = [
            v["persistentVolumeClaim"]["claimName"]
            for v in _pod(deployment)["volumes"]
            if "persistentVolumeClaim" in v
        ]
        users = {"rcm-billing", "rcm-payments", "rcm-followup"}
        assert claims == (["rcm-mailbox"] if name in users else []), name


def test_migrations_run_as_a_hook_job_before_upgrades(default):
    job = by_kind(default, "Job")["rcm-migrate"]
    # The chart's own CloudNativePG cluster does not exist before the first install.
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,pre-upgrade"
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert (container["command"], container["args"]) == (["rcm"], ["migrate"])
    external = render("--values", str(CHART / "ci" / "external-database-values.yaml"))
    job = by_kind(external, "Job")["rcm-migrate"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    uri = _env(job["spec"]["template"]["spec"]["containers"][0])["RCM_DATABASE_URI"]
    assert uri["valueFrom"]["secretKeyRef"] == {"name": "rcm-database", "key": "uri"}
    assert not by_kind(external, "Cluster") and not by_kind(external, "ScaledObject")


def test_secrets_come_from_kubernetes_secrets(all_features):
    deployment = by_kind(all_features, "Deployment")["rcm-prod-workbench"]
    container = _pod(deployment)["containers"][0]
    refs = [s["secretRef"]["name"] for s in container["envFrom"] if "secretRef" in s]
    assert refs == ["rcm-oidc", "rcm-workbench-oidc"]
    env = _env(container)
    assert env["RCM_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "rcm"
    volumes = {v["name"]: v for v in _pod(deployment)["volumes"]}
    assert volumes["tls-http"]["secret"]["secretName"] == "rcm-http-tls"
    assert volumes["tls-kafka"]["secret"]["secretName"] == "rcm-kafka-cluster-ca-cert"
    assert not by_kind(all_features, "Secret")  # the OIDC settings are the operator's Secret
    config = by_kind(all_features, "ConfigMap")["rcm-prod-env"]["data"]
    assert config["RCM_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert config["RCM_HTTP_TLS_CERT_FILE"] == "/etc/rcm/tls/http/tls.crt"


def test_values_file_comments_every_setting():
    """A key with a value has a comment line above it; a section without one needs none, and a
    commented key's nested data (topic config, resources) is covered by its comment."""
    lines = [
        (len(t) - len(t.lstrip()), t.strip())
        for t in (CHART / "values.yaml").read_text().splitlines()
    ]
    lines = [(i, t) for i, t in lines if t]
    undocumented, covered_below = [], None
    for n, (indent, text) in enumerate(lines):
        if covered_below is not None and indent > covered_below:
            continue
        covered_below = None
        if text.startswith(("#", "- ")) or ":" not in text:
            continue
        commented = n > 0 and lines[n - 1][1].startswith("#") and lines[n - 1][0] == indent
        has_children = n + 1 < len(lines) and lines[n + 1][0] > indent
        if commented:
            covered_below = indent
        elif not has_children:
            undocumented.append(text)
    assert undocumented == []


def test_chart_sets_only_settings_rcm_reads(default, all_features):
    known = settings_env_names() | PROPOSED | LIBRARY_ENV
    for manifests in (default, all_features):
        names = set()
        for config in by_kind(manifests, "ConfigMap").values():
            names |= set(config["data"])
        for deployment in by_kind(manifests, "Deployment").values():
            names |= set(_env(_pod(deployment)["containers"][0]))
        extra_env = {"RCM_CONSUMER_MAX_RECORDS", "RCM_CODING_AUTO_THRESHOLD"}  # all-features' own
        assert names - known == set(), sorted(names - known)
        assert extra_env <= known


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("servces.coding.enabled=false", "additional properties 'servces' not allowed"),
        ("kafka.topics.replicas=0", "/kafka/topics/replicas"),
        ("auth.oidc.issuer=http://login.example.org", "/auth/oidc/issuer"),
    ],
)
def test_values_schema_refuses_misspelt_and_unsafe_values(setting, message):
    with pytest.raises(subprocess.CalledProcessError) as failed:
        render("--set", setting)
    assert message in failed.value.stderr


def test_loaded_code_sets_and_reference_files_are_mounted_read_only(all_features):
    for deployment in by_kind(all_features, "Deployment").values():
        container = _pod(deployment)["containers"][0]
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        assert mounts["codesets"]["mountPath"] == "/var/lib/rcm/codesets"  # RCM_HOME/codesets
        assert mounts["codesets"]["readOnly"] and mounts["reference"]["readOnly"]
