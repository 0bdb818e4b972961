"""`rcm submit`: publish encounters to rcm.encounter.documented.v1 (or POST them to the coding API)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from shared.events import EncounterDocumented
from shared.kafka import ensure_topics, start_producer
from shared.settings import ServiceSettings


async def submit_files(files: list[str], settings: ServiceSettings, url: str | None = None) -> int:
    """Validate every file first (nothing is sent if one is bad), then publish them all."""
    from rcm.cli.main import UserError, _encounter

    if url:
        async with httpx.AsyncClient(timeout=30) as client:
            for f in files:
                r = await client.post(
                    url.rstrip("/") + "/encounters",
                    content=Path(f).read_bytes(),
                    headers={"content-type": "application/json"},
                )
                if r.status_code >= 400:
                    raise UserError(
                        f"{f}: HTTP {r.status_code}: {json.dumps(r.json().get('detail'))[:300]}"
                    )
        return len(files)
    encounters = [_encounter(f) for f in files]
    await ensure_topics(settings.kafka_servers)
    producer = await start_producer(settings.kafka_servers)
    try:
        for enc in encounters:
            event = EncounterDocumented(
                site_id=enc.site_id, encounter_id=enc.encounter_id, payload=enc
            )
            await producer.send(
                event.topic,
                event.to_json(),
                key=event.key(),
                headers=[("event_type", event.event_type.encode())],
            )
        await producer.flush()
    finally:
        await producer.stop()
    return len(encounters)
