"""Eligibility in the running intake (docs/eligibility.md): 270s out through the clearinghouse
mailbox, 271s in, results on the encounter.documented event.

- ``gate`` wraps the emitter ``accept`` emits through (its one hook): with
  RCM_INTAKE_ELIGIBILITY_MODE=intake, an encounter whose coverages have no fresh result has a
  270 queued per coverage and its event held (``eligibility_hold``) until the 271s answer or
  ``wait_seconds`` pass; an encounter with fresh results goes out at once with them attached.
- ``apply_271`` (inbound mailbox, kind 271) matches each answer to its check by TRN, judges it
  (``domain.eligibility.flow.judge``), opens registration/review work items and releases the
  held events it completes, in the same transaction.
- ``eligibility_loop`` asks again where the payer could not answer (AAA 42, or no 271 within
  ``response_timeout_seconds``) with backoff, and releases held events whose wait is over:
  they go out with "unverified" for the coverages still unanswered. A later answer is kept
  for reuse and for ``GET /encounters/{id}/eligibility``; the event is not sent again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg

from services.intake import appointments_repository as appointments_repo
from services.intake import eligibility_repository as repo
from services.intake.domain.eligibility import (
    EligibilityRequest,
    build_270,
    match_results,
    read_271,
    requests_for_encounter,
)
from services.intake.domain.eligibility.flow import (
    SETTLED,
    Judgement,
    RetryPolicy,
    attach,
    coverage_key,
    is_fresh,
    judge,
    unverified,
    work_item_message,
)
from services.intake.settings import EligibilitySettings, IntakeSettings
from shared.events import EligibilitySummary, Encounter, EncounterDocumented, Person
from shared.lifecycle import wait_stopped
from shared.logs import log
from shared.mailbox import InboundMailbox, Rejected, add_outbound, file_writer_loop
from shared.messaging import Emitter
from shared.x12 import X12Error

_log = logging.getLogger("rcm.intake.eligibility")
_DIGIT = {"primary": "1", "secondary": "2", "tertiary": "3"}


@dataclass(frozen=True)
class Config:
    settings: EligibilitySettings
    outbound: Path  # the clearinghouse mailbox the 270s go to

    @property
    def retry(self) -> RetryPolicy:
        s = self.settings
        return RetryPolicy(
            timedelta(seconds=s.retry_seconds),
            timedelta(seconds=s.retry_max_seconds),
            s.max_attempts,
        )

    @property
    def fresh_for(self) -> timedelta:
        return timedelta(hours=self.settings.fresh_hours)


_config: Config | None = None  # set by the intake process at start-up (``configure``)


def configure(settings: IntakeSettings) -> None:
    """Switch the flow on for this process: ``accept`` elsewhere (tools, tests) passes through."""
    global _config
    _config = Config(settings.eligibility, settings.outbound_dir)


def current() -> Config | None:
    return _config


# --------------------------------------------------------------------------- requests, 270s


def request_json(r: EligibilityRequest) -> dict:
    """What a retry needs to ask again (PHI: stored only in intake's schema)."""

    def person(p: Person | None) -> dict | None:
        return p.model_dump(mode="json") if p is not None else None

    return {
        "payer_id": r.payer_id,
        "payer_name": r.payer_name,
        "provider_npi": r.provider_npi,
        "provider_name": r.provider_name,
        "member_id": r.member_id,
        "subscriber": person(r.subscriber),
        "service_date": r.service_date.isoformat(),
        "relationship": r.relationship,
        "patient": person(r.patient),
        "group_number": r.group_number,
        "service_types": list(r.service_types),
        "place_of_service": r.place_of_service,
    }


def request_from_json(trace_number: str, d: dict) -> EligibilityRequest:
    return EligibilityRequest(
        trace_number=trace_number,
        payer_id=d["payer_id"],
        payer_name=d["payer_name"],
        provider_npi=d["provider_npi"],
        provider_name=d["provider_name"],
        member_id=d["member_id"],
        subscriber=Person.model_validate(d["subscriber"]),
        service_date=date.fromisoformat(d["service_date"]),
        relationship=d["relationship"],
        patient=Person.model_validate(d["patient"]) if d["patient"] else None,
        group_number=d["group_number"],
        service_types=tuple(d["service_types"]),
        place_of_service=d["place_of_service"],
    )


def _unsendable(r: EligibilityRequest, cfg: Config, now: datetime) -> str | None:
    """Why a 270 cannot carry this request (the writer's message, no value), or None."""
    try:
        _render(cfg, [r], 1, now)
    except ValueError as e:
        return str(e).split(": ", 1)[-1].removeprefix("requests[0]").lstrip(".: ")
    return None


def _render(cfg: Config, requests: Sequence[EligibilityRequest], icn: int, now: datetime) -> str:
    s = cfg.settings
    return build_270(
        requests,
        sender_id=s.sender_id,
        receiver_id=s.receiver_id,
        interchange_control_number=icn,
        group_control_number=icn,
        created_at=now,
        usage=s.usage,
    )


@dataclass(frozen=True)
class Ask:
    """One coverage to ask about: its request (trace number still to assign) and where it goes."""

    request: EligibilityRequest
    key: str
    encounter_id: str
    site_id: str
    sequence: str
    attempt: int = 1
    requested_by: str = "intake"
    retry: RetryPolicy | None = None  # a retry keeps its first 270's policy


async def send(conn: asyncpg.Connection, cfg: Config, asks: Sequence[Ask]) -> list[str]:
    """Queue one 270 for ``asks`` (new trace numbers) and record a check each; the traces."""
    if not asks:
        return []
    icn, serials = await repo.next_numbers(conn, len(asks))
    now = datetime.now(UTC)
    name = _file_of_270(icn)
    requests, checks = [], []
    for a, n in zip(asks, serials, strict=True):
        trace = f"RCM{n:010d}-{_DIGIT.get(a.sequence, '1')}"
        requests.append(replace(a.request, trace_number=trace))
        checks.append(
            repo.NewCheck(
                trace,
                a.key,
                a.encounter_id,
                a.site_id,
                a.sequence,
                a.request.payer_id,
                a.request.payer_name,
                a.request.service_date,
                request_json(a.request),
                a.attempt,
                a.requested_by,
                name,
                a.retry or cfg.retry,
            )
        )
    await add_outbound(conn, repo.S, cfg.outbound, name, _render(cfg, requests, icn, now))
    await repo.insert_checks(conn, checks)
    return [c.trace_number for c in checks]


def asks_for(
    enc: Encounter, cfg: Config, sequences: set[str] | None, requested_by: str
) -> tuple[list[Ask], list[tuple[str, str]]]:
    """The coverages of ``enc`` (those in ``sequences``, or all) as asks, and the ones a 270
    cannot carry as (sequence, why); ("encounter", why) when none can be asked about (no
    coverage, or no billing provider NPI or name: billing holds its claim for those)."""
    now = datetime.now(UTC)
    try:
        requests = requests_for_encounter(
            enc, trace_prefix="T", service_types=cfg.settings.service_type_codes
        )
    except ValueError as e:
        return [], [("encounter", str(e))]
    by_digit = {c.sequence: c for c in enc.coverages}
    asks, bad = [], []
    for r in requests:
        seq = next(s for s, d in _DIGIT.items() if r.trace_number.endswith("-" + d))
        if sequences is not None and seq not in sequences:
            continue
        why = _unsendable(r, cfg, now)
        if why is not None:
            bad.append((seq, why))
            continue
        key = coverage_key(enc.site_id, enc.patient.patient_id, by_digit[seq], enc.service_date)
        asks.append(Ask(r, key, enc.encounter_id, enc.site_id, seq, requested_by=requested_by))
    return asks, bad


async def open_unsendable(
    conn: asyncpg.Connection, enc: Encounter, bad: Sequence[tuple[str, str]]
) -> None:
    """A registration item per coverage no 270 can be written for (a member id or the
    subscriber's name and birth date missing)."""
    payers = {c.sequence: c for c in enc.coverages}
    for seq, why in bad:
        cov = payers.get(seq)
        if cov is None:
            continue
        await repo.open_work_item(
            conn,
            site_id=enc.site_id,
            encounter_id=enc.encounter_id,
            sequence=seq,
            payer_id=cov.payer_id,
            kind="registration",
            reason_code="NOT_SENT",
            message=f"{cov.payer_name} ({seq} coverage): no 270 can be sent: {why}"[:500],
            trace_number="",
        )


# --------------------------------------------------------------------------- the gate in accept


def _fresh(row: asyncpg.Record | None, cfg: Config, now: datetime) -> bool:
    if row is None:
        return False
    return is_fresh(row["state"], row["answered_at"], now, cfg.fresh_for)


def _summary_of(row: asyncpg.Record | None) -> EligibilitySummary:
    if row is not None and row["state"] == "answered" and row["summary"]:
        return EligibilitySummary.model_validate_json(row["summary"])
    return unverified()


class Gate:
    """What ``accept`` emits through: documented encounters are kept until ``settle``, which
    attaches fresh results, asks the payers (mode intake) and holds or emits each."""

    def __init__(self, emitter: Emitter, cfg: Config | None):
        self.emitter = emitter
        self.cfg = cfg
        self.waiting: list[tuple[EncounterDocumented, str | None]] = []

    def emit(self, event, *, cause=None, traceparent: str | None = None) -> None:
        on = self.cfg is not None and self.cfg.settings.mode != "off"
        if on and isinstance(event, EncounterDocumented) and event.payload.coverages:
            self.waiting.append((event, traceparent))
        else:
            self.emitter.emit(event, cause=cause, traceparent=traceparent)

    async def settle(self, conn: asyncpg.Connection) -> None:
        """Attach, ask, hold or emit what was emitted; call before the emitter is flushed."""
        waiting, self.waiting = self.waiting, []
        cfg = self.cfg
        if not waiting or cfg is None:
            return
        now = datetime.now(UTC)
        ask_now = cfg.settings.mode == "intake"
        keys: list[dict[str, str]] = []
        for event, _ in waiting:
            enc = event.payload
            keys.append(
                {
                    c.sequence: coverage_key(
                        enc.site_id, enc.patient.patient_id, c, enc.service_date
                    )
                    for c in enc.coverages
                }
            )
        latest = await repo.latest_by_key(conn, [k for ks in keys for k in ks.values()])
        # Only a holding instance (mode intake, a wait) reads them: one query less per batch.
        holding = ask_now and cfg.settings.wait_seconds > 0
        held = (
            await repo.held_encounters(conn, [e.encounter_id for e, _ in waiting])
            if holding
            else set()
        )
        asks: list[Ask] = []
        asked: set[str] = set()
        holds = []
        for (event, traceparent), ks in zip(waiting, keys, strict=True):
            enc = event.payload
            summaries: dict[str, EligibilitySummary | None] = {}
            missing: set[str] = set()
            pending = False
            for seq, key in ks.items():
                row = latest.get(key)
                if _fresh(row, cfg, now):
                    summaries[seq] = _summary_of(row)
                elif key in asked or (row is not None and row["state"] in ("sent", "retry")):
                    summaries[seq], pending = unverified(), True
                elif ask_now:
                    missing.add(seq)
                else:  # on demand: nothing asked, nothing known
                    summaries[seq] = None
            if missing:
                new, bad = asks_for(enc, cfg, missing, "intake")
                await open_unsendable(conn, enc, bad)
                for seq, _ in bad:
                    summaries[seq] = unverified()
                for a in new:
                    summaries[a.sequence] = unverified()
                    if a.key not in asked:
                        asked.add(a.key)
                        asks.append(a)
                pending = pending or bool(new)
            wait = cfg.settings.wait_seconds
            if ask_now and wait > 0 and (pending or enc.encounter_id in held):
                held.add(enc.encounter_id)  # a later version in this batch waits behind it
                holds.append(
                    (
                        event.event_id,
                        enc.encounter_id,
                        enc.document_version,
                        json.dumps(ks),
                        event.to_json().decode(),
                        traceparent,
                        now + timedelta(seconds=wait),
                    )
                )
                continue
            if any(v is not None for v in summaries.values()):
                event = _with(event, summaries)
            self.emitter.emit(event, traceparent=traceparent)
        await send(conn, cfg, asks)
        if holds:
            await repo.hold(conn, holds)


def _with(event: EncounterDocumented, summaries) -> EncounterDocumented:
    return event.model_copy(update={"payload": attach(event.payload, summaries)})


def gate(emitter: Emitter) -> Gate:
    """The hook ``accept`` emits through (a pass-through unless ``configure``d)."""
    return Gate(emitter, _config)


# --------------------------------------------------------------------------- held events


async def release(conn: asyncpg.Connection, emitter: Emitter, encounter_ids: Sequence[str]) -> int:
    """Emit the held events of these encounters that are complete (every coverage settled)
    or due, oldest version first; a version that must still wait keeps the later ones."""
    if not encounter_ids:
        return 0
    rows = await repo.holds_of(conn, encounter_ids)
    keys = [k for r in rows for k in json.loads(r["coverage_keys"]).values()]
    latest = await repo.latest_by_key(conn, keys)
    released, blocked = [], set()
    for r in rows:
        if r["encounter_id"] in blocked:
            continue
        ks: dict[str, str] = json.loads(r["coverage_keys"])
        settled = all(
            (row := latest.get(k)) is not None and row["state"] in SETTLED for k in ks.values()
        )
        if not (settled or r["due"]):
            blocked.add(r["encounter_id"])
            continue
        event = EncounterDocumented.model_validate_json(r["event"])
        summaries = {seq: _summary_of(latest.get(k)) for seq, k in ks.items()}
        emitter.emit(_with(event, summaries), traceparent=r["traceparent"])
        released.append(r["event_id"])
    await repo.unhold(conn, released)
    return len(released)


# --------------------------------------------------------------------------- 271s in


async def record(
    conn: asyncpg.Connection, c: asyncpg.Record, j: Judgement, now: datetime, file: str | None
) -> None:
    """Store a check's judgement, with the work item it opens or the items it resolves."""
    await repo.record_judgement(conn, c["trace_number"], j, now, file)
    if j.work_item is not None:
        code = j.reason_code or "--"
        await repo.open_work_item(
            conn,
            site_id=c["site_id"],
            encounter_id=c["encounter_id"],
            sequence=c["sequence"],
            payer_id=c["payer_id"],
            kind=j.work_item,
            reason_code=code,
            message=work_item_message(
                j.work_item, code, j.reason or "", c["payer_name"], c["sequence"]
            ),
            trace_number=c["trace_number"],
        )
    elif j.state == "answered":
        await repo.resolve_work_items(conn, c["encounter_id"], c["sequence"])


def _file_of_270(icn: int) -> str:
    """The outbound name of the 270 interchange ``icn`` (a 271's BHT03 echoes the ICN)."""
    return f"270_{icn:09d}.x12"


def _interchange_of(file_name: str | None) -> int | None:
    m = re.fullmatch(r"270_(\d{9})\.x12", file_name or "")
    return int(m.group(1)) if m else None


async def apply_271(conn: asyncpg.Connection, text: str, file_name: str, emitter: Emitter) -> None:
    """Judge each answer of a 271 file by its check's TRN (under the check's own retry
    policy); release the held events it completes. An unreadable file goes to failed/."""
    try:
        response = read_271(text)
    except X12Error as e:
        raise Rejected(f"not a readable 271: {e}") from e
    traces = {t for r in response.results for t in r.trace_numbers}
    inquiries = [_file_of_270(n) for n in response.rejected_interchanges]
    checks = await repo.checks_for_answer(conn, sorted(traces), inquiries)
    sent_in = {
        c["trace_number"]: n for c in checks if (n := _interchange_of(c["file_name"])) is not None
    }
    matched = match_results([c["trace_number"] for c in checks], response.results, sent_in)
    now = datetime.now(UTC)
    encounters = []
    for c in checks:
        result = matched.get(c["trace_number"])
        if result is None:
            continue
        j = judge(result, c["attempt"], repo.policy_of(c), now.date())
        if c["state"] == "retry" and j.state == "retry":
            continue  # a late "still down" changes nothing: the retry is already due
        await record(conn, c, j, now, file_name)
        encounters.append(c["encounter_id"])
    if len(checks) < len(traces):
        log(
            _log,
            logging.INFO,
            "271 answers with no waiting check (answered before, or not ours)",
            file_name=file_name,
            count=len(traces) - len(checks),
        )
    # A check an appointment sent answers an encounter documented while it was on its way.
    encounters += await appointments_repo.held_waiting_on(conn, [c["trace_number"] for c in checks])
    await release(conn, emitter, encounters)


# --------------------------------------------------------------------------- background


async def pass_once(pool: asyncpg.Pool, cfg: Config) -> int:
    """One look at what waits: overdue 270s judged unanswered, due retries sent, due held
    events released. Returns the number of events emitted."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        timeout = timedelta(seconds=cfg.settings.response_timeout_seconds)
        for c in await repo.overdue_sent(conn, timeout):
            j = judge(None, c["attempt"], repo.policy_of(c), now.date())
            await record(conn, c, j, now, None)
    async with pool.acquire() as conn, conn.transaction():
        due = await repo.due_retries(conn)
        asks = [
            Ask(
                request_from_json("T", json.loads(c["request"])),
                c["coverage_key"],
                c["encounter_id"],
                c["site_id"],
                c["sequence"],
                attempt=c["attempt"] + 1,
                requested_by="retry",
                retry=repo.policy_of(c),
            )
            for c in due
        ]
        await send(conn, cfg, asks)
        await repo.mark_retried(conn, [c["trace_number"] for c in due])
    emitter = Emitter(repo.S)
    async with pool.acquire() as conn, conn.transaction():
        await release(conn, emitter, await repo.due_holds(conn))
        return await emitter.flush(conn)


async def eligibility_loop(rt) -> None:
    """Intake's eligibility work (unless the mode is off): 271s from the inbound mailbox,
    270s to the outbound one, retries and held events."""
    cfg = current()
    if cfg is None or cfg.settings.mode == "off":
        return
    wake = asyncio.Event()
    box = InboundMailbox(
        rt.settings.inbound_dir,
        frozenset({"271"}),
        repo.S,
        apply_271,
        on_commit=rt.relay.notify,
        settings=rt.settings.mailbox,
    )

    async def passes() -> None:
        from services.intake.appointments import batch_pass  # (it builds on this module)

        while not rt.stop.is_set():
            try:
                await batch_pass(rt.pool, cfg)  # scheduled visits entering the window
                if await pass_once(rt.pool, cfg):
                    rt.relay.notify()
            except (OSError, asyncpg.PostgresConnectionError) as e:  # away: try again later
                log(_log, logging.WARNING, "eligibility pass failed", error_type=type(e).__name__)
            wake.set()  # retries may have queued 270s
            await wait_stopped(rt.stop, cfg.settings.poll_seconds)

    async with asyncio.TaskGroup() as tg:
        tg.create_task(box.run(rt.pool, rt.stop, rt.settings.mailbox.poll_seconds))
        tg.create_task(file_writer_loop(rt.pool, repo.S, rt.stop, wake, interval=0.2))
        tg.create_task(passes())
