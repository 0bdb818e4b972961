"""Work items and provider queries as the API answers them."""

from __future__ import annotations

import json

from fastapi.responses import Response


def query_view(q) -> dict:
    """A provider query (question, quoted indicators and answer: PHI)."""

    def at(name: str) -> str | None:
        return q[name].isoformat() if q[name] else None

    return {
        "query_id": q["query_id"],
        "encounter_id": q["encounter_id"],
        "site_id": q["site_id"],
        "status": q["status"],
        "origin": q["origin"],
        "reason": q["reason"],
        "provider_npi": q["provider_npi"],
        "question": q["question"],
        "indicators": json.loads(q["indicators"]),
        "options": json.loads(q["options"]),
        "document_version": q["document_version"],
        "created_by": q["created_by"],
        "created_at": at("created_at"),
        "sent_at": at("sent_at"),
        "escalated_at": at("escalated_at"),
        "answer": q["answer"],
        "addendum": q["addendum"],
        "answered_by": q["answered_by"],
        "answered_at": at("answered_at"),
        "closed_at": at("closed_at"),
        "cancel_reason": q["cancel_reason"],
    }


def item_view(item, queries: list) -> Response:
    """A work item as JSON; the stored documents are spliced in as they are (decoding them to
    re-encode them was most of a lease request's time)."""
    head = json.dumps(
        {
            "work_item_id": item["work_item_id"],
            "encounter_id": item["encounter_id"],
            "site_id": item["site_id"],
            "status": item["status"],
            "lease_token": str(item["lease_token"]) if item["lease_token"] else None,
            "lease_expires_at": item["lease_expires_at"].isoformat()
            if item["lease_expires_at"]
            else None,
            "document_version": item["document_version"],
            "note": item["note"],
            "queries": [query_view(q) for q in queries],
        }
    )
    body = f'{head[:-1]}, "encounter": {item["encounter"]}, "suggestions": {item["suggestions"]}, "edits": {item["edits"]}}}'
    return Response(body, media_type="application/json")
