"""A development certificate authority for the local stack's TLS options.

One CA (``ca.pem``) signs a server certificate for this machine (``localhost`` and
``127.0.0.1``), so a client can verify the server fully (Postgres ``sslmode=verify-full``,
HTTPS, Kafka SSL) against the CA file, as it would against a hospital's own CA. Keys are
P-256, private keys written 0600; made once per directory and reused. The CA's key is not
kept: a new server certificate means a new CA (development only).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

VALID_DAYS = 30


@dataclass(frozen=True)
class LocalPki:
    """Paths of the CA certificate, the server's certificate and key, and a PEM keystore
    (key, then chain) for Kafka's ``ssl.keystore.type=PEM``."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    keystore_file: Path


def ensure_pki(directory: Path, ca_name: str = "rcm development CA") -> LocalPki:
    """The CA and server certificate under ``directory``: made on first use, then reused while
    they have a day left."""
    pki = LocalPki(
        directory / "ca.pem",
        directory / "server.crt",
        directory / "server.key",
        directory / "server-keystore.pem",
    )
    if all(p.exists() for p in (pki.ca_file, pki.cert_file, pki.key_file, pki.keystore_file)):
        if _valid_for_a_day(pki.cert_file):
            return pki
    _make(directory, pki, ca_name)
    return pki


def _valid_for_a_day(cert_file: Path) -> bool:
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    except (OSError, ValueError):
        return False
    return cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > dt.timedelta(days=1)


def _make(directory: Path, pki: LocalPki, ca_name: str) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name(ca_name))
        .issuer_name(name(ca_name))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    leaf = (
        x509.CertificateBuilder()
        .subject_name(name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    _write(pki.ca_file, ca.public_bytes(pem), 0o644)
    _write(pki.cert_file, leaf.public_bytes(pem) + ca.public_bytes(pem), 0o644)
    _write(pki.key_file, key_pem, 0o600)
    _write(pki.keystore_file, key_pem + leaf.public_bytes(pem) + ca.public_bytes(pem), 0o600)


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    tmp.replace(path)
