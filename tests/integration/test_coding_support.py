"""Helpers of the coding integration tests: encounters sent the ways the pipeline gets them,
coders' and the EHR integration's clients, and the events coding published."""

from __future__ import annotations

import time
import uuid

import httpx
from aiokafka import AIOKafkaConsumer

from shared.events import Encounter, EncounterDocumented, parse_event
from shared.kafka import start_producer
from tests.integration.pipeline_support import RECENT, wait_for

VAGUE = "Patient seen today. Discussed plan. Follow up as needed."
NPI = "1234567893"


def native(site: str, encounter_id: str, note: str | None, member_id: str = "M123") -> dict:
    """An encounter as an EHR sends it in rcm's native JSON (intake's POST /encounters)."""
    return {
        "encounter_id": encounter_id,
        "site_id": site,
        "service_date": RECENT.isoformat(),
        "visit_type": "established",
        "billing_provider": {
            "name": "QA Clinic",
            "npi": NPI,
            "tax_id": "123456789",
            "address": {
                "line1": "1 Main St",
                "city": "Columbus",
                "state": "OH",
                "postal_code": "432151407",
            },
        },
        "rendering_provider": {"npi": NPI, "first_name": "Ann", "last_name": "Lee"},
        "patient": {
            "patient_id": f"MRN-{encounter_id}",
            "first_name": "Test",
            "last_name": "Patient",
            "birth_date": "1980-02-03",
            "gender": "F",
        },
        "coverages": [{"payer_id": "AETNA1", "payer_name": "Aster Health", "member_id": member_id}],
        "note": note,
    }


def client(pipeline, url: str, user: str, role: str, sites: list[str]) -> httpx.AsyncClient:
    token = pipeline.token(user=user, role=role, sites=sites)
    return httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=30)


def coder(pipeline, user: str, sites: list[str], role: str = "coder") -> httpx.AsyncClient:
    return client(pipeline, pipeline.coding_url, user, role, sites)


async def post_to_intake(pipeline, body: dict) -> dict:
    """Send one encounter to intake as the site's EHR feed; intake's answer."""
    async with client(
        pipeline, pipeline.intake_url, "ehr-feed", "integration", [body["site_id"]]
    ) as c:
        r = await c.post("/encounters", json=body)
    assert r.status_code == 202, r.text
    return r.json()


async def publish(pipeline, *encounters: Encounter) -> list[uuid.UUID]:
    """encounter.documented events straight onto the topic coding consumes (as intake's relay
    would publish them); their event ids."""
    producer = await start_producer(pipeline.endpoints["kafka"])
    try:
        ids = []
        for enc in encounters:
            event = EncounterDocumented(
                site_id=enc.site_id, encounter_id=enc.encounter_id, payload=enc
            )
            await (await producer.send(event.topic, event.to_json(), key=event.key()))
            ids.append(event.event_id)
        return ids
    finally:
        await producer.stop()


async def applied(pipeline, event_id: uuid.UUID) -> None:
    """Wait until coding has taken the event (its inbox row committed with its effects)."""
    await wait_for(
        pipeline.dsn,
        "SELECT count(*) FROM coding.inbox WHERE event_id = $1",
        event_id,
        predicate=lambda n: n == 1,
    )


async def events_of(pipeline, topic: str, encounter_id: str, n: int, timeout: float = 30):
    """The first ``n`` events of ``topic`` for the encounter (read from the beginning)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=pipeline.endpoints["kafka"],
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    found = []
    try:
        deadline = time.monotonic() + timeout
        while len(found) < n and time.monotonic() < deadline:
            for _tp, msgs in (await consumer.getmany(timeout_ms=500)).items():
                found += [parse_event(m.value) for m in msgs if m.key == encounter_id.encode()]
    finally:
        await consumer.stop()
    assert len(found) >= n, f"{len(found)} of {n} events of {topic} for {encounter_id}"
    return found
