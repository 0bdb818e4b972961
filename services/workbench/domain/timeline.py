"""One claim's whole story, from what billing, followup and payments each answer, in time order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

BILLING_TITLES = {
    "submitted": "837 sent",
    "accepted": "accepted (999/277CA)",
    "rejected": "rejected (999/277CA)",
    "held": "held before sending",
    "paid": "paid (835)",
    "partially_paid": "partially paid (835)",
    "denied": "denied (835)",
    "reversed": "reversed (835)",
    "corrected": "corrected claim sent",
    "voided": "void sent",
    "replaced": "replaced by a corrected claim",
}
STATUS_SOURCES = {
    "276": "276 status inquiry sent",
    "277": "277 status answer",
    "277CA": "277CA acknowledgement",
    "999": "999 acknowledgement",
}


@dataclass(frozen=True)
class Entry:
    at: datetime
    source: str  # billing | followup | appeal | work
    title: str
    detail: str = ""
    who: str = ""


def _when(value) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            d = date.fromisoformat(value)
        except ValueError:
            return None
        parsed = datetime(d.year, d.month, d.day)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _detail(d) -> str:
    if not isinstance(d, dict):
        return ""
    parts = []
    for k, v in d.items():
        if isinstance(v, str | int | float) and not isinstance(v, bool):
            parts.append(f"{k.replace('_', ' ')}: {v}")
        elif isinstance(v, list) and v and all(isinstance(x, str) for x in v):
            parts.append(f"{k.replace('_', ' ')}: {', '.join(v[:8])}")
    return "; ".join(parts[:6])


# 835 claim status codes (CLP02) as a biller reads them.
CLAIM_STATUS = {
    "1": "processed as primary",
    "2": "processed as secondary",
    "3": "processed as tertiary",
    "4": "denied",
    "19": "processed as primary, forwarded",
    "20": "processed as secondary, forwarded",
    "21": "processed as tertiary, forwarded",
    "22": "reversal of previous payment",
    "23": "not our claim, forwarded",
}


def build(
    billing: dict | None,
    followup: dict | None,
    work_audits: dict[int, list],
    remittances: list | None = None,
) -> list[Entry]:
    """Entries from billing's claim history, followup's status history and appeals, the
    audit of each of the claim's work items ({work_item_id: audit rows}) and payments' 835
    claim payments of the claim."""
    out: list[Entry] = []
    for r in remittances or []:
        at = _when(r.get("received_at"))
        if at:
            status = str(r.get("status_code"))
            bits = [
                f"paid {r.get('paid')}",
                f"patient responsibility {r.get('patient_responsibility')}",
                f"{r.get('state')}" + (f" ({r['reason']})" if r.get("reason") else ""),
                f"file {r.get('file_name')}",
                f"trace {r.get('trace_number')}",
            ]
            title = f"835 remittance: {CLAIM_STATUS.get(status, 'status ' + status)}"
            out.append(Entry(at, "payments", title, "; ".join(bits)))
    for h in (billing or {}).get("history") or []:
        at = _when(h.get("at"))
        if at:
            status = str(h.get("status"))
            out.append(
                Entry(at, "billing", BILLING_TITLES.get(status, status), _detail(h.get("detail")))
            )
    for h in (followup or {}).get("status_history") or []:
        at = _when(h.get("recorded_at"))
        if at:
            title = STATUS_SOURCES.get(str(h.get("source")), str(h.get("source")))
            bits = [
                f"{k.replace('_', ' ')}: {h[k]}"
                for k in ("outcome", "status_category", "status_code", "effective_date")
                if h.get(k)
            ]
            out.append(Entry(at, "followup", title, "; ".join(bits)))
    for a in (followup or {}).get("appeals") or []:
        at = _when(a.get("filed_at"))
        if at:
            out.append(
                Entry(
                    at,
                    "appeal",
                    f"appeal level {a.get('level', 1)} filed",
                    "",
                    str(a.get("filed_by") or ""),
                )
            )
        decided = _when(a.get("outcome_at"))
        if decided:
            recovered = a.get("amount_recovered")
            out.append(
                Entry(
                    decided,
                    "appeal",
                    f"appeal {a.get('outcome')}",
                    f"recovered {recovered}" if recovered is not None else "",
                    str(a.get("outcome_by") or ""),
                )
            )
    for item_id, rows in work_audits.items():
        for r in rows or []:
            at = _when(r.get("at"))
            if at:
                out.append(
                    Entry(
                        at,
                        "work",
                        f"work item {item_id}: {str(r.get('action', '')).replace('_', ' ')}",
                        _detail(r.get("detail")),
                        str(r.get("user_id") or ""),
                    )
                )
    return sorted(out, key=lambda e: e.at)
