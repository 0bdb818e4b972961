"""The ``coding.query`` event of a provider query's step (sent, escalated, answered, cancelled)."""

from __future__ import annotations

import json

import asyncpg

from shared.events import ProviderQuery, ProviderQueryPayload
from shared.messaging import Emitter


def emit(emitter: Emitter, q: asyncpg.Record, *, traceparent: str | None = None) -> None:
    """Queue the event of ``q`` (a provider_query row, in its new state) for the outbox, in
    the encounter's trace when ``traceparent`` is given (else the current span's)."""
    payload = ProviderQueryPayload(
        query_id=str(q["query_id"]),
        status=q["status"],
        reason=q["reason"],
        provider_npi=q["provider_npi"],
        question=q["question"],
        indicators=json.loads(q["indicators"]),
        options=json.loads(q["options"]),
        document_version=q["document_version"],
        answer=q["answer"],
        addendum=q["addendum"],
        answered_by=q["answered_by"],
        cancel_reason=q["cancel_reason"],
    )
    emitter.emit(
        ProviderQuery(site_id=q["site_id"], encounter_id=q["encounter_id"], payload=payload),
        traceparent=traceparent,
    )
