"""`rcm submit`: every encounter of every file to the pipeline, published to
rcm.encounter.documented.v1, or POSTed to the intake service (``--url``)."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

from shared.events import EncounterDocumented
from shared.kafka import ensure_topics, start_producer
from shared.settings import ServiceSettings


async def submit_files(
    files: list[str],
    settings: ServiceSettings,
    url: str | None = None,
    encounter_id: str | None = None,
    options: dict | None = None,
    token: str | None = None,
) -> int:
    """Submit each encounter of ``files``; return how many the pipeline took.

    To Kafka: every file is mapped first and nothing is sent if any has a problem (each is
    listed); ``options`` go to the mapping. To the intake service: each file is POSTed (the
    service maps it); its problems are listed and the other files still go. Raises UserError
    after listing the problems.
    """
    from rcm.cli.intake_cmds import encounters_of, report_problems

    if url:
        return await _post_files(files, url.rstrip("/"), token)
    encounters, problems = [], 0
    for f in files:
        mapped = encounters_of(f, encounter_id, **(options or {}))
        problems += report_problems(f, mapped)
        encounters += [m.encounter for m in mapped.encounters]
    if problems:
        from rcm.cli.main import UserError

        raise UserError(f"nothing submitted: {problems} problem(s) in the input")
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


async def _post_files(files: list[str], url: str, token: str | None) -> int:
    from rcm.cli.main import UserError

    taken, failed = 0, 0
    headers = {"authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=120, headers=headers) as client:
        for f in files:
            try:
                body = Path(f).read_bytes()
            except OSError as e:
                raise UserError(f"{f}: cannot read ({e.strerror})") from e
            try:
                r = await client.post(
                    url + "/encounters", content=body, headers={"content-type": "application/json"}
                )
            except httpx.HTTPError as e:
                raise UserError(f"intake service at {url} unreachable: {type(e).__name__}") from e
            try:
                answer = r.json()
            except ValueError:
                answer = {}
            if r.status_code >= 400:
                failed += 1
                detail = answer.get("detail") if isinstance(answer, dict) else None
                for p in (
                    detail if isinstance(detail, list) else [{"path": "$", "message": str(detail)}]
                ):
                    print(f"rcm: {f}: {p.get('path')}: {p.get('message')}", file=sys.stderr)
                print(f"rcm: {f}: HTTP {r.status_code}", file=sys.stderr)
                continue
            outcomes = answer.get("encounters", [answer])
            for o in outcomes:
                taken += o.get("status") == "accepted"
                version = o.get("document_version")
                print(f"{f}: {o.get('encounter_id')}: {o.get('status')} (version {version})")
            for p in answer.get("problems", []):
                failed += 1
                print(f"rcm: {f}: {p.get('path')}: {p.get('message')}", file=sys.stderr)
    if failed:
        raise UserError(f"{failed} problem(s); {taken} encounter(s) accepted")
    return taken
