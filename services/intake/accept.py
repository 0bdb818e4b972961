"""Accepting mapped encounters: versioned, stored and emitted in the caller's transaction.

Every transport (HTTP, bulk import, later the MLLP listener) ends here. Per encounter id:
content never seen is a new version, stored and emitted as ``encounter.documented`` through
the outbox; the same content as the current version is a duplicate (nothing happens);
another site's encounter id is a conflict (nothing happens).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import asyncpg
from opentelemetry import context as otel_context
from opentelemetry import trace

from services.intake import repository as repo
from services.intake.mapping import MappedEncounter, plain
from shared.events import Encounter, EncounterDocumented
from shared.messaging import Emitter
from shared.telemetry import current_traceparent, tracer

Status = Literal["accepted", "duplicate", "conflict"]


def content_hash(enc: Encounter) -> str:
    """SHA-256 of the encounter as intake mapped it, its version number left out."""
    body = enc.model_dump_json(exclude={"document_version"})
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class Outcome:
    encounter_id: str
    site_id: str
    status: Status
    document_version: int | None  # the new version, or the current one when nothing changed
    event_id: uuid.UUID | None = None
    warnings: list = field(default_factory=list)
    missing: list = field(default_factory=list)

    def as_json(self) -> dict:
        out: dict = {"encounter_id": self.encounter_id, "status": self.status}
        if self.event_id is not None:
            out["event_id"] = str(self.event_id)
        out["document_version"] = self.document_version
        if self.status == "conflict":
            out["message"] = "this encounter id belongs to another site's encounter"
        if self.status == "accepted":
            out["warnings"] = [plain(w) for w in self.warnings]
            out["missing"] = [plain(m) for m in self.missing]
        return out


async def accept(
    conn: asyncpg.Connection,
    mapped: Sequence[MappedEncounter],
    emitter: Emitter,
    *,
    source: str,
    own_traces: bool = False,
) -> list[Outcome]:
    """Record and emit ``mapped`` (in order) within the caller's transaction; one outcome each.

    ``own_traces``: each new version starts a trace of its own (a bulk import, a bundle of many
    encounters) instead of continuing the caller's. The caller flushes ``emitter``.
    """
    outcomes: list[Outcome | None] = [None] * len(mapped)
    pending = list(enumerate(mapped))
    while pending:  # an encounter id twice in one call: its versions are recorded in turn
        seen: set[str] = set()
        now, later = [], []
        for i, m in pending:
            (later if m.encounter.encounter_id in seen else now).append((i, m))
            seen.add(m.encounter.encounter_id)
        await _accept_round(conn, now, outcomes, emitter, source, own_traces)
        pending = later
    return outcomes  # type: ignore[return-value]


async def _accept_round(conn, items, outcomes, emitter, source, own_traces) -> None:
    received = [
        repo.Received(
            m.encounter.encounter_id, m.encounter.site_id, content_hash(m.encounter), uuid.uuid4()
        )
        for _, m in items
    ]
    recorded = await repo.record_versions(conn, received)
    documents = []
    t = tracer()
    for (i, m), r in zip(items, received, strict=True):
        enc, got = m.encounter, recorded[r.encounter_id]
        if got.version is None:
            status: Status = "duplicate" if got.current_site == enc.site_id else "conflict"
            outcomes[i] = Outcome(enc.encounter_id, enc.site_id, status, got.current_version)
            continue
        versioned = enc.model_copy(update={"document_version": got.version})
        event = EncounterDocumented(
            event_id=r.event_id,
            site_id=enc.site_id,
            encounter_id=enc.encounter_id,
            payload=versioned,
        )
        span = t.start_span(
            "intake accept",
            context=otel_context.Context() if own_traces else None,
            links=_link_to_current() if own_traces else None,
            attributes={
                "rcm.encounter_id": enc.encounter_id,
                "rcm.site_id": enc.site_id,
                "rcm.document_version": got.version,
                "rcm.source": source,
            },
        )
        emitter.emit(event, traceparent=current_traceparent(span))
        span.end()
        documents.append(
            (
                enc.encounter_id,
                got.version,
                enc.site_id,
                r.content_hash,
                r.event_id,
                source,
                versioned.model_dump_json(),
                json.dumps([plain(w) for w in m.warnings]),
                json.dumps([plain(x) for x in m.missing]),
            )
        )
        outcomes[i] = Outcome(
            enc.encounter_id,
            enc.site_id,
            "accepted",
            got.version,
            r.event_id,
            list(m.warnings),
            list(m.missing),
        )
    await repo.insert_documents(conn, documents)


def _link_to_current() -> list[trace.Link] | None:
    ctx = trace.get_current_span().get_span_context()
    return [trace.Link(ctx)] if ctx.is_valid else None
