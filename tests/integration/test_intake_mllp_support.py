"""Helpers of the MLLP tests: intake processes with a listener (beside the session's
pipeline), the hand-written visit moved to a recent date under a fresh visit number, TLS
certificates, and database look-ups."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx

from rcm.localstack.procs import free_port
from rcm.localstack.supervisor import ServiceProcess
from tests.integration.pipeline_support import RECENT, fetchval
from tests.unit.intake_hl7v2.hl7v2_support import MESSAGES

# Readiness that the real-world visits (unknown facilities: site "unassigned") never meet, so
# they stay in intake; the hand-written site's visits are released on a note plus charges.
SETTINGS = {
    "RCM_INTAKE_HL7_FACILITIES": "NORTHGATE=north-clinic",
    "RCM_INTAKE_HL7_READINESS": "registration+discharge+signed_note+charges",
    "RCM_INTAKE_HL7_SITE_READINESS": "north-clinic=note+charges",
}
PHI = (b"Quinlan", b"Harriet", b"19800314", b"Larkspur", b"BLX998877", b"MRN10001")


@dataclass
class Intake:
    """An intake process with an MLLP listener."""

    process: ServiceProcess
    mllp_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.process.http_port}"

    async def restart(self) -> None:
        """Start (again); returns once it answers /health (its listener is bound by then)."""
        self.process.start()
        async with httpx.AsyncClient(timeout=5) as client:
            for _ in range(600):
                if not self.process.alive():
                    tail = self.process.log_path.read_text(errors="replace")[-1500:]
                    raise RuntimeError(f"{self.process.label} exited during start-up:\n{tail}")
                try:
                    if (await client.get(self.url + "/health")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        raise RuntimeError(f"{self.process.label} not healthy after 120 s")

    def stop(self, pipeline) -> None:
        self.process.stop()
        pipeline.supervisor.processes.remove(self.process)


async def start_intake(pipeline, instance: int, **env: str) -> Intake:
    """A new intake process (``rcm serve intake``) of the session's pipeline, listening for
    MLLP on a free port, with ``env`` on top of ``SETTINGS``."""
    port = free_port()
    sp = pipeline.supervisor.add(
        "intake",
        instance=instance,
        http=True,
        extra_env={**SETTINGS, "RCM_INTAKE_MLLP_PORT": str(port), **env},
    )
    intake = Intake(sp, port)
    await intake.restart()
    return intake


def visit(run: str, day: date = RECENT, names=("adt_a04", "mdm_t02", "dft_p03")) -> list[bytes]:
    """The hand-written ADT^A04, MDM^T02 and DFT^P03 of one visit (tests/unit/intake_hl7v2),
    under visit number ``V<run>`` (the encounter id) and moved to ``day``."""
    out = []
    for name in names:
        data = (MESSAGES / f"visit_v251_{name}.hl7").read_bytes()
        data = data.replace(b"V20260511-01", f"V{run}".encode())
        out.append(data.replace(b"20260511", day.strftime("%Y%m%d").encode()))
    return out


def new_run() -> str:
    return uuid.uuid4().hex[:10].upper()


async def stored(dsn: str, control_id: str, facility: str = "NORTHGATE") -> int:
    return await fetchval(
        dsn,
        "SELECT count(*) FROM intake.hl7_message WHERE facility = $1 AND control_id = $2",
        facility,
        control_id,
    )


async def versions(dsn: str, encounter_id: str) -> int:
    return await fetchval(
        dsn, "SELECT count(*) FROM intake.encounter_document WHERE encounter_id = $1", encounter_id
    )


async def poll(check, timeout: float = 30, interval: float = 0.05):
    """Await ``check()`` until it is truthy; its value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await check()
        if value or loop.time() > deadline:
            return value
        await asyncio.sleep(interval)


def certificates(directory: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate (PEM)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.now(UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def issue(cn, key, issuer, issuer_key, *, ca=False, san=None, usage=None):
        b = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if san:
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
        if usage:
            b = b.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        return b.sign(issuer_key, hashes.SHA256())

    def write(stem: str, cert, key) -> None:
        (directory / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (directory / f"{stem}.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = issue("rcm test CA", ca_key, name("rcm test CA"), ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    san = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    server = issue(
        "localhost", server_key, ca.subject, ca_key, san=san, usage=ExtendedKeyUsageOID.SERVER_AUTH
    )
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = issue(
        "NORTHGATE", client_key, ca.subject, ca_key, usage=ExtendedKeyUsageOID.CLIENT_AUTH
    )
    write("ca", ca, ca_key)
    write("server", server, server_key)
    write("client", client, client_key)
    return {
        k: directory / f
        for k, f in {
            "ca": "ca.pem",
            "cert": "server.pem",
            "key": "server.key",
            "client_cert": "client.pem",
            "client_key": "client.key",
        }.items()
    }
