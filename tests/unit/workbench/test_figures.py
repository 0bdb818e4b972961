"""Figures, timelines and traces the screens show, from the services' own answer shapes."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

from services.followup.aging_view import table_json
from services.followup.domain.aging import AgingItem, age_balances
from services.workbench.domain import timeline, trace
from services.workbench.domain.figures import aging_bars, coder_figures, money, queue_totals, rate


def test_coder_figures_from_coding_stats():
    f = coder_figures(
        {"user_id": "u1", "completed": 8, "avg_handling_seconds": 240.0, "changed_suggestions": 2}
    )
    assert (f.completed, f.items_per_hour, f.acceptance_rate) == (8, 15.0, 0.75)
    f = coder_figures(
        {"user_id": "u2", "completed": 0, "avg_handling_seconds": 0, "changed_suggestions": 0}
    )
    assert (f.items_per_hour, f.acceptance_rate) == (None, None)


def test_queue_totals_count_as_rcm_status_does():
    coding = {"north": {"queued": 3, "leased": 2}}
    followup = {
        "north": {
            "denial": {"queued": 1, "leased": 1, "waiting": 2, "urgent": 1, "overdue": 0},
            "no response": {"queued": 4, "leased": 0, "waiting": 0, "urgent": 0, "overdue": 0},
        }
    }
    assert queue_totals(coding) == {"north": 5}
    assert queue_totals(followup) == {"north": 8}
    assert queue_totals({"x": "junk"}) == {}


def test_aging_bars_scale_to_the_largest_bucket():
    as_of = date(2026, 12, 1)

    def item(payer, days_ago, balance):
        return AgingItem(
            payer,
            "north",
            "acct",
            f"C{payer}{days_ago}",
            as_of - timedelta(days=days_ago),
            None,
            Decimal(balance),
        )

    table = age_balances(
        [
            item("ACME", 5, "100.00"),
            item("ACME", 70, "50.00"),
            item("BETA", 200, "25.00"),
            item("BETA", 3, "-10.00"),
        ],
        as_of,
    )
    bars = aging_bars(json.loads(json.dumps(table_json(table))))
    assert [(b.label, b.amount, b.percent) for b in bars["ACME"]] == [
        ("0-30", Decimal("100.00"), 100),
        ("31-60", Decimal("0.00"), 0),
        ("61-90", Decimal("50.00"), 50),
        ("91-120", Decimal("0.00"), 0),
        ("120+", Decimal("0.00"), 0),
    ]
    assert [b.percent for b in bars["BETA"]] == [0, 0, 0, 0, 25]
    assert aging_bars({}) == {}
    assert money("x") == Decimal("0.00") and rate(1, 4) == 0.25 and rate(1, 0) is None


def test_claim_timeline_merges_every_source_in_time_order():
    billing = {
        "history": [
            {
                "status": "submitted",
                "at": "2026-11-01T10:00:00+00:00",
                "detail": {"file_name": "f.837"},
            },
            {"status": "denied", "at": "2026-11-09T08:00:00+00:00", "detail": None},
        ]
    }
    followup = {
        "status_history": [
            {
                "source": "277CA",
                "outcome": "accepted",
                "status_category": "A2",
                "recorded_at": "2026-11-02T09:00:00+00:00",
            }
        ],
        "appeals": [
            {
                "level": 1,
                "filed_by": "biller-north",
                "filed_at": "2026-11-10T12:00:00+00:00",
                "outcome": "overturned",
                "outcome_by": "biller-north",
                "outcome_at": "2026-11-20T12:00:00+00:00",
                "amount_recovered": "80.00",
            }
        ],
    }
    audits = {
        7: [
            {
                "user_id": "biller-north",
                "action": "appeal",
                "detail": {"reason": "documentation attached"},
                "at": "2026-11-10T12:00:01+00:00",
            }
        ]
    }
    entries = timeline.build(billing, followup, audits)
    assert [(e.source, e.title) for e in entries] == [
        ("billing", "837 sent"),
        ("followup", "277CA acknowledgement"),
        ("billing", "denied (835)"),
        ("appeal", "appeal level 1 filed"),
        ("work", "work item 7: appeal"),
        ("appeal", "appeal overturned"),
    ]
    assert entries[0].detail == "file name: f.837"
    assert (
        entries[4].detail == "reason: documentation attached" and entries[4].who == "biller-north"
    )
    assert timeline.build(None, None, {}) == []


def test_trace_bars_from_the_span_file():
    spans = [
        {
            "trace_id": "t1",
            "span_id": "a",
            "parent_id": None,
            "name": "intake",
            "service": "intake",
            "start": 0,
            "end": 10_000_000,
            "status": "OK",
            "attributes": {"rcm.encounter_id": "E1"},
        },
        {
            "trace_id": "t1",
            "span_id": "b",
            "parent_id": "a",
            "name": "code",
            "service": "coding",
            "start": 2_000_000,
            "end": 6_000_000,
            "status": "ERROR",
            "attributes": {},
        },
        {
            "trace_id": "t2",
            "span_id": "c",
            "parent_id": None,
            "name": "batch",
            "service": "billing",
            "start": 8_000_000,
            "end": 20_000_000,
            "status": "UNSET",
            "links": ["b"],
            "attributes": {},
        },
        {
            "trace_id": "t3",
            "span_id": "d",
            "parent_id": None,
            "name": "other",
            "service": "billing",
            "start": 0,
            "end": 1,
            "attributes": {"rcm.encounter_id": "E2"},
        },
    ]
    lines = [json.dumps(s) for s in spans] + ['{"cut mid-wri']
    bars = trace.bars(trace.spans_of(lines, "E1"))
    assert [(b.name, b.depth, b.offset_ms, b.duration_ms, b.failed) for b in bars] == [
        ("intake", 0, 0.0, 10.0, False),
        ("code", 1, 2.0, 4.0, True),
        ("batch", 2, 8.0, 12.0, False),
    ]
    assert (bars[2].left, bars[2].width) == (40.0, 60.0)
    assert trace.bars([]) == []


def test_queue_totals_count_items_waiting_for_an_answer():
    """Coding's items waiting for a provider's answer are open work, as `rcm status` counts."""
    coding = {"north": {"queued": 3, "leased": 2, "waiting": 4}, "south": {"queued": 1}}
    assert queue_totals(coding) == {"north": 9, "south": 1}


def test_claim_timeline_shows_each_remittance():
    entries = timeline.build(
        {"history": [{"status": "submitted", "at": "2026-11-01T10:00:00+00:00"}]},
        None,
        {},
        [
            {
                "received_at": "2026-11-09T10:00:00+00:00",
                "status_code": "4",
                "paid": "0.00",
                "patient_responsibility": "0.00",
                "state": "posted",
                "reason": None,
                "file_name": "era-1.835",
                "trace_number": "TRN1",
            },
            {
                "received_at": "2026-11-20T10:00:00+00:00",
                "status_code": "1",
                "paid": "90.00",
                "patient_responsibility": "10.00",
                "state": "posted",
                "reason": None,
                "file_name": "era-2.835",
                "trace_number": "TRN2",
            },
        ],
    )
    assert [(e.source, e.title) for e in entries] == [
        ("billing", "837 sent"),
        ("payments", "835 remittance: denied"),
        ("payments", "835 remittance: processed as primary"),
    ]
    assert "paid 90.00" in entries[2].detail and "era-2.835" in entries[2].detail
