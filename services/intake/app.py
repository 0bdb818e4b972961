"""Intake service wiring: HTTP intake of encounter documents, HL7 v2 over MLLP (when
RCM_INTAKE_MLLP_PORT is set) and HTTP (``POST /hl7``), and the master data registries.

Intake consumes no topic: what it receives is versioned in its schema and emitted as
``encounter.documented`` through its outbox and relay.
"""

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path

from services.intake import eligibility_flow
from services.intake.accept import AcceptQueue
from services.intake.api import create_app
from services.intake.domain.problems import IntakeError
from services.intake.hl7_intake import PARSE_IN_THREAD_BYTES, Hl7Intake
from services.intake.mapping import Codes, load_codes
from services.intake.mllp import Frame, MllpServer, server_tls
from services.intake.registry_cache import RegistryCache
from services.intake.settings import IntakeSettings
from shared.service import Runtime, ServiceSpec
from shared.settings import ConfigurationError


@dataclass
class IntakeContext:
    registry: RegistryCache  # sites and payers the mapping fills missing data from
    codes: Codes  # concept maps and the SNOMED CT map
    acceptor: AcceptQueue  # concurrent requests' encounters, one transaction for all waiting
    hl7: Hl7Intake  # HL7 v2 messages (MLLP, POST /hl7): stored, assembled, emitted, then ACKed
    mllp: MllpServer | None = None  # listening when RCM_INTAKE_MLLP_PORT is set


async def build_context(rt: Runtime) -> IntakeContext:
    """Read the code translation files once; a bad one stops the start naming the file. With
    RCM_INTAKE_MLLP_PORT the listener binds here: a port in use stops the start too."""
    cfg = rt.settings.codes
    try:
        codes = load_codes(cfg.concept_map_files(), cfg.snomed_map)
    except OSError as e:
        raise ConfigurationError(f"intake code files: cannot read {e.filename}") from e
    except IntakeError as e:
        first = e.errors[0]
        raise ConfigurationError(
            f"intake code files: {first['path']}: {first['message']}"
            f" ({len(e.errors)} problem(s); RCM_INTAKE_CONCEPT_MAPS / RCM_INTAKE_SNOMED_MAP)"
        ) from e
    eligibility_flow.configure(rt.settings)
    registry = RegistryCache()
    ctx = IntakeContext(
        registry=registry,
        codes=codes,
        acceptor=AcceptQueue(rt.pool, rt.relay.notify, source="http"),
        hl7=Hl7Intake(rt.pool, registry, codes, rt.settings.hl7, rt.relay.notify),
    )
    cfg = rt.settings.mllp
    rt.settings.check_hl7()  # again: `rcm serve intake --mllp-port` sets the port afterwards
    if cfg.port is not None:
        tls = server_tls(cfg.tls_cert, cfg.tls_key, cfg.tls_client_ca) if cfg.tls else None
        ctx.mllp = MllpServer(
            _frame_handler(rt, ctx),
            host=cfg.host,
            port=cfg.port,
            max_frame_bytes=cfg.max_frame_bytes,
            idle_timeout=cfg.idle_timeout_seconds,
            max_connections=cfg.max_connections,
            tls=tls,
        )
        try:
            await ctx.mllp.start()
        except OSError as e:
            raise ConfigurationError(
                f"RCM_INTAKE_MLLP_PORT: cannot listen on {cfg.host}:{cfg.port} ({e.strerror})"
            ) from e
    return ctx


def _frame_handler(rt: Runtime, ctx: IntakeContext):
    """One MLLP frame -> its ACK, once the message is committed (None: not stored)."""
    cfg = rt.settings.mllp

    async def handle(frame: Frame) -> bytes | None:
        registry = await ctx.registry.get(rt.pool)
        if frame.oversize:
            incoming = ctx.hl7.read_oversize(frame.data, cfg.max_frame_bytes)
        elif len(frame.data) > PARSE_IN_THREAD_BYTES:
            incoming = await asyncio.to_thread(ctx.hl7.read_frame, frame.data, registry)
        else:
            incoming = ctx.hl7.read_frame(frame.data, registry)
        try:
            [answer] = await ctx.hl7.take([incoming])
        except Exception:  # not stored (logged): no ACK, the sender sends it again
            return None
        if cfg.ack_delay_seconds:  # test hook: a crash after the commit, before the ACK
            await asyncio.sleep(cfg.ack_delay_seconds)
        return answer.ack_bytes()

    return handle


async def accept_loop(rt: Runtime) -> None:
    """Applies what the HTTP API and the MLLP listener receive: FHIR encounters and HL7 v2
    messages, each a transaction per batch of what is waiting."""
    ctx: IntakeContext = rt.context
    async with asyncio.TaskGroup() as tg:  # one failing stops the other: restarted together
        tg.create_task(ctx.acceptor.run(rt.stop))
        tg.create_task(ctx.hl7.run(rt.stop))


async def mllp_loop(rt: Runtime) -> None:
    """Keeps the MLLP listener open until the service stops."""
    server = rt.context.mllp
    if server is None:
        return
    try:
        await rt.stop.wait()
    finally:
        with contextlib.suppress(Exception):
            await server.close()


def spec() -> ServiceSpec:
    return ServiceSpec(
        name="intake",
        schema="intake",
        package_dir=Path(__file__).parent,
        settings=IntakeSettings,
        api=create_app,
        build_context=build_context,
        loops=[accept_loop, mllp_loop, eligibility_flow.eligibility_loop],
    )
