"""Kafka ACLs for the local broker (``SecureListener(acls=True)``), and the ones each rcm service
needs: what docs/security.md tells an operator to grant, made here the same way.

aiokafka's admin client has no ACL calls, and its protocol classes stop at CreateAcls v1, which
Kafka 4 no longer accepts; v2 (the first flexible version) is written here with aiokafka's own
protocol types and sent through its admin client's connection.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    CompactArray,
    CompactString,
    Int8,
    Int16,
    Int32,
    Schema,
    TaggedFields,
)

from rcm.localstack.procs import StackError

# Kafka's enums (org.apache.kafka.common.resource / acl).
RESOURCE = {"topic": 2, "group": 3, "cluster": 4}
PATTERN_LITERAL, PATTERN_PREFIXED = 3, 4
OPERATION = {"read": 3, "write": 4, "describe": 8, "idempotent_write": 12}
PERMISSION_ALLOW = 3


@dataclass(frozen=True)
class Acl:
    """``principal`` (``User:name``) may ``operation`` the ``resource`` named ``name``."""

    principal: str
    resource: str  # topic, group, cluster
    name: str
    operation: str  # read, write, describe, idempotent_write
    prefixed: bool = False


class _CreateAclsResponse_v2(Response):
    API_KEY = 30
    API_VERSION = 2
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "results",
            CompactArray(
                ("error_code", Int16),
                ("error_message", CompactString("utf-8")),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class _CreateAclsRequest_v2(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = 30
    API_VERSION = 2
    RESPONSE_TYPE = _CreateAclsResponse_v2
    SCHEMA = Schema(
        (
            "creations",
            CompactArray(
                ("resource_type", Int8),
                ("resource_name", CompactString("utf-8")),
                ("resource_pattern_type", Int8),
                ("principal", CompactString("utf-8")),
                ("host", CompactString("utf-8")),
                ("operation", Int8),
                ("permission_type", Int8),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class _CreateAcls(Request[_CreateAclsRequest_v2]):
    API_KEY = 30

    def __init__(self, acls: list[Acl]):
        self.acls = acls

    def build(self, request_struct_class):
        return request_struct_class(
            [
                (
                    RESOURCE[a.resource],
                    a.name,
                    PATTERN_PREFIXED if a.prefixed else PATTERN_LITERAL,
                    a.principal,
                    "*",
                    OPERATION[a.operation],
                    PERMISSION_ALLOW,
                    {},
                )
                for a in self.acls
            ],
            {},
        )


async def create_acls(bootstrap: str, acls: list[Acl], **security) -> None:
    """Create ``acls`` as a principal allowed to (the local broker's PLAINTEXT listener)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security)
    await admin.start()
    try:
        response = await admin._send_to_controller(_CreateAcls(acls))
    finally:
        await admin.close()
    failed = [
        (acl, code, message)
        for acl, (code, message, _) in zip(acls, response.results, strict=True)
        if code
    ]
    if failed:
        raise StackError(f"Kafka: creating ACLs failed: {failed[:3]}")


def service_acls(principal: str, group: str, consumes: list[str], emits: list[str]) -> list[Acl]:
    """What one service's principal needs: Write (and Describe) on the topics it emits and their
    ``.dlq`` (dead letters), Read (and Describe) on the topics it consumes, Read on its consumer
    group, and IdempotentWrite on the cluster (its producer is idempotent: aiokafka's
    InitProducerId is refused without it, whatever KIP-679 lets Write on a topic imply)."""
    out = [Acl(principal, "cluster", "kafka-cluster", "idempotent_write")]
    for topic in emits:
        out += [Acl(principal, "topic", topic, op) for op in ("write", "describe")]
    for topic in consumes:
        out += [Acl(principal, "topic", topic, op) for op in ("read", "describe")]
        out += [Acl(principal, "topic", f"{topic}.dlq", op) for op in ("write", "describe")]
    if consumes:
        out.append(Acl(principal, "group", group, "read"))
    return out
