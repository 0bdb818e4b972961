"""Payments on the real stack when remittances are not tidy: duplicates, reversals, unknown claims,
out-of-balance files, garbage in the mailbox and the LinuxForHealth sample 835s.

Only payments runs (in-process, see ``payments_support``); the books are checked after
each test (``ledger_invariant``).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from shared.mailbox import write_atomically
from shared.x12 import split_segments
from tests.integration import payments_support as harness
from tests.integration.payments_support import (
    RUN,
    Clp,
    D,
    Svc,
    era_835,
    new_id,
    submitted,
)

# The harness fixtures, made visible to this module.
payments = harness.payments
ledger_invariant = harness.ledger_invariant
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("ledger_invariant")]
LFH = Path(__file__).resolve().parents[1] / "fixtures" / "x12" / "835" / "linuxforhealth"


async def _entries(payments, claim_id: str) -> list[tuple[str, str]]:
    rows = await payments.pool.fetch(
        "SELECT kind, source FROM payments.journal_entry WHERE claim_id = $1 ORDER BY entry_id",
        claim_id,
    )
    return [(r["kind"], r["source"]) for r in rows]


async def _entry_lines(payments, source: str) -> list[tuple[str, D]]:
    rows = await payments.pool.fetch(
        "SELECT l.account, l.amount FROM payments.journal_entry e JOIN"
        " payments.journal_line l USING (entry_id) WHERE e.source = $1"
        " ORDER BY l.account",
        source,
    )
    return [(r["account"], r["amount"]) for r in rows]


def _paid_150(claim: str) -> Clp:
    return Clp(
        claim,
        D("150.00"),
        D("80.00"),
        pr=D("20.00"),
        cas=[("CO", "45", D("50.00")), ("PR", "1", D("20.00"))],
    )


async def test_same_file_twice_and_same_trace_in_another_file_post_once(payments):
    payer, trace, claim = new_id("PY"), new_id("TRN"), new_id("CL")
    await payments.register(submitted(claim, D("150.00"), payer_id=payer))
    era = era_835([_paid_150(claim)], payer_id=payer, trace=trace)
    assert await payments.drop(era, f"{claim}-a.835") == "processed"
    assert (
        await payments.drop(era, f"{claim}-a-again.835") == "processed"
    )  # same bytes: taken, not applied
    # Another interchange (new ISA13) carrying the same check: recorded as a duplicate, not posted.
    other = era_835([_paid_150(claim)], payer_id=payer, trace=trace)
    assert other != era
    assert await payments.drop(other, f"{claim}-b.835") == "processed"

    assert await _entries(payments, claim) == [
        ("charge", f"charge:{claim}"),
        ("payment", f"remit:{payer}:{trace}:1"),
    ]
    assert [r["state"] for r in await payments.payments_of(claim)] == ["posted"]
    assert await payments.balance(claim) == (D("0.00"), D("20.00"))
    dup = await payments.pool.fetch(
        "SELECT file_name, payment_amount FROM payments.advice_duplicate"
        " WHERE payer_key = $1 AND trace_number = $2",
        payer,
        trace,
    )
    assert [(r["file_name"], r["payment_amount"]) for r in dup] == [(f"{claim}-b.835", D("80.00"))]
    files = await payments.pool.fetch(
        "SELECT file_name, status FROM payments.mailbox_file WHERE file_name LIKE $1"
        " ORDER BY file_name",
        f"{claim}-%",
    )
    assert [(r["file_name"], r["status"]) for r in files] == [
        (f"{claim}-a.835", "processed"),
        (f"{claim}-b.835", "processed"),
    ]
    await payments.wait_events([f"{payer}:{trace}:1"])
    await asyncio.sleep(1)  # room for a second event, had one been queued
    assert len(payments.events[f"{payer}:{trace}:1"]) == 1
    assert await payments.pool.fetchval("SELECT count(*) FROM payments.outbox") == 0


async def test_reversal_undoes_the_payment_exactly_then_the_corrected_payment_posts(payments):
    payer, claim = new_id("PY"), new_id("CL")
    await payments.register(submitted(claim, D("150.00"), payer_id=payer))
    first = new_id("TRN")
    await payments.drop(era_835([_paid_150(claim)], payer_id=payer, trace=first))
    assert await payments.balance(claim) == (D("0.00"), D("20.00"))

    reversal = Clp(
        claim,
        D("-150.00"),
        D("-80.00"),
        status="22",
        pr=D("-20.00"),
        cas=[("CO", "45", D("-50.00")), ("PR", "1", D("-20.00"))],
    )
    second = new_id("TRN")
    era = era_835([reversal], payer_id=payer, trace=second)
    assert "BPR*I*80*D" in era  # the payer takes the money back
    assert await payments.drop(era) == "processed"
    assert await payments.balance(claim) == (D("150.00"), D("0.00"))  # back to the charge
    original = await _entry_lines(payments, f"remit:{payer}:{first}:1")
    undone = await _entry_lines(payments, f"reversal-of:{payer}:{first}:1")
    assert undone == [(account, -amount) for account, amount in original] and len(original) == 4

    third = new_id("TRN")
    corrected = Clp(
        claim,
        D("150.00"),
        D("95.00"),
        pr=D("20.00"),
        cas=[("CO", "45", D("35.00")), ("PR", "1", D("20.00"))],
    )
    await payments.drop(era_835([corrected], payer_id=payer, trace=third))
    assert await payments.balance(claim) == (D("0.00"), D("20.00"))
    assert [k for k, _ in await _entries(payments, claim)] == [
        "charge",
        "payment",
        "reversal",
        "payment",
    ]
    events = await payments.wait_events([f"{payer}:{t}:1" for t in (first, second, third)])
    rev = events[f"{payer}:{second}:1"][0]
    assert (rev.is_reversal, rev.status_code, rev.paid, rev.patient_responsibility) == (
        True,
        "22",
        D("-80.00"),
        D("-20.00"),
    )
    assert events[f"{payer}:{third}:1"][0].paid == D("95.00")
    for row in await payments.get("/reconciliation", payer_id=payer):
        assert D(row["difference"]) == 0


async def test_reversal_and_correction_of_the_same_amount_in_one_file(payments):
    """The reversal must undo the earlier payment, not the correction next to it (same CLP04)."""
    payer, claim = new_id("PY"), new_id("CL")
    await payments.register(submitted(claim, D("150.00"), payer_id=payer))
    first = new_id("TRN")
    await payments.drop(era_835([_paid_150(claim)], payer_id=payer, trace=first))
    reversal = Clp(
        claim,
        D("-150.00"),
        D("-80.00"),
        status="22",
        pr=D("-20.00"),
        cas=[("CO", "45", D("-50.00")), ("PR", "1", D("-20.00"))],
    )
    # Same payment, but 10 moved from the patient to the contractual write-down.
    corrected = Clp(
        claim,
        D("150.00"),
        D("80.00"),
        pr=D("10.00"),
        cas=[("CO", "45", D("60.00")), ("PR", "1", D("10.00"))],
    )
    second = new_id("TRN")
    await payments.drop(era_835([reversal, corrected], payer_id=payer, trace=second))
    assert await payments.balance(claim) == (D("0.00"), D("10.00"))
    assert await _entry_lines(payments, f"reversal-of:{payer}:{first}:1") == [
        ("cash_clearing", D("-80.00")),
        ("contractual_adjustment", D("-50.00")),
        ("patient_receivable", D("-20.00")),
        ("payer_receivable", D("150.00")),
    ]


async def test_remittance_for_an_unknown_claim_waits_then_posts_when_the_claim_arrives(payments):
    payer, trace, claim = new_id("PY"), new_id("TRN"), new_id("CL")
    assert (
        await payments.drop(era_835([_paid_150(claim)], payer_id=payer, trace=trace)) == "processed"
    )
    queued = [
        r
        for r in await payments.get("/remittances/unmatched")
        if r["patient_control_number"] == claim
    ]
    assert [(r["remittance_id"], D(r["paid"]), r["reason"]) for r in queued] == [
        (f"{payer}:{trace}:1", D("80.00"), "no matching claim")
    ]
    (row,) = await payments.get("/reconciliation", payer_id=payer)
    assert (D(row["difference"]), D(row["unmatched"]), D(row["unexplained"])) == (
        D("80.00"),
        D("80.00"),
        0,
    )
    assert f"{payer}:{trace}:1" not in payments.events

    await payments.register(submitted(claim, D("150.00"), payer_id=payer))
    await payments.wait_until(
        "SELECT state FROM payments.claim_payment WHERE remittance_id = $1",
        f"{payer}:{trace}:1",
        predicate=lambda s: s == "posted",
    )
    assert await payments.balance(claim) == (D("0.00"), D("20.00"))
    assert not [
        r
        for r in await payments.get("/remittances/unmatched")
        if r["patient_control_number"] == claim
    ]
    (event,) = (await payments.wait_events([f"{payer}:{trace}:1"]))[f"{payer}:{trace}:1"]
    assert (event.claim_id, event.paid, event.payment_date is not None) == (claim, D("80.00"), True)
    assert event.payer_name == "RCM TEST PLAN" and event.file_name.endswith(".835")
    (row,) = await payments.get("/reconciliation", payer_id=payer)
    assert (D(row["difference"]), D(row["unmatched"])) == (0, 0)


async def test_claim_payment_with_a_mangled_claim_id_matches_by_service_lines(payments):
    payer, trace = new_id("PY"), new_id("TRN")
    claim, twin_a, twin_b = new_id("CL"), new_id("CL"), new_id("CL")
    lines = [Svc("99214", D("120.00"), D(0), modifiers=("25",)), Svc("85025", D("80.00"), D(0))]
    twins = [Svc("73610", D("90.00"), D(0))]
    await payments.register(
        submitted(claim, D("200.00"), payer_id=payer, lines=lines),
        submitted(twin_a, D("90.00"), payer_id=payer, lines=twins),
        submitted(twin_b, D("90.00"), payer_id=payer, lines=twins),
    )
    paid_lines = [
        Svc("99214", D("120.00"), D("100.00"), [("CO", "45", D("20.00"))], modifiers=("25",)),
        Svc("85025", D("80.00"), D("80.00")),
    ]
    era = era_835(
        [
            Clp("X" + claim, D("200.00"), D("180.00"), lines=paid_lines, pccn=new_id("ICN")),
            Clp("X" + twin_a, D("90.00"), D("90.00"), lines=[Svc("73610", D("90.00"), D("90.00"))]),
        ],
        payer_id=payer,
        trace=trace,
    )
    assert await payments.drop(era) == "processed"
    rows = {
        r["remittance_id"]: r
        for r in await payments.pool.fetch(
            "SELECT remittance_id, claim_id, state, match_method, reason FROM payments.claim_payment"
            " WHERE payer_id = $1",
            payer,
        )
    }
    first, second = rows[f"{payer}:{trace}:1"], rows[f"{payer}:{trace}:2"]
    assert (first["claim_id"], first["state"], first["match_method"]) == (
        claim,
        "posted",
        "service_lines",
    )
    assert (second["claim_id"], second["state"], second["reason"]) == (
        None,
        "unmatched",
        "several claims match its service lines",
    )  # never guess between twins
    assert await payments.balance(claim) == (D("0.00"), D("0.00"))
    assert await payments.balance(twin_a) == (D("90.00"), D("0.00"))


async def test_out_of_balance_claim_is_held_alone_with_the_reason(payments):
    payer, trace = new_id("PY"), new_id("TRN")
    good, bad = new_id("CL"), new_id("CL")
    await payments.register(
        submitted(good, D("150.00"), payer_id=payer), submitted(bad, D("100.00"), payer_id=payer)
    )
    off = Clp(bad, D("100.00"), D("70.00"), cas=[("CO", "45", D("20.00"))])  # 100 - 70 != 20
    assert (
        await payments.drop(era_835([_paid_150(good), off], payer_id=payer, trace=trace))
        == "processed"
    )
    assert [r["state"] for r in await payments.payments_of(good)] == ["posted"]
    (held,) = await payments.payments_of(bad)
    assert held["state"] == "held"
    assert (
        f"claim {bad}: charge 100 - paid 70 = 30 but claim and line adjustments total 20"
        in held["reason"]
    )
    assert await _entries(payments, bad) == [("charge", f"charge:{bad}")]  # nothing posted
    assert await payments.balance(bad) == (D("100.00"), D("0.00"))
    assert [
        r["remittance_id"]
        for r in await payments.get("/remittances/held")
        if r["patient_control_number"] == bad
    ] == [f"{payer}:{trace}:2"]
    (row,) = await payments.get("/reconciliation", payer_id=payer)
    assert (D(row["posted"]), D(row["held"]), D(row["unexplained"])) == (D("80.00"), D("70.00"), 0)
    await payments.wait_events([f"{payer}:{trace}:1"])
    assert f"{payer}:{trace}:2" not in payments.events


async def test_out_of_balance_transaction_is_held_whole_then_the_corrected_resend_posts(payments):
    payer, trace, claim = new_id("PY"), new_id("TRN"), new_id("CL")
    await payments.register(submitted(claim, D("150.00"), payer_id=payer))
    wrong = era_835([_paid_150(claim)], payer_id=payer, trace=trace, bpr=D("90.00"))
    assert await payments.drop(wrong) == "processed"
    (held,) = await payments.payments_of(claim)
    assert held["state"] == "held" and "payment BPR02 90 != claims paid 80" in held["reason"]
    advice = await payments.pool.fetchrow(
        "SELECT advice_id, status, reason FROM payments.remittance_advice"
        " WHERE payer_key = $1 AND trace_number = $2",
        payer,
        trace,
    )
    assert advice["status"] == "held" and "BPR02" in advice["reason"]
    assert (
        await payments.pool.fetchval(
            "SELECT count(*) FROM payments.journal_entry WHERE advice_id = $1", advice["advice_id"]
        )
        == 0
    )
    assert await payments.balance(claim) == (D("150.00"), D("0.00"))
    (row,) = await payments.get("/reconciliation", payer_id=payer)
    assert (D(row["posted"]), D(row["held"]), row["held_advices"]) == (D("0"), D("90.00"), 1)

    # The payer's corrected file for the same check replaces the held one and posts.
    assert (
        await payments.drop(era_835([_paid_150(claim)], payer_id=payer, trace=trace)) == "processed"
    )
    assert [(r["state"], r["paid"]) for r in await payments.payments_of(claim)] == [
        ("posted", D("80.00"))
    ]
    assert await payments.balance(claim) == (D("0.00"), D("20.00"))
    (row,) = await payments.get("/reconciliation", payer_id=payer)
    assert (D(row["deposits"]), D(row["posted"]), D(row["difference"]), row["held_advices"]) == (
        D("80.00"),
        D("80.00"),
        0,
        0,
    )


async def test_garbage_and_truncated_files_fail_with_a_reason_and_the_next_file_posts(payments):
    payer, trace, claim = new_id("PY"), new_id("TRN"), new_id("CL")
    await payments.register(submitted(claim, D("150.00"), payer_id=payer))
    good = era_835([_paid_150(claim)], payer_id=payer, trace=trace)
    garbage, truncated = f"{claim}-garbage.txt", f"{claim}-truncated.835"
    # Unique bytes: the mailbox treats content it has seen before (even failed) as a duplicate.
    assert await payments.drop(f"this is not an X12 interchange ({claim})\n", garbage) == "failed"
    assert await payments.drop(good[: good.index("CLP*")], truncated) == "failed"
    for name, words in ((garbage, "no ISA"), (truncated, "")):
        reason = (payments.inbound / "failed" / f"{name}.reason.txt").read_text()
        assert words in reason and reason.strip()
    truncated_reason = (payments.inbound / "failed" / f"{truncated}.reason.txt").read_text()
    assert re.search(r"segment \d+", truncated_reason), truncated_reason
    assert not await payments.pool.fetchval(
        "SELECT count(*) FROM payments.remittance_advice WHERE payer_key = $1", payer
    )
    assert await payments.drop(good) == "processed"
    assert await payments.balance(claim) == (D("0.00"), D("20.00"))
    assert (await payments.get("/health"))["status"] == "ok"


def _sample(name: str) -> str:
    """A LinuxForHealth sample made unique to this run: ISA13/IEA02, TRN02 and CLP01 (they all share ISA13 907)."""
    text = (LFH / name).read_text()
    icn = f"{abs(hash((RUN, name))) % 999_999_999:09d}"
    text = text.replace("*000000907*", f"*{icn}*").replace("IEA*1*000000907", f"IEA*1*{icn}")
    text = re.sub(r"TRN\*1\*([^*~]+)", lambda m: f"TRN*1*{m.group(1)}{RUN}", text)
    return re.sub(r"CLP\*([^*~]+)", lambda m: f"CLP*{RUN}{m.group(1)}", text)


async def test_linuxforhealth_samples_go_through_the_mailbox(payments):
    # Register some of the sample claims (by their CLP01); the others wait unmatched.
    known = {
        "5554555444": D("800.00"),
        "666123": D("211366.97"),
        "777777": D("15000.00"),
        "0001000053": D("751.50"),
    }
    await payments.register(
        *[submitted(f"{RUN}{cid}", charge, payer_id=new_id("PY")) for cid, charge in known.items()]
    )
    for name in sorted(p.name for p in LFH.glob("*.835")):
        assert await payments.drop(_sample(name), f"{RUN}-{name}") == "processed", name
    states = {
        r["patient_control_number"].removeprefix(RUN): (r["state"], r["status_code"], r["paid"])
        for r in await payments.pool.fetch(
            "SELECT patient_control_number, state, status_code, paid"
            " FROM payments.claim_payment WHERE patient_control_number LIKE $1",
            f"{RUN}%",
        )
    }
    assert states == {
        "0001000055": ("unmatched", "2", D("34.00")),
        "5554555444": ("posted", "1", D("450.00")),
        "8765432112": ("unmatched", "1", D("495.00")),
        "666123": ("posted", "1", D("138018.40")),
        "777777": ("posted", "1", D("11980.33")),
        "L0004828311": ("unmatched", "2", D("912.00")),
        "0001000053": ("posted", "2", D("310.00")),
        "0001000054": ("held", "3", D("187.50")),  # its service line does not balance
    }
    held = await payments.pool.fetchval(
        "SELECT reason FROM payments.claim_payment WHERE patient_control_number = $1",
        f"{RUN}0001000054",
    )
    assert "line 1: charge 24599.00 - paid 1766.50" in held
    assert await payments.balance(f"{RUN}5554555444") == (D("0.00"), D("300.00"))
    assert await payments.balance(f"{RUN}666123") == (D("0.00"), D("0.00"))
    # Medicare's PLB (CV:CP -1.27) posts at provider level; its deposit reconciles to the cent.
    (row,) = await payments.get("/reconciliation", payer_id="999", since=None)
    assert D(row["unexplained"]) == 0
    assert (await payments.get("/health"))["status"] == "ok"


async def test_the_database_refuses_an_unbalanced_journal_entry_whatever_else_the_statement_writes(
    payments,
):
    """The balance trigger is the ledger's last line of defence: a bug in posting must not reach the books."""
    async with payments.pool.acquire() as conn:
        entries = await conn.fetch(
            "INSERT INTO payments.journal_entry (kind, source) VALUES ('test', $1), ('test', $2) RETURNING entry_id",
            f"trigger-test-good-{RUN}",
            f"trigger-test-bad-{RUN}",
        )
        good, bad = (r["entry_id"] for r in entries)
        lines = [
            (good, "cash", D("10.00")),
            (good, "ar", D("-10.00")),
            (bad, "cash", D("10.00")),
            (bad, "ar", D("-9.99")),
        ]
        with pytest.raises(Exception, match=f"journal entry {bad} does not balance") as raised:
            await conn.copy_records_to_table(
                "journal_line",
                schema_name="payments",
                records=lines,
                columns=["entry_id", "account", "amount"],
            )
        assert raised.value.sqlstate == "23514"  # check_violation: the whole statement rolled back
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM payments.journal_line WHERE entry_id = ANY($1)", [good, bad]
            )
            == 0
        )
        # The balanced entry alone goes in; the ledger invariant (checked after the test) still holds.
        await conn.copy_records_to_table(
            "journal_line",
            schema_name="payments",
            records=lines[:2],
            columns=["entry_id", "account", "amount"],
        )
        assert (
            await conn.fetchval(
                "SELECT sum(amount) FROM payments.journal_line WHERE entry_id = $1", good
            )
            == 0
        )


async def test_files_taken_together_fail_alone_and_post_once(payments):
    """Files waiting together are ingested in one transaction, each in its own savepoint."""
    payer = new_id("PY")
    claims = [new_id("CL") for _ in range(2)]
    for claim in claims:
        await payments.register(submitted(claim, D("150.00"), payer_id=payer))
    good = [era_835([_paid_150(c)], payer_id=payer, trace=new_id("TRN")) for c in claims]
    names = [
        f"{claims[0]}-1.835",
        f"{claims[0]}-2-truncated.835",
        f"{claims[0]}-3.835",
        f"{claims[0]}-4-again.835",
    ]
    texts = [good[0], good[1][: good[1].index("CLP*")], good[1], good[0]]
    for name, text in zip(names, texts, strict=True):  # written together: one poll takes them all
        write_atomically(payments.inbound, name, text)
    assert [await payments.wait_file(n) for n in names] == [
        "processed",
        "failed",
        "processed",
        "processed",
    ]
    files = {
        r["file_name"]: r["status"]
        for r in await payments.pool.fetch(
            "SELECT file_name, status FROM payments.mailbox_file WHERE file_name = ANY($1)", names
        )
    }
    assert files == {
        names[0]: "processed",
        names[1]: "failed",
        names[2]: "processed",
    }  # the resend: a duplicate
    for claim in claims:
        assert await payments.balance(claim) == (D("0.00"), D("20.00"))
        assert len(await _entries(payments, claim)) == 2  # charge and one payment: nothing twice


def _one_file(*eras: str) -> str:
    """The transactions of single-payment 835s in one interchange, as a clearinghouse delivers them."""
    first, _ = split_segments(eras[0])
    body = []
    for n, text in enumerate(eras, start=1):
        segs, _ = split_segments(text)
        st = next(i for i, s in enumerate(segs) if s[0] == "ST")
        se = next(i for i, s in enumerate(segs) if s[0] == "SE")
        body += [
            ["ST", "835", f"{n:04d}"],
            *segs[st + 1 : se],
            ["SE", str(se - st + 1), f"{n:04d}"],
        ]
    segs = [first[0], first[1], *body, ["GE", str(len(eras)), first[1][6]], first[-1]]
    return "~".join("*".join(s) for s in segs) + "~\n"


async def test_an_era_file_posts_each_payment_of_several_payers(payments):
    payer_a, payer_b, trace_a, trace_b = new_id("PY"), new_id("PY"), new_id("TRN"), new_id("TRN")
    claim_a, claim_b = new_id("CL"), new_id("CL")
    await payments.register(
        submitted(claim_a, D("150.00"), payer_id=payer_a),
        submitted(claim_b, D("150.00"), payer_id=payer_b),
    )
    era = _one_file(
        era_835([_paid_150(claim_a)], payer_id=payer_a, trace=trace_a),
        era_835(
            [_paid_150(claim_b)], payer_id=payer_b, trace=trace_b, plb=[("L6", "INT1", D("-2.50"))]
        ),
    )
    assert await payments.drop(era) == "processed"
    advices = await payments.pool.fetch(
        "SELECT payer_key, st_control_number, payment_amount, status"
        " FROM payments.remittance_advice WHERE payer_key = ANY($1) ORDER BY 2",
        [payer_a, payer_b],
    )
    assert [tuple(r) for r in advices] == [
        (payer_a, "0001", D("80.00"), "posted"),
        (payer_b, "0002", D("82.50"), "posted"),
    ]
    for claim, payer, trace in ((claim_a, payer_a, trace_a), (claim_b, payer_b, trace_b)):
        assert await _entries(payments, claim) == [
            ("charge", f"charge:{claim}"),
            ("payment", f"remit:{payer}:{trace}:1"),
        ]
        assert await payments.balance(claim) == (D("0.00"), D("20.00"))
    assert (
        await payments.pool.fetchval(
            "SELECT count(*) FROM payments.journal_entry WHERE source = $1",
            f"plb:{payer_b}:{trace_b}:1",
        )
        == 1
    )
    events = await payments.wait_events([f"{payer_a}:{trace_a}:1", f"{payer_b}:{trace_b}:1"])
    assert {e[0].claim_id for e in events.values()} == {claim_a, claim_b}


async def test_a_claim_paid_by_service_lines_is_not_paid_again_by_the_next_payment_of_the_same_file(
    payments,
):
    """Twins: the first was paid before, the second by the file's first payment; the file's second
    payment for the same service then matches neither."""
    payer, trace_0, trace_1, trace_2 = new_id("PY"), new_id("TRN"), new_id("TRN"), new_id("TRN")
    twin_a, twin_b = new_id("CL"), new_id("CL")
    twins = [Svc("73610", D("90.00"), D(0))]
    await payments.register(
        submitted(twin_a, D("90.00"), payer_id=payer, lines=twins),
        submitted(twin_b, D("90.00"), payer_id=payer, lines=twins),
    )
    paid = [Svc("73610", D("90.00"), D("90.00"))]
    assert (
        await payments.drop(
            era_835(
                [Clp(twin_a, D("90.00"), D("90.00"), lines=paid)], payer_id=payer, trace=trace_0
            )
        )
        == "processed"
    )
    era = _one_file(
        era_835(
            [Clp("X" + new_id("M"), D("90.00"), D("90.00"), lines=paid, pccn=new_id("ICN"))],
            payer_id=payer,
            trace=trace_1,
        ),
        era_835(
            [Clp("X" + new_id("M"), D("90.00"), D("90.00"), lines=paid, pccn=new_id("ICN"))],
            payer_id=payer,
            trace=trace_2,
        ),
    )
    assert await payments.drop(era) == "processed"
    rows = {
        r["remittance_id"]: r
        for r in await payments.pool.fetch(
            "SELECT remittance_id, claim_id, state, match_method FROM payments.claim_payment WHERE payer_id = $1",
            payer,
        )
    }
    assert (
        rows[f"{payer}:{trace_1}:1"]["claim_id"],
        rows[f"{payer}:{trace_1}:1"]["match_method"],
    ) == (twin_b, "service_lines")
    assert (rows[f"{payer}:{trace_2}:1"]["claim_id"], rows[f"{payer}:{trace_2}:1"]["state"]) == (
        None,
        "unmatched",
    )
    assert await payments.balance(twin_b) == (D("0.00"), D("0.00"))
