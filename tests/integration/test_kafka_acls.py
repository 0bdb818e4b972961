"""Kafka ACLs on the local broker (issue 18: "Kafka topics are readable by any client"): with the
StandardAuthorizer on and a SASL_SSL listener, each service's principal may do what
``rcm.localstack.kafka_acls.service_acls`` grants (what docs/security.md tells an operator to
grant) and nothing else; a principal without ACLs is refused everything."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    TopicAuthorizationFailedError,
)
from pydantic import SecretStr

from rcm.localstack.kafka import KafkaCluster, SecureListener
from rcm.localstack.kafka_acls import create_acls, service_acls
from rcm.localstack.tls import ensure_pki
from shared import kafka
from shared.settings import ConfigurationError, KafkaSecuritySettings, RuntimeSettings
from shared.topics import ENCOUNTER_CODED, ENCOUNTER_DOCUMENTED

pytestmark = pytest.mark.integration

# A consumer is refused at its group or at the topic, whichever the broker checks first.
REFUSED_READ = (GroupAuthorizationFailedError, TopicAuthorizationFailedError)
USERS = {"rcm-intake": "intake-secret-1", "rcm-coding": "coding-secret-2", "stranger": "s-3"}


@pytest.fixture(scope="module")
def acl_broker():
    run = Path(tempfile.mkdtemp(prefix="rcm-acl-test-"))
    pki = ensure_pki(run / "kafka-tls", "rcm local Kafka CA")
    cluster = KafkaCluster(
        run,
        RuntimeSettings().home,
        secure=SecureListener("SASL_SSL", pki.keystore_file, dict(USERS), acls=True),
    )
    try:
        cluster.start(timeout=240)
        # The platform's part (Strimzi: KafkaTopics and KafkaUsers), as the local super user.
        asyncio.run(_prepare(cluster.bootstrap))
        asyncio.run(_acls_in_force(cluster.secure_bootstrap, pki.ca_file))
        yield cluster, pki.ca_file
    finally:
        cluster.stop()
        shutil.rmtree(run, ignore_errors=True)


async def _prepare(plaintext: str) -> None:
    await kafka.ensure_topics(plaintext, partitions=1)
    await create_acls(
        plaintext,
        service_acls("User:rcm-intake", "rcm-intake", [], [ENCOUNTER_DOCUMENTED])
        + service_acls("User:rcm-coding", "rcm-coding", [ENCOUNTER_DOCUMENTED], [ENCOUNTER_CODED]),
    )


async def _acls_in_force(bootstrap: str, ca: Path, timeout: float = 60) -> None:
    """ACLs reach the broker's authorizer through the metadata log a moment after they are made:
    wait until intake's producer (IdempotentWrite) is let in."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            producer = await kafka.start_producer(bootstrap, security=_as("rcm-intake", ca))
        except ConfigurationError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)
            continue
        await producer.stop()
        return


def _as(user: str, ca: Path) -> KafkaSecuritySettings:
    return KafkaSecuritySettings(
        security_protocol="SASL_SSL",
        ssl_ca_file=ca,
        sasl_username=user,
        sasl_password=SecretStr(USERS[user]),
    )


async def _send(bootstrap: str, sec: KafkaSecuritySettings, topic: str, value: bytes) -> None:
    producer = await kafka.start_producer(bootstrap, security=sec)
    try:
        await asyncio.wait_for(producer.send_and_wait(topic, value, key=b"k"), 40)
    finally:
        await producer.stop()


async def _read(bootstrap: str, sec: KafkaSecuritySettings, topic: str, group: str) -> bytes:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        **kafka.client_security(sec),
    )
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), 40)
        return record.value
    finally:
        await consumer.stop()


async def test_each_service_does_what_its_acls_allow(acl_broker):
    cluster, ca = acl_broker
    bootstrap = cluster.secure_bootstrap
    marker = uuid.uuid4().hex.encode()
    await _send(bootstrap, _as("rcm-intake", ca), ENCOUNTER_DOCUMENTED, marker)
    got = await _read(bootstrap, _as("rcm-coding", ca), ENCOUNTER_DOCUMENTED, "rcm-coding")
    assert got == marker
    # coding emits encounter.coded; intake may not, and coding reads in its own group only.
    await _send(bootstrap, _as("rcm-coding", ca), ENCOUNTER_CODED, b"coded")
    with pytest.raises(TopicAuthorizationFailedError):
        await _send(bootstrap, _as("rcm-intake", ca), ENCOUNTER_CODED, b"not intake's")
    with pytest.raises(GroupAuthorizationFailedError):
        await _read(bootstrap, _as("rcm-coding", ca), ENCOUNTER_DOCUMENTED, "someone-else")
    with pytest.raises(REFUSED_READ):
        await _read(bootstrap, _as("rcm-intake", ca), ENCOUNTER_DOCUMENTED, "rcm-intake")


async def test_a_client_without_acls_is_refused(acl_broker):
    cluster, ca = acl_broker
    sec = _as("stranger", ca)
    with pytest.raises(ConfigurationError, match="refused this service's principal"):
        await _send(cluster.secure_bootstrap, sec, ENCOUNTER_DOCUMENTED, b"forged")
    with pytest.raises(REFUSED_READ):
        await _read(cluster.secure_bootstrap, sec, ENCOUNTER_DOCUMENTED, "rcm-coding")
