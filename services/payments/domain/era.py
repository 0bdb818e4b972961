"""835 (005010X221A1) health care claim payment/advice parser.

``parse_835`` reads a whole file: one or more interchanges (ISA...IEA), each
with functional groups of 835 transactions. It is a single pass over the
segment lists from ``shared.x12.split_segments`` with a small loop-state
machine: dispatch on the segment id, check the segment is allowed in the
current loop, fill light objects for claims and service lines only.

Structure errors (wrong counts, mismatched control numbers, a segment in the
wrong loop, a truncated file, a non-numeric amount) raise ``X12Error`` naming
the segment number; nothing is returned for a broken file, so no transaction
is ever half-posted. Things that are off but harmless (an impossible date, a
composite written with the wrong component separator, a missing LX) are kept
as ``RemitTransaction.warnings`` instead: real payer files have such flaws and
refusing a whole remittance over one date would lose money postings.
Messages never carry element values from claim loops (PHI); they name the
segment number, id and element position.
"""

from __future__ import annotations

import gc
from decimal import Decimal

from shared.x12 import Separators, X12Error, split_segments

from .era_segments import (
    DATES,
    PAD,
    claim_payment,
    new_tuple,
    number,
    person_name,
    read_cas,
    read_date,
    read_plb,
    same_number,
    service_line,
)
from .remittance import (
    ADJUSTMENT_GROUPS,
    Adjustment,
    ClaimPayment,
    Era835,
    Party,
    Payment,
    RemitTransaction,
    ServiceLine,
)

# Loop states, in transaction order.
OUT, ISA_, GS_, HDR_START, HDR, PAYER, PAYEE, LXS, CLAIM, LINE, SUMMARY = range(11)
_EXPECTED = {
    OUT: ("outside an interchange", "ISA"),
    ISA_: ("in the interchange", "GS or IEA"),
    GS_: ("in the functional group", "ST or GE"),
    HDR_START: ("in the transaction header", "BPR"),
    HDR: ("in the transaction header", "TRN, CUR, REF, DTM or N1*PR"),
    PAYER: ("in loop 1000A payer identification", "N3, N4, REF, PER or N1*PE"),
    PAYEE: ("in loop 1000B payee identification", "N3, N4, REF, RDM, LX, CLP, PLB or SE"),
    LXS: ("in loop 2000 header number", "TS3, TS2 or CLP"),
    CLAIM: (
        "in loop 2100 claim payment",
        "CAS, NM1, MIA, MOA, REF, DTM, PER, AMT, QTY, SVC, CLP, LX, PLB or SE",
    ),
    LINE: ("in loop 2110 service payment", "DTM, CAS, REF, AMT, QTY, LQ, SVC, CLP, LX, PLB or SE"),
    SUMMARY: ("in the summary", "PLB or SE"),
}
_CLAIM_NAMES = {"QC", "IL", "74", "82", "TT", "PR", "GB"}


def _unexpected(n: int, sid: str, state: int) -> X12Error:
    loop, expected = _EXPECTED[state]
    return X12Error(f"unexpected {sid} {loop}; expected {expected}", n, sid)


def parse_835(text: str) -> Era835:
    """Parse an 835 file into an ``Era835``.

    Raises ``X12Error`` (a ``ValueError``) naming the segment number and what was
    expected when the envelope or loop structure is broken or an amount is not a
    number; raises ``TypeError`` when ``text`` is not a str.
    """
    if not isinstance(text, str):
        raise TypeError(f"parse_835 expects the file text as str, got {type(text).__name__}")
    # A parse allocates hundreds of thousands of small acyclic objects; the cyclic
    # GC would rescan the growing heap many times for nothing (about 2x slower).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        segs, seps = split_segments(text)
        return _parse(segs, seps)
    finally:
        if gc_was_enabled:
            gc.enable()


def _parse(segs: list[list[str]], seps: Separators) -> Era835:
    """One flat state machine: dispatch on the segment id, most frequent first."""
    comp = seps.component
    state = OUT
    out: list[RemitTransaction] = []
    isa_numbers: list[str] = []
    sender = receiver = isa13 = gs06 = st02 = ""
    groups = sets = st_n = 0
    tx: RemitTransaction | None = None
    claim: ClaimPayment | None = None
    line: ServiceLine | None = None
    party: Party | None = None
    warns: list[str] = []
    trn_seen = False
    dates, adj_groups = DATES, ADJUSTMENT_GROUPS
    # Per-file memo of amount text -> Decimal: fee-schedule amounts repeat a lot.
    mc: dict[str, Decimal] = {}
    n = 0
    for n, seg in enumerate(segs, 1):
        sid = seg[0]
        if sid == "CAS":
            if state == LINE:
                target, level = line.adjustments, "line"
            elif state == CLAIM:
                target, level = claim.adjustments, "claim"
            else:
                raise _unexpected(n, sid, state)
            if len(seg) == 4 and seg[2] and seg[1] in adj_groups:  # one triplet: inline fast path
                amt = mc.get(seg[3])
                if amt is None:
                    amt = mc[seg[3]] = number(seg[3], n, sid, 3)
                target.append(new_tuple(Adjustment, (seg[1], seg[2], amt, None, level)))
            else:
                read_cas(seg, n, level, target, mc)
        elif sid == "SVC":
            if state != CLAIM and state != LINE:
                raise _unexpected(n, sid, state)
            line = service_line(seg, n, comp, warns, mc)
            claim.service_lines.append(line)
            state = LINE
        elif sid == "DTM":
            if len(seg) < 3:
                raise X12Error("DTM01 qualifier and DTM02 date are required", n, sid)
            q = seg[1]
            if state == LINE:
                if q == "472" or q == "150":
                    line.service_date = dates.get(seg[2]) or read_date(seg[2], n, sid, 2, warns)
                elif q == "151":
                    line.service_end_date = read_date(seg[2], n, sid, 2, warns)
                else:
                    warns.append(f"segment {n} (DTM): DTM01 {q!r} ignored in loop 2110")
            elif state == CLAIM:
                d = dates.get(seg[2]) or read_date(seg[2], n, sid, 2, warns)
                if q == "232":
                    claim.statement_from = d
                elif q == "233":
                    claim.statement_to = d
                elif q == "050":
                    claim.received_date = d
                elif q == "036":
                    claim.coverage_expiration = d
                else:
                    warns.append(f"segment {n} (DTM): DTM01 {q!r} ignored in loop 2100")
            elif state == HDR:
                if q == "405":
                    tx.production_date = read_date(seg[2], n, sid, 2, warns)
            else:
                raise _unexpected(n, sid, state)
        elif sid == "REF":
            if len(seg) < 3:
                raise X12Error("REF01 qualifier and REF02 value are required", n, sid)
            if state == LINE:
                line.refs[seg[1]] = seg[2]
                if seg[1] == "6R":
                    line.line_control_number = seg[2]
            elif state == CLAIM:
                claim.refs[seg[1]] = seg[2]
            elif state == PAYER or state == PAYEE:
                party.refs[seg[1]] = seg[2]
            elif state == HDR:
                tx.refs[seg[1]] = seg[2]
            else:
                raise _unexpected(n, sid, state)
        elif sid == "AMT" or sid == "QTY":
            if len(seg) < 3:
                raise X12Error(f"{sid}01 qualifier and {sid}02 value are required", n, sid)
            if state == LINE:
                target = line
            elif state == CLAIM:
                target = claim
            else:
                raise _unexpected(n, sid, state)
            bucket = target.amounts if sid == "AMT" else target.quantities
            v = mc.get(seg[2])
            if v is None:
                v = mc[seg[2]] = number(seg[2], n, sid, 2)
            bucket[seg[1]] = v
        elif sid == "CLP":
            if state < PAYEE or state > LINE:
                raise _unexpected(n, sid, state)
            if state == PAYEE:
                warns.append(f"segment {n} (CLP): claim payment outside an LX header number loop")
            claim = claim_payment(seg, n, mc)
            tx.claims.append(claim)
            state = CLAIM
        elif sid == "NM1":
            if state != CLAIM:
                if state == PAYER or state == PAYEE or state == HDR:
                    raise X12Error("payer/payee loops use N1, not NM1", n, sid)
                raise _unexpected(n, sid, state)
            q = seg[1] if len(seg) > 1 else ""
            if q not in _CLAIM_NAMES:
                raise X12Error(
                    f"NM101 {q!r} is not allowed in loop 2100; expected QC, IL, 74, 82, TT, PR or GB",
                    n, sid,
                )  # fmt: skip
            nm = person_name(seg)
            if q == "QC":
                claim.patient = nm
            elif q == "IL":
                claim.subscriber = nm
            elif q == "74":
                claim.corrected_patient = nm
            elif q == "82":
                claim.rendering_provider = nm
            elif q == "TT":
                claim.crossover_carrier = nm
            else:
                claim.corrected_priority_payer = nm
        elif sid == "LQ":
            if state != LINE:
                raise _unexpected(n, sid, state)
            if len(seg) < 3 or not seg[2]:
                raise X12Error("LQ01 qualifier and LQ02 remark code are required", n, sid)
            line.remarks.append(seg[2] if seg[1] == "HE" else f"{seg[1]}:{seg[2]}")
        elif sid == "MOA" or sid == "MIA":
            if state != CLAIM:
                raise _unexpected(n, sid, state)
            idx = (3, 4, 5, 6, 7) if sid == "MOA" else (5, 20, 21, 22, 23, 24)
            claim.remarks.extend(seg[i] for i in idx if i < len(seg) and seg[i])
        elif sid == "PER":
            if state != CLAIM and state != PAYER:
                raise _unexpected(n, sid, state)
        elif sid == "LX":
            if state < PAYEE or state > LINE or state == LXS:
                raise _unexpected(n, sid, state)
            state = LXS
        elif sid == "TS3" or sid == "TS2":
            if state != LXS:
                raise _unexpected(n, sid, state)
        elif sid == "PLB":
            if state != PAYEE and state != CLAIM and state != LINE and state != SUMMARY:
                raise _unexpected(n, sid, state)
            tx.provider_adjustments.extend(read_plb(seg, n, comp, warns))
            state = SUMMARY
        elif sid == "N1":
            q = seg[1] if len(seg) > 1 else ""
            if len(seg) < 3 or not seg[2]:
                raise X12Error("N102 name is required", n, sid)
            s = seg + PAD
            if state == HDR and q == "PR":
                if not trn_seen:
                    raise X12Error(
                        "expected TRN (reassociation trace) before the payer loop", n, sid
                    )
                party = tx.payer = Party("PR", s[2], s[3] or None, s[4] or None)
                state = PAYER
            elif state == PAYER and q == "PE":
                party = tx.payee = Party("PE", s[2], s[3] or None, s[4] or None)
                state = PAYEE
            else:
                want = "N1*PR" if state <= HDR else "N1*PE"
                raise X12Error(f"unexpected N1*{q}; expected {want}", n, sid)
        elif sid == "N3" or sid == "N4":
            if state != PAYER and state != PAYEE:
                raise _unexpected(n, sid, state)
            party.address += tuple(seg[1:])
        elif sid == "RDM":
            if state != PAYEE:
                raise _unexpected(n, sid, state)
        elif sid == "TRN":
            if state != HDR or len(seg) < 4:
                if state == HDR:
                    raise X12Error("TRN02 trace number and TRN03 originator are required", n, sid)
                raise _unexpected(n, sid, state)
            tx.payment.trace_number = seg[2]
            tx.payment.originator = seg[3] or None
            trn_seen = True
        elif sid == "CUR":
            if state != HDR:
                raise _unexpected(n, sid, state)
            tx.payment.currency = seg[2] if len(seg) > 2 else None
        elif sid == "BPR":
            if state != HDR_START:
                raise _unexpected(n, sid, state)
            if len(seg) < 5:
                raise X12Error("BPR01-BPR04 are required", n, sid)
            if seg[3] not in ("C", "D"):
                raise X12Error("BPR03 must be C (credit) or D (debit)", n, sid)
            paid_on = None
            if len(seg) > 16 and seg[16]:
                paid_on = read_date(seg[16], n, sid, 16, warns)
            else:
                warns.append(f"segment {n} (BPR): BPR16 payment date is missing")
            pay = Payment(seg[1], number(seg[2], n, sid, 2), seg[3], seg[4], paid_on)
            tx = RemitTransaction(st02, isa13, gs06, pay, Party("PR", ""), Party("PE", ""))
            tx.warnings = warns
            state = HDR
        elif sid == "SE":
            if state < HDR_START:
                raise _unexpected(n, sid, state)
            if state < PAYEE or state == LXS:
                raise X12Error(f"SE before the transaction is complete; expected {_EXPECTED[state][1]}", n, sid)  # fmt: skip
            count = seg[1] if len(seg) > 1 else ""
            if not count.isdigit() or int(count) != n - st_n + 1:
                raise X12Error(f"SE01 segment count is {count or 'missing'}, expected {n - st_n + 1}", n, sid)  # fmt: skip
            if len(seg) < 3 or seg[2] != st02:
                raise X12Error(f"SE02 does not match ST02 control number {st02}", n, sid)
            out.append(tx)
            tx = claim = line = party = None
            state = GS_
        elif sid == "ST":
            if state != GS_:
                raise _envelope_error(n, sid, state, st02)
            if len(seg) < 3 or seg[1] != "835" or not seg[2]:
                raise X12Error("expected ST*835 with a control number", n, sid)
            if len(seg) > 3 and seg[3] and not seg[3].startswith("005010X221"):
                raise X12Error("ST03 must be 005010X221A1", n, sid)
            st02, st_n, sets = seg[2], n, sets + 1
            warns, trn_seen = [], False
            state = HDR_START
        elif sid == "GS":
            if state != ISA_:
                raise _envelope_error(n, sid, state, st02)
            if len(seg) < 9 or seg[1] != "HP":
                raise X12Error("expected GS*HP (835 functional group) with 8 elements", n, sid)
            if not seg[8].startswith("005010X221"):
                raise X12Error("GS08 must be 005010X221A1", n, sid)
            gs06, sets, groups = seg[6], 0, groups + 1
            state = GS_
        elif sid == "GE":
            if state != GS_:
                raise _envelope_error(n, sid, state, st02)
            if len(seg) < 3 or not seg[1].isdigit() or int(seg[1]) != sets:
                raise X12Error(
                    f"GE01 must count the {sets} transaction set(s) in the group", n, sid
                )
            if not same_number(seg[2], gs06):
                raise X12Error(f"GE02 does not match GS06 group control number {gs06}", n, sid)
            state = ISA_
        elif sid == "IEA":
            if state != ISA_:
                raise _envelope_error(n, sid, state, st02)
            if len(seg) < 3 or not seg[1].isdigit() or int(seg[1]) != groups:
                raise X12Error(f"IEA01 must count the {groups} functional group(s)", n, sid)
            if not same_number(seg[2], isa13):
                raise X12Error(f"IEA02 does not match ISA13 interchange control number {isa13}", n, sid)  # fmt: skip
            state = OUT
        elif sid == "ISA":
            if state != OUT:
                raise _envelope_error(n, sid, state, st02)
            if len(seg) != 17:
                raise X12Error("ISA must have 16 elements", n, sid)
            if seg[16] != comp:
                raise X12Error("every interchange in one file must use the same separators", n, sid)
            isa13, groups = seg[13], 0
            state = ISA_
            isa_numbers.append(isa13)
            if not sender:
                sender, receiver = seg[6].strip(), seg[8].strip()
        elif sid.startswith("ISA"):
            raise X12Error("every interchange in one file must use the same separators", n, "ISA")
        else:
            raise _unexpected(n, sid, state)
    if state != OUT:
        where = _EXPECTED[state][0]
        missing = {ISA_: "IEA", GS_: "GE"}.get(state, "SE")
        raise X12Error(f"file truncated: ends {where}, expected {missing}", n + 1, missing)
    return Era835(isa_numbers[0], isa_numbers, sender, receiver, out)


def _envelope_error(n: int, sid: str, state: int, st02: str) -> X12Error:
    if state >= HDR_START:
        return X12Error(f"expected SE closing transaction {st02} before {sid}", n, sid)
    if state == GS_:
        return X12Error(f"expected GE closing the functional group before {sid}", n, sid)
    if state == ISA_:
        return X12Error(f"expected IEA closing the interchange before {sid}", n, sid)
    return _unexpected(n, sid, state)
