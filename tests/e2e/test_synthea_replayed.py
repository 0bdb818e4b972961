"""Issue 17, end to end to the cent: a real Synthea visit, held for missing information, filled
in by a biller, released to the payer and posted.

The Synthea patient of google/fhir-data-pipes (test_missing_information.py) has visits of
2005-2019, past every payer's filing limit today, so on a stack running in real time its
claims can only ever be held for timely filing (that module shows it). This module runs its
own stack the way a test environment replays historical data: the business date is fixed to
2019-10-15 (``RCM_AS_OF``, refused in production; shared/clock.py), a month after the
2019-09-16 wellness visit. The input is unchanged: the bulk-export slice is the same objects.

The path: the site and payer registries are loaded (the EHR route); `rcm import` takes the
slice; a coder completes the encounter; billing holds the claim for what neither the EHR nor
the registries carry (Synthea's practitioner NPI fails the check digit, and there is no
member id); followup's missing-information item names those two fields; the biller fills
them; the claim is released, goes out in an 837 that pyx12 accepts, the payer simulator
answers with an 835, and payments posts it to a balanced ledger.
"""

from __future__ import annotations

import json
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import running_pipeline, stack_settings
from tests.e2e.test_missing_information import (
    PAYER_BODY,
    SITE,
    SITE_BODY,
    client,
    code_waiting,
    export_slice,
    latest_hold_reasons,
    open_items,
    rcm_import,
)
from tests.integration.cob_support import read_outbound
from tests.integration.pipeline_support import fetch, fetchval, wait_for
from tests.x12_support import pyx12_validate

pytestmark = pytest.mark.e2e

VISIT = "0c339e08-27ff-970d-fdcc-a09106172cf6"  # 2019-09-16, wellness visit at PCP103937
AS_OF = "2019-10-15"


@pytest.fixture(scope="module")
def replay():
    """A stack of its own (Kafka, PostgreSQL, every service and the payer simulator) whose
    business date is AS_OF."""
    from rcm import localstack as stack
    from shared.settings import RuntimeSettings, ServiceSettings

    run_dir = Path(tempfile.mkdtemp(prefix="rcm-replay-"))
    base = ServiceSettings(runtime=RuntimeSettings(run_dir=run_dir))
    endpoints = stack.up(base)
    try:
        with running_pipeline(
            stack_settings(run_dir, endpoints),
            endpoints,
            extra_env={"RCM_ENV": "test", "RCM_AS_OF": AS_OF},
        ) as p:
            yield p
    finally:
        stack.down(base)


async def test_a_real_visit_is_held_filled_in_released_sent_and_posted(replay, tmp_path):
    p = replay
    # The EHR route: the site and payer registries hold what Synthea does not send.
    async with client(p, p.intake_url, "supervisor") as i:
        r = await i.put(f"/sites/{SITE}", json={**SITE_BODY, "providers": []})
        assert r.status_code == 200, r.text
        r = await i.put("/payers/UHC01", json=PAYER_BODY)
        assert r.status_code == 200, r.text

    counts = export_slice(tmp_path / "export", [VISIT])
    assert counts["Encounter"] == 1 and counts["Patient"] == 1
    summary = rcm_import(p, tmp_path / "export")
    assert summary["accepted"] == 1 and summary["rejected"] == 0, summary
    await code_waiting(p, [VISIT])

    # Held for the two fields only a biller can supply, named on followup's work item.
    claim_id = await wait_for(
        p.dsn,
        "SELECT claim_id FROM billing.claim WHERE encounter_id = $1 AND status = 'held'"
        " AND site_id = $2",
        VISIT,
        SITE,
        predicate=lambda c: c is not None,
        timeout=90,
    )
    reasons = await latest_hold_reasons(p, claim_id)
    assert "TIMELY_FILING_EXCEEDED" not in reasons, reasons
    await wait_for(
        p.dsn,
        "SELECT count(*) FROM followup.work_item WHERE claim_id = $1"
        " AND category = 'missing information' AND status <> 'resolved'",
        claim_id,
        predicate=lambda n: n == 1,
    )
    [item] = await open_items(p, claim_id)
    assert json.loads(item["evidence"])["missing_fields"] == [
        "rendering_provider.npi",
        "payer.member_id",
    ]

    # The biller fills them: the claim is released.
    async with client(p, p.billing_url, "biller", sites=(SITE,)) as b:
        body = {"rendering_provider": {"npi": "1234567893"}, "payer": {"member_id": "U1"}}
        r = await b.patch(f"/claims/{claim_id}/billing-data", json=body)
        assert r.status_code == 200, r.text
        assert r.json()["status"] != "held", r.text

    # Sent in an 837 the payer accepts, answered with an 835, posted.
    status = await wait_for(
        p.dsn,
        "SELECT status FROM billing.claim WHERE claim_id = $1",
        claim_id,
        predicate=lambda s: s in ("paid", "partially_paid", "denied"),
        timeout=120,
    )
    name = await fetchval(
        p.dsn, "SELECT file_name FROM billing.claim WHERE claim_id = $1", claim_id
    )
    text = await read_outbound(p.settings.outbound_dir, name)
    assert f"CLM*{claim_id}*" in text
    assert "DTP*472*D8*20190916" in text  # the visit's own date of service
    ok, errors = pyx12_validate(text)
    assert ok, errors[:5]

    [paid] = await fetch(
        p.dsn,
        "SELECT payer_id, status_code, charge, paid, patient_responsibility"
        " FROM payments.claim_payment WHERE claim_id = $1 AND state = 'posted'",
        claim_id,
    )
    assert paid["payer_id"] == "UHC01" and paid["charge"] > 0, dict(paid)
    # Deterministic: the simulator decides by its seed and the claim id (from the encounter's).
    assert status in ("paid", "partially_paid") and paid["paid"] > 0, (status, dict(paid))
    entries = await fetch(
        p.dsn,
        "SELECT e.kind, sum(l.amount) AS total FROM payments.journal_entry e"
        " JOIN payments.journal_line l USING (entry_id) WHERE e.claim_id = $1 GROUP BY e.entry_id",
        claim_id,
    )
    kinds = {e["kind"] for e in entries}
    assert {"charge", "payment"} <= kinds, kinds
    assert all(e["total"] == Decimal("0.00") for e in entries)  # every entry balances
    assert (
        await fetch(
            p.dsn,
            "SELECT 1 FROM followup.work_item WHERE claim_id = $1 AND status <> 'resolved'"
            " AND category IN ('missing information', 'timely filing')",
            claim_id,
        )
        == []
    )
