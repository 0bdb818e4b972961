"""Kafka plumbing: topic creation, the producer, the FastStream broker and batch consumers.

Consumers run in a consumer group per service with ``AckPolicy.NACK_ON_ERROR``:
FastStream commits the offsets of a batch only after the handler returned,
i.e. after the Postgres transaction committed. A handler that raises (database
away) makes FastStream seek back, and the batch is redelivered.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from shared.settings import ConfigurationError, KafkaSecuritySettings
from shared.topics import ALL, dlq, replication

_log = logging.getLogger("rcm.kafka")


def client_security(security: KafkaSecuritySettings | None = None) -> dict:
    """aiokafka keyword arguments for TLS and SASL (``RCM_KAFKA_*``; docs/security.md).

    Every client of rcm (admin, producer, consumers, FastStream broker, lag reader) takes these,
    so one set of settings secures all of them. ``security`` None: read from the environment.
    A CA, certificate or key file that cannot be used is a ConfigurationError naming its setting.
    """
    s = security if security is not None else KafkaSecuritySettings()
    out: dict = {"security_protocol": s.security_protocol}
    if s.security_protocol in ("SSL", "SASL_SSL"):
        out["ssl_context"] = _ssl_context(s)
    if s.security_protocol.startswith("SASL"):
        out |= {
            "sasl_mechanism": s.sasl_mechanism,
            "sasl_plain_username": s.sasl_username,
            "sasl_plain_password": s.sasl_password.get_secret_value() if s.sasl_password else None,
        }
    return out


def _ssl_context(s: KafkaSecuritySettings) -> ssl.SSLContext:
    """Verifies the broker's certificate and host name (the CA file, else the system's store)."""
    try:
        ctx = ssl.create_default_context(cafile=str(s.ssl_ca_file) if s.ssl_ca_file else None)
    except (OSError, ssl.SSLError) as e:
        raise ConfigurationError(
            f"RCM_KAFKA_SSL_CA_FILE unusable ({type(e).__name__}: {e.strerror or e})"
        ) from e
    if s.ssl_cert_file is not None and s.ssl_key_file is not None:
        try:
            ctx.load_cert_chain(str(s.ssl_cert_file), str(s.ssl_key_file))
        except (OSError, ssl.SSLError) as e:
            raise ConfigurationError(
                "RCM_KAFKA_SSL_CERT_FILE / RCM_KAFKA_SSL_KEY_FILE unusable "
                f"({type(e).__name__}: {e.strerror or e})"
            ) from e
    return ctx


def broker_security(security: KafkaSecuritySettings | None = None) -> BaseSecurity | None:
    """The same settings as FastStream's security object."""
    s = security if security is not None else KafkaSecuritySettings()
    opts = client_security(s)
    ctx = opts.get("ssl_context")
    if s.security_protocol == "PLAINTEXT":
        return None
    if s.security_protocol == "SSL":
        return BaseSecurity(ssl_context=ctx)
    cls = {"SCRAM-SHA-512": SASLScram512, "SCRAM-SHA-256": SASLScram256, "PLAIN": SASLPlaintext}[
        s.sasl_mechanism
    ]
    return cls(
        opts["sasl_plain_username"],
        opts["sasl_plain_password"],
        ssl_context=ctx,
        use_ssl=s.security_protocol == "SASL_SSL",
    )


async def ensure_topics(
    bootstrap: str,
    topics: Sequence[str] = (),
    partitions: int = 4,
    timeout: float = 20,
    security: KafkaSecuritySettings | None = None,
) -> None:
    """Create the project's topics and their DLQs if missing (idempotent).

    Each gets as many copies as the cluster has brokers, up to 3, and with 3 copies
    ``min.insync.replicas=2`` (``shared.topics.replication``): with the producers' acks=all a
    write is on two brokers before it is acknowledged, and one broker may go away.
    """
    wanted = list(topics) or [*ALL, *(dlq(t) for t in ALL)]
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=int(timeout * 1000),
        **client_security(security),
    )
    try:
        await asyncio.wait_for(admin.start(), timeout)
    except Exception as e:
        raise _connect_error(bootstrap, e) from e
    try:
        existing = set(await admin.list_topics())
        brokers = len((await admin.describe_cluster())["brokers"])
        factor, min_isr = replication(brokers)
        missing = [
            NewTopic(t, partitions, factor, topic_configs={"min.insync.replicas": str(min_isr)})
            for t in wanted
            if t not in existing
        ]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another process won the race
            await _wait_for_leaders(admin, [t.name for t in missing], timeout)
    finally:
        await admin.close()


async def _wait_for_leaders(admin: AIOKafkaAdminClient, topics: list[str], timeout: float) -> None:
    """New partitions have no leader for a moment; consumers starting then log errors for nothing."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        described = await admin.describe_topics(topics)
        if all(
            t.get("error_code", 0) == 0
            and t["partitions"]
            and all(p["leader"] >= 0 for p in t["partitions"])
            for t in described
        ):
            return
        await asyncio.sleep(0.2)


async def start_producer(
    bootstrap: str, timeout: float = 20, security: KafkaSecuritySettings | None = None
) -> AIOKafkaProducer:
    """An idempotent producer (acks=all: every in-sync replica has the write) batching for
    throughput. ``bootstrap`` may list several brokers; any one that answers will do."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=256 * 1024,
        request_timeout_ms=30000,
        **client_security(security),
    )
    try:
        await asyncio.wait_for(producer.start(), timeout)
    except Exception as e:
        await producer.stop()
        raise _connect_error(bootstrap, e) from e
    return producer


def _connect_error(bootstrap: str, e: BaseException) -> ConfigurationError:
    """One line: a broker that refused the principal (ACLs) is not an unreachable one."""
    name = type(e).__name__
    if name.endswith("AuthorizationFailedError"):
        return ConfigurationError(
            f"Kafka at {bootstrap} refused this service's principal ({name}): its ACLs lack "
            "what it needs (docs/security.md, RCM_KAFKA_SASL_USERNAME)"
        )
    return ConfigurationError(f"Kafka unreachable at {bootstrap}: {name}")


def make_broker(
    bootstrap: str, client_id: str, security: KafkaSecuritySettings | None = None
) -> KafkaBroker:
    """The service's FastStream broker.

    No FastStream telemetry middleware: ``shared.consumer`` makes each event's span (continuing
    its encounter's trace) and one span per batch transaction linked to them; the middleware's
    extra span pair and per-message baggage parsing per batch told an operator nothing more.
    """
    # A list: FastStream takes a comma-separated string for one host.
    servers = [b.strip() for b in bootstrap.split(",") if b.strip()]
    return KafkaBroker(
        servers,
        client_id=client_id,
        logger=None,
        graceful_timeout=15,
        security=broker_security(security),
    )


BatchHandler = Callable[[tuple], Awaitable[None]]


def subscribe_batch(
    broker: KafkaBroker,
    topics: Sequence[str],
    *,
    group_id: str,
    handler: BatchHandler,
    max_records: int = 500,
    batch_timeout_ms: int = 50,
    fetch_min_bytes: int = 1,
    fetch_max_wait_ms: int = 500,
) -> None:
    """Register a batch subscriber that hands the raw ConsumerRecords to ``handler``.

    Bodies are not decoded by FastStream: ``handler`` parses them, so a poison
    message becomes a dead letter instead of a decoder error.
    """

    async def raw_decoder(msg, original=None):  # keep the bytes; we validate ourselves
        return msg.body

    @broker.subscriber(
        *topics,
        group_id=group_id,
        batch=True,
        max_records=max_records,
        batch_timeout_ms=batch_timeout_ms,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=raw_decoder,
        max_poll_interval_ms=10 * 60 * 1000,
        fetch_min_bytes=fetch_min_bytes,
        fetch_max_wait_ms=fetch_max_wait_ms,
    )
    async def on_batch(body: list, message: KafkaMessage) -> None:
        await handler(message.raw_message)
