"""Transport security to Kafka (issue 18, item 8): a broker with a SASL_SSL listener (TLS and
SCRAM-SHA-512), and rcm's own clients (shared.kafka: admin, producer, FastStream consumer,
the lag reader) configured by ``RCM_KAFKA_*`` settings talking through it. A PLAINTEXT
client, a client without the password and one that does not trust the broker's CA are refused.

The CA and the broker's certificate (SANs 127.0.0.1 and localhost) are made here with
``cryptography``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import os
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

from rcm.localstack.kafka import KafkaCluster, SecureListener
from shared import kafka, ops
from shared.settings import ConfigurationError, KafkaSecuritySettings, RuntimeSettings

pytestmark = pytest.mark.integration

TOPIC = "rcm.tls-probe.v1"
USER, PASSWORD = "rcm-billing", "scram-secret-for-the-test"


def _cert(subject: str, key, issuer_name, issuer_key, *, ca: bool, sans=()) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def make_pki(d: Path) -> tuple[Path, Path, Path]:
    """(CA file, broker keystore PEM: key + chain, another CA's file)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rcm test CA")])
    ca = _cert("rcm test CA", ca_key, ca_name, ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    leaf = _cert("localhost", key, ca_name, ca_key, ca=False, sans=sans)
    other_key = ec.generate_private_key(ec.SECP256R1())
    other_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "another CA")])
    other = _cert("another CA", other_key, other_name, other_key, ca=True)
    pem = serialization.Encoding.PEM
    (d / "ca.pem").write_bytes(ca.public_bytes(pem))
    (d / "other-ca.pem").write_bytes(other.public_bytes(pem))
    keystore = d / "broker.pem"
    keystore.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + leaf.public_bytes(pem)
        + ca.public_bytes(pem)
    )
    os.chmod(keystore, 0o600)
    return d / "ca.pem", keystore, d / "other-ca.pem"


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory):
    d = tmp_path_factory.mktemp("kafka-tls")
    ca, keystore, other_ca = make_pki(d)
    cluster = KafkaCluster(
        d / "run",
        RuntimeSettings().home,
        secure=SecureListener("SASL_SSL", keystore, {USER: PASSWORD}),
    )
    cluster.start(timeout=180)
    try:
        yield cluster, ca, other_ca
    finally:
        cluster.stop()


def _sasl_ssl(ca: Path, password: str = PASSWORD) -> KafkaSecuritySettings:
    return KafkaSecuritySettings(
        security_protocol="SASL_SSL",
        ssl_ca_file=ca,
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username=USER,
        sasl_password=SecretStr(password),
    )


async def test_service_clients_produce_and_consume_over_sasl_ssl(tls_broker, monkeypatch):
    cluster, ca, _ = tls_broker
    bootstrap = cluster.secure_bootstrap
    sec = _sasl_ssl(ca)
    await kafka.ensure_topics(bootstrap, [TOPIC], partitions=1, security=sec)
    producer = await kafka.start_producer(bootstrap, security=sec)
    try:
        await producer.send_and_wait(TOPIC, b"over-tls-1", key=b"k")
    finally:
        await producer.stop()

    got: list[bytes] = []
    arrived = asyncio.Event()

    async def handler(records) -> None:
        got.extend(r.value for r in records)
        arrived.set()

    broker = kafka.make_broker(bootstrap, "rcm-tls-test", security=sec)
    kafka.subscribe_batch(broker, [TOPIC], group_id="rcm-tls-test", handler=handler)
    await broker.start()
    try:
        await asyncio.wait_for(arrived.wait(), 60)
    finally:
        await broker.stop()
    assert got == [b"over-tls-1"]

    # The lag reader takes the same settings from the environment (RCM_KAFKA_*).
    for name, value in {
        "RCM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "RCM_KAFKA_SSL_CA_FILE": str(ca),
        "RCM_KAFKA_SASL_USERNAME": USER,
        "RCM_KAFKA_SASL_PASSWORD": PASSWORD,
    }.items():
        monkeypatch.setenv(name, value)
    assert await ops.group_lag(bootstrap, ["rcm-tls-test"]) == {"rcm-tls-test": 0}


@pytest.mark.parametrize(
    "case",
    ["plaintext", "wrong password", "untrusted CA", "no SASL"],
)
async def test_insecure_or_wrong_clients_are_refused(tls_broker, case):
    cluster, ca, other_ca = tls_broker
    sec = {
        "plaintext": KafkaSecuritySettings(security_protocol="PLAINTEXT"),
        "wrong password": _sasl_ssl(ca, "not-the-password"),
        "untrusted CA": _sasl_ssl(other_ca),
        "no SASL": KafkaSecuritySettings(security_protocol="SSL", ssl_ca_file=ca),
    }[case]
    with pytest.raises(ConfigurationError, match="Kafka unreachable"):
        await kafka.ensure_topics(cluster.secure_bootstrap, [TOPIC], timeout=8, security=sec)


def test_settings_name_what_is_missing(tmp_path):
    with pytest.raises(ConfigurationError, match="RCM_KAFKA_SASL_USERNAME"):
        KafkaSecuritySettings(security_protocol="SASL_SSL")
    with pytest.raises(ConfigurationError, match="RCM_KAFKA_SSL_CA_FILE"):
        kafka.client_security(
            KafkaSecuritySettings(security_protocol="SSL", ssl_ca_file=tmp_path / "nope.pem")
        )
