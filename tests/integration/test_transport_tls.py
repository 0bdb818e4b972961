"""Transport security end to end (issue 18, item 8), on real servers of our own:

- a PostgreSQL with ``ssl=on`` (``Postgres(run_dir, tls=True)``: a development CA signs its
  certificate for 127.0.0.1) that a service's pool (``shared.db``) reaches with
  ``sslmode=verify-full`` and the CA file, and refuses, in one line naming the setting, with
  another CA (also as a service process's exit: no traceback);
- a Kafka broker with a SASL_SSL listener (TLS + SCRAM-SHA-512) only clients use;
- two real service processes over all three: intake serving HTTPS (``RCM_HTTP_TLS_*``) to a
  client that verifies it, its outbox relay producing through SASL_SSL, coding consuming that
  event through SASL_SSL and producing ``encounter.coded``, read back by a verifying consumer.
  Intake runs with ``RCM_KAFKA_CREATE_TOPICS=false`` on a fresh broker: it makes no topic.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import SecretStr

from rcm.localstack.kafka import KafkaCluster, SecureListener
from rcm.localstack.postgres import Postgres
from rcm.localstack.supervisor import Supervisor
from rcm.localstack.tls import ensure_pki
from rcm.simulation.samples import generate_samples
from shared import db, kafka
from shared.auth import issue
from shared.settings import AuthSettings, ConfigurationError, KafkaSecuritySettings, RuntimeSettings
from shared.topics import ENCOUNTER_CODED, ENCOUNTER_DOCUMENTED
from tests.integration.pipeline_support import RECENT, wait_for

pytestmark = pytest.mark.integration

SCRAM_USER, SCRAM_PASSWORD = "rcm-services", "scram-password-for-the-tls-test"


@pytest.fixture(scope="module")
def tls_stack():
    """(run dir, Postgres with TLS, Kafka with a SASL_SSL listener, the CA, another CA)."""
    # Not under pytest's tmp root: another pytest session makes that 0700 again, and as root
    # the Postgres server runs as another user who must reach its data directory.
    run = Path(tempfile.mkdtemp(prefix="rcm-tls-test-"))
    other = ensure_pki(run / "other-ca", "a CA nobody here trusts")
    pg = Postgres(run, tls=True)
    pg.start()
    broker_pki = ensure_pki(run / "kafka-tls", "rcm local Kafka CA")
    cluster = KafkaCluster(
        run,
        RuntimeSettings().home,
        secure=SecureListener("SASL_SSL", broker_pki.keystore_file, {SCRAM_USER: SCRAM_PASSWORD}),
    )
    try:
        cluster.start(timeout=240)
        yield run, pg, cluster, broker_pki.ca_file, other.ca_file
    finally:
        cluster.stop()
        pg.stop()
        shutil.rmtree(run, ignore_errors=True)


def _kafka_security(ca: Path) -> KafkaSecuritySettings:
    return KafkaSecuritySettings(
        security_protocol="SASL_SSL",
        ssl_ca_file=ca,
        sasl_username=SCRAM_USER,
        sasl_password=SecretStr(SCRAM_PASSWORD),
    )


async def test_a_service_pool_connects_with_verify_full_and_the_ca(tls_stack):
    _, pg, _, _, _ = tls_stack
    pool = await db.create_pool(pg.tls_dsn("rcm_intake"), max_size=2)
    try:
        async with pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
            )
            assert row["ssl"] is True and row["version"] in ("TLSv1.2", "TLSv1.3")
            assert await conn.fetchval("SELECT current_user") == "rcm_intake"
    finally:
        await pool.close()


@pytest.mark.parametrize("case", ["another CA", "no CA file"])
async def test_a_wrong_ca_is_one_line_naming_the_setting(tls_stack, case):
    run, pg, _, _, other_ca = tls_stack
    ca = other_ca if case == "another CA" else run / "missing-ca.pem"
    dsn = pg.tls_dsn("rcm_intake", ca_file=ca)
    with pytest.raises(ConfigurationError) as e:
        await db.create_pool(dsn, max_size=1)
    msg = str(e.value)
    assert "\n" not in msg and "DATABASE_URL" in msg and "sslrootcert" in msg, msg
    if case == "another CA":
        assert "certificate failed verification" in msg, msg
    assert pg._roles()["rcm_intake"] not in msg  # the password is redacted


def _service_env(run: Path, pg: Postgres, cluster: KafkaCluster, kafka_ca: Path, schema: str):
    http = ensure_pki(run / "http-tls", "rcm local HTTPS CA")
    return {
        "RCM_RUN_DIR": str(run),
        "RCM_TOKEN_SECRET": AuthSettings().token_secret,
        "PYTHONUNBUFFERED": "1",
        "RCM_LOG_LEVEL": "INFO",
        "DATABASE_URL": pg.tls_dsn(f"rcm_{schema}"),
        "RCM_DB_OWNER_URL": pg.tls_dsn(f"rcm_{schema}_owner"),
        "KAFKA_BOOTSTRAP_SERVERS": cluster.secure_bootstrap,
        "RCM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "RCM_KAFKA_SSL_CA_FILE": str(kafka_ca),
        "RCM_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "RCM_KAFKA_SASL_USERNAME": SCRAM_USER,
        "RCM_KAFKA_SASL_PASSWORD": SCRAM_PASSWORD,
        "RCM_HTTP_TLS_CERT_FILE": str(http.cert_file),
        "RCM_HTTP_TLS_KEY_FILE": str(http.key_file),
    }


def test_a_service_with_the_wrong_postgres_ca_stops_with_one_line(tls_stack):
    run, pg, cluster, kafka_ca, other_ca = tls_stack
    env = _service_env(run, pg, cluster, kafka_ca, "intake")
    env["RCM_DB_OWNER_URL"] = pg.tls_dsn("rcm_intake_owner", ca_file=other_ca)
    sup = Supervisor(run / "wrong-ca", env)
    sp = sup.add("intake", http=True)
    sp.start()
    try:
        assert sp.proc.wait(120) == 2
    finally:
        sp.stop()
    out = sp.log_path.read_text()
    lines = [line for line in out.splitlines() if line.strip()]
    assert "Traceback" not in out, out[-2000:]
    assert len(lines) == 1 and lines[0].startswith("rcm: Postgres TLS at "), out[-2000:]
    assert "certificate failed verification" in lines[0] and "RCM_DB_OWNER_URL" in lines[0]
    assert pg._roles()["rcm_intake_owner"] not in out


def _client_ssl(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


async def _wait_https(url: str, ca: Path, sup: Supervisor, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(verify=_client_ssl(ca), timeout=5) as client:
        while time.monotonic() < deadline:
            if dead := sup.dead():
                tail = dead[0].log_path.read_text(errors="replace")[-2000:]
                raise AssertionError(f"{dead[0].label} exited during start-up:\n{tail}")
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
    raise AssertionError(f"{url} not healthy after {timeout:.0f}s")


async def _rcm_topics(bootstrap: str, security: KafkaSecuritySettings) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **kafka.client_security(security))
    await admin.start()
    try:
        return {t for t in await admin.list_topics() if t.startswith("rcm.")}
    finally:
        await admin.close()


def _auto_coded_bundles(n: int = 30) -> list[tuple[str, dict]]:
    """(encounter id, FHIR bundle) of sample visits meant to be coded without a coder (coding
    may still send some to review)."""
    seed = int(time.time()) % 10**7
    samples = generate_samples(200, seed, start_date=RECENT)
    picked = [s for s in samples if s.expected["route"] == "auto"][:n]
    return [(s.encounter.encounter_id, s.bundle) for s in picked]


async def _coded_events(bootstrap: str, security: KafkaSecuritySettings, wanted: set[str]):
    """The first ``encounter.coded`` event of any of the ``wanted`` encounters."""
    consumer = AIOKafkaConsumer(
        ENCOUNTER_CODED,
        bootstrap_servers=bootstrap,
        group_id=f"tls-test-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        **kafka.client_security(security),
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                for r in records:
                    event = json.loads(r.value)
                    if event.get("encounter_id") in wanted:
                        return event
        raise AssertionError(f"no {ENCOUNTER_CODED} for {sorted(wanted)} within 120 s")
    finally:
        await consumer.stop()


async def test_services_serve_https_and_talk_to_kafka_and_postgres_over_tls(tls_stack):
    run, pg, cluster, kafka_ca, other_ca = tls_stack
    sec = _kafka_security(kafka_ca)
    bootstrap = cluster.secure_bootstrap
    assert await _rcm_topics(bootstrap, sec) == set()  # a fresh broker

    intake_env = _service_env(run, pg, cluster, kafka_ca, "intake")
    intake_env["RCM_KAFKA_CREATE_TOPICS"] = "false"
    sup = Supervisor(run, intake_env)
    intake = sup.add("intake", http=True)
    intake.start()
    try:
        http_ca = Path(intake_env["RCM_HTTP_TLS_CERT_FILE"]).with_name("ca.pem")
        url = f"https://127.0.0.1:{intake.http_port}"
        await _wait_https(url + "/health", http_ca, sup)
        # Started, producer connected through SASL_SSL, and no topic made by it.
        assert await _rcm_topics(bootstrap, sec) == set()

        # The platform makes the topics (the Helm chart's KafkaTopics); coding may make them too.
        await kafka.ensure_topics(bootstrap, partitions=2, security=sec)
        coding = sup.add(
            "coding", http=True, extra_env=_service_env(run, pg, cluster, kafka_ca, "coding")
        )
        coding.start()
        await _wait_https(f"https://127.0.0.1:{coding.http_port}/health", http_ca, sup)

        # A client that does not trust the CA, or speaks plain HTTP, gets nowhere.
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            async with httpx.AsyncClient(verify=_client_ssl(other_ca)) as c:
                await c.get(url + "/health")
        with pytest.raises(httpx.HTTPError):
            async with httpx.AsyncClient(timeout=5) as c:
                await c.get(f"http://127.0.0.1:{intake.http_port}/health")

        bundles = _auto_coded_bundles()
        token = issue(AuthSettings().token_secret, "ehr-feed", "integration", ["*"])
        event_ids = []
        async with httpx.AsyncClient(
            verify=_client_ssl(http_ca),
            headers={"authorization": f"Bearer {token}"},
            timeout=30,
        ) as client:
            for _, bundle in bundles:
                r = await client.post(url + "/encounters", json=bundle)
                assert r.status_code == 202, r.text
                event_ids += [a["event_id"] for a in r.json().get("accepted", [r.json()])]

        # intake's relay -> SASL_SSL -> coding's consumer (its inbox) -> coding's relay -> SASL_SSL.
        admin_dsn = pg.tls_dsn("postgres")
        await wait_for(
            admin_dsn,
            "SELECT count(*) FROM coding.inbox WHERE event_id = ANY($1::uuid[])",
            event_ids,
            predicate=lambda n: n == len(event_ids) == len(bundles),
            timeout=120,
        )
        coded = await wait_for(
            admin_dsn,
            "SELECT array_agg(encounter_id) FROM coding.encounter"
            " WHERE encounter_id = ANY($1::text[]) AND status = 'coded'",
            [eid for eid, _ in bundles],
            timeout=60,
        )
        event = await _coded_events(bootstrap, sec, set(coded))
        assert event["payload"]["encounter"]["encounter_id"] == event["encounter_id"]
        conn = await asyncpg.connect(admin_dsn)
        try:
            # Every connection of the services' roles is encrypted.
            plain = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)"
                " WHERE a.usename LIKE 'rcm\\_%' AND NOT s.ssl"
            )
            encrypted = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)"
                " WHERE a.usename IN ('rcm_intake', 'rcm_coding') AND s.ssl"
            )
            assert plain == 0 and encrypted >= 2
        finally:
            await conn.close()
        assert ENCOUNTER_DOCUMENTED in await _rcm_topics(bootstrap, sec)
    finally:
        sup.stop_all()
    for sp in sup.processes:
        assert "Traceback" not in sp.log_path.read_text(errors="replace"), sp.label
