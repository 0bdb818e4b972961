"""The coder's screens: queue and own figures, next item (long-poll), review with evidence, complete."""

from __future__ import annotations

import asyncio
from datetime import date

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from services.workbench.coalesce import scope
from services.workbench.domain import note as note_view
from services.workbench.domain import review
from services.workbench.domain.figures import coder_figures
from services.workbench.sessions import Session
from services.workbench.upstream import UpstreamError
from services.workbench.web.render import is_htmx, page
from services.workbench.web.security import Ctx, area_guard

router = APIRouter(prefix="/coder")
Coder = area_guard("coding")
SYSTEMS = ("icd10cm", "cpt", "hcpcs")


def _go(request: Request, url: str) -> Response:
    """A redirect that htmx follows as a whole-page navigation."""
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, 303)


@router.get("")
async def queue(request: Request, ctx: Ctx, s: Session = Coder, done: int | None = None):
    depth, stats = await asyncio.gather(
        ctx.shared.get(
            scope(s, "coding-depth"),
            lambda: ctx.upstream.get("coding", "/work/depth", s.access_token),
        ),
        ctx.upstream.get("coding", "/coders/stats", s.access_token),  # a coder's own figures
    )
    mine = next((coder_figures(r) for r in stats if r.get("user_id") == s.user_id), None)
    return page(
        request,
        "coder_queue.html",
        {
            "depth": sorted(depth.items()),
            "total": sum(int(v.get("queued", 0)) for v in depth.values()),
            "mine": mine,
            "done": done,
        },
        user=s,
    )


@router.post("/next")
async def take_next(request: Request, ctx: Ctx, s: Session = Coder):
    """Lease the oldest item of the coder's sites, waiting for one (long-poll) when none is queued."""
    wait = ctx.settings.workbench.next_wait_seconds
    reply = await ctx.upstream.post(
        "coding", "/work/next", s.access_token, params={"wait": wait}, timeout=wait + 10
    )
    if reply.status == 204:
        return page(request, "partials/no_work.html", {"waited": wait}, user=s)
    return _go(request, f"/coder/items/{int(reply.body['work_item_id'])}")


def _age(birth: str | None, on: str | None) -> int | None:
    try:
        b, d = date.fromisoformat(birth or ""), date.fromisoformat(on or "")
    except ValueError:
        return None
    return d.year - b.year - ((d.month, d.day) < (b.month, b.day))


def _rows(suggestions: dict, placed: set[str]) -> tuple[list[dict], list[dict]]:
    dx = [
        {
            "ref": f"dx-{i}",
            "code": d.get("code", ""),
            "label": d.get("description") or "",
            "confidence": d.get("confidence"),
            "source": d.get("source", "note"),
            "has_evidence": f"dx-{i}" in placed,
        }
        for i, d in enumerate(suggestions.get("diagnoses") or [])
    ]
    px = [
        {
            "ref": f"px-{i}",
            "code": p.get("code", ""),
            "label": p.get("label") or "",
            "system": p.get("system", ""),
            "modifiers": ",".join(p.get("modifiers") or []),
            "units": p.get("units", "1"),
            "pointers": p.get("diagnosis_pointers") or [],
            "confidence": p.get("confidence"),
            "source": p.get("source", "note"),
            "has_evidence": f"px-{i}" in placed,
        }
        for i, p in enumerate(suggestions.get("procedures") or [])
    ]
    return dx, px


def _form_state(form) -> dict:
    """The submitted form as {field: last value}, plus the added codes as lists."""
    state = {k: v[-1] for k, v in form.items() if v}
    state["add-dx"] = [c for c in form.get("add-dx", []) if c.strip()]
    state["add-px"] = [c for c in form.get("add-px", []) if c.strip()]
    return state


def _multi(form) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, v in form.multi_items():
        if isinstance(v, str):
            out.setdefault(k, []).append(v)
    return out


def _edits_view(edits: list, reasons: dict[str, str]) -> list[dict]:
    return [
        {
            "code": e.get("code", ""),
            "severity": e.get("severity", "info"),
            "message": e.get("message", ""),
            "reason": reasons.get(e.get("code", ""), ""),
        }
        for e in edits
        if isinstance(e, dict)
    ]


def _reasons(form: dict[str, list[str]]) -> dict[str, str]:
    return {
        k[len("override:") :]: next((x for x in reversed(v) if x.strip()), "")
        for k, v in form.items()
        if k.startswith("override:")
    }


@router.get("/items/{work_item_id}")
async def item_page(request: Request, work_item_id: int, ctx: Ctx, s: Session = Coder):
    item = await ctx.upstream.get("coding", f"/work/{work_item_id}", s.access_token)
    return _item_response(request, s, item, {}, [])


def _item_response(request, s, item: dict, state: dict, messages: list[str], status: int = 200):
    note = item.get("note") or ""
    suggestions = item.get("suggestions") or {}
    evidence, placed = note_view.evidence_spans(note, suggestions)
    context = note_view.context_spans(note, suggestions)
    dx, px = _rows(suggestions, placed)
    enc = item.get("encounter") or {}
    patient = enc.get("patient") or {}
    coverage = next(iter(enc.get("coverages") or []), {}) or {}
    return page(
        request,
        "coder_item.html",
        {
            "item": item,
            "segments": note_view.segments(note, evidence + context),
            "has_context": bool(context),
            "context_offered": "context" in suggestions,
            "dx": dx,
            "px": px,
            "edits": _edits_view(item.get("edits") or [], {}),
            "state": state,
            "messages": messages,
            "facts": {
                "service_date": enc.get("service_date"),
                "encounter_class": enc.get("encounter_class"),
                "place_of_service": enc.get("place_of_service"),
                "visit_type": enc.get("visit_type"),
                "sex": patient.get("sex") or patient.get("gender"),
                "age": _age(patient.get("birth_date"), enc.get("service_date")),
                "payer": coverage.get("payer_id"),
                "em_basis": suggestions.get("em_basis"),
                "mdm": suggestions.get("mdm"),
            },
        },
        user=s,
        status=status,
    )


@router.post("/items/{work_item_id}/check")
async def check(request: Request, work_item_id: int, ctx: Ctx, s: Session = Coder):
    """The coding edits for the codes as the form now stands (htmx, on every change)."""
    form = _multi(await request.form())
    item = await ctx.upstream.get("coding", f"/work/{work_item_id}", s.access_token)
    r = review.read(item.get("suggestions") or {}, form)
    reasons = _reasons(form)
    live = True
    edits = item.get("edits") or []
    if not r.undecided and not r.problems:
        try:
            reply = await ctx.upstream.post(
                "coding",
                f"/work/{work_item_id}/validate",
                s.access_token,
                json={"diagnoses": r.diagnoses, "procedures": r.procedures},
            )
            edits = (reply.body or {}).get("edits", [])
        except UpstreamError as e:
            if not e.missing_endpoint:
                raise
            live = False
    else:
        live = False
    return page(
        request,
        "partials/edits.html",
        {
            "edits": _edits_view(edits, reasons),
            "live": live,
            "undecided": len(r.undecided),
            "problems": r.problems,
        },
        user=s,
    )


@router.post("/codes")
async def search_codes(
    request: Request,
    ctx: Ctx,
    s: Session = Coder,
    q: str = Form("", max_length=64),
    system: str = Form("", max_length=8),
):
    """Code search as the coder types: by code or words, billable codes first (coding's search).

    A POST, so what the coder types never sits in a URL (proxy logs, history)."""
    q = q.strip()
    results: list = []
    unavailable = False
    if len(q) >= 2:
        try:
            results = await ctx.upstream.get(
                "coding",
                "/codes/search",
                s.access_token,
                params={"q": q, "system": system if system in SYSTEMS else None, "limit": 20},
            )
        except UpstreamError as e:
            if not e.missing_endpoint:
                raise
            unavailable = True
    return page(
        request,
        "partials/code_results.html",
        {"results": results or [], "q": q, "unavailable": unavailable},
        user=s,
    )


@router.post("/items/{work_item_id}/renew")
async def renew(request: Request, work_item_id: int, ctx: Ctx, s: Session = Coder):
    form = await request.form()
    token = form.get("lease_token")
    try:
        reply = await ctx.upstream.post(
            "coding", f"/work/{work_item_id}/renew", s.access_token, json={"lease_token": token}
        )
    except UpstreamError as e:
        if e.missing_endpoint:
            message = "The coding service offers no lease renewal yet."
        elif e.status == 409:
            message = e.message
        else:
            raise
        return page(
            request,
            "partials/lease.html",
            {
                "expires": form.get("expires") or None,
                "message": message,
                "work_item_id": work_item_id,
            },
            user=s,
        )
    return page(
        request,
        "partials/lease.html",
        {
            "expires": (reply.body or {}).get("lease_expires_at"),
            "message": "Lease extended.",
            "work_item_id": work_item_id,
        },
        user=s,
    )


@router.post("/items/{work_item_id}/complete")
async def complete(request: Request, work_item_id: int, ctx: Ctx, s: Session = Coder):
    """Complete with the coder's decisions, then lease the next item (complete-and-next)."""
    form = _multi(await request.form())
    item = await ctx.upstream.get("coding", f"/work/{work_item_id}", s.access_token)
    r = review.read(item.get("suggestions") or {}, form)
    messages: list[str] = []
    if r.undecided:
        messages.append(
            f"Decide every suggestion first: {len(r.undecided)} still open "
            f"({', '.join(r.undecided[:6])})."
        )
    messages += r.problems
    if messages:
        return _outcome(request, s, form, item, messages, [])
    lease_token = (form.get("lease_token") or [""])[-1]
    try:
        await ctx.upstream.post(
            "coding",
            f"/work/{work_item_id}/complete",
            s.access_token,
            json={
                "lease_token": lease_token,
                "diagnoses": r.diagnoses,
                "procedures": r.procedures,
                "overrides": r.overrides,
            },
        )
    except UpstreamError as e:
        if e.status == 422 and isinstance(e.detail, dict) and "edits" in e.detail:
            return _outcome(
                request,
                s,
                form,
                item,
                [e.detail.get("message", "Blocking edits remain.")],
                e.detail["edits"],
            )
        if e.status in (409, 422):
            return _outcome(request, s, form, item, [e.message], [])
        raise
    reply = await ctx.upstream.post("coding", "/work/next", s.access_token, params={"wait": 0})
    if reply.status == 204:
        return _go(request, "/coder?done=1")
    return _go(request, f"/coder/items/{int(reply.body['work_item_id'])}")


def _outcome(request, s, form, item, messages: list[str], blocking: list) -> Response:
    if not is_htmx(request):
        return _item_response(request, s, item, _form_state(form), messages, status=422)
    return page(
        request,
        "partials/outcome.html",
        {"messages": messages, "edits": _edits_view(blocking, _reasons(form))},
        user=s,
    )
