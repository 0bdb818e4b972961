"""835 (005010X221A1) health care claim payment/advice parser.

``parse_835`` reads a whole file: one or more interchanges (ISA...IEA), each
with functional groups of 835 transactions. It is a single pass over the
segment strings from ``shared.x12.segment_chunks`` with a small loop-state
machine: dispatch on the segment id, check the segment is allowed in the
current loop, fill light objects for claims and service lines only.

Speed (benchmarks/bench_835.py): segments come in cache-sized chunks and are
split into elements only when read. In the claim loops most segments are codes
then one value (DTM*472, CAS*CO*45, REF*6R, AMT*B6, NM1*82): they are looked
up in a per-file memo by the text before their last element and never split,
so their codes are shared strings (see ``_parse``). Amounts, line adjustments
and dates are memoized too. Claim and line objects come from positional
builders (``remittance.fast_constructor``) and hold the shared read-only
``EMPTY_LIST``/``EMPTY_DICT`` until something is added, so a line allocates
only the containers it fills; fewer, smaller objects are also cheaper to free.
Envelope and header segments are handled off the hot loop by ``_Envelope``.

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
from collections.abc import Iterable, Iterator
from decimal import Decimal

from shared.x12 import (
    Separators,
    X12Error,
    is_segment_id,
    prepare,
    segment_chunks,
    segment_id_problem,
    shown,
)

from .era_segments import (
    CLAIM_NAMES,
    DATES,
    NUMBER_CHARS,
    ONE_UNIT,
    PAD,
    claim_payment,
    claim_remarks,
    dtm_record,
    name_record,
    new_tuple,
    number,
    read_cas,
    read_date,
    read_plb,
    same_number,
    svc_original,
    svc_procedure,
)
from .remittance import (
    ADJUSTMENT_GROUPS,
    CLAIM_STATUS,
    EMPTY_DICT,
    EMPTY_LIST,
    Adjustment,
    ClaimPayment,
    Era835,
    Party,
    Payment,
    PersonName,
    RemitTransaction,
    ServiceLine,
    new_claim_payment,
    new_service_line,
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


def _unexpected(n: int, sid: str, state: int) -> X12Error:
    loop, expected = _EXPECTED[state]
    if not is_segment_id(sid):  # an unsplit segment (a wrong separator): never quote it
        return X12Error(f"{segment_id_problem(sid)} ({loop}; expected {expected})", n)
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
        prepared = prepare(text)  # again inside segment_chunks: idempotent, and cheap
        chunks, seps = segment_chunks(prepared.text)
        return _parse(chunks, seps, notes=list(prepared.warnings))
    finally:
        if gc_was_enabled:
            gc.enable()


def iter_835(text: str) -> Iterator[RemitTransaction]:
    """The transaction sets (ST...SE) of an 835 file one at a time, each once its SE is read.

    A caller that handles each and lets it go holds one transaction set's objects at a
    time instead of the whole file's (a clearinghouse's large ERA file carries one per
    payment). Raises ``X12Error`` like ``parse_835``, but only when it reaches the broken
    segment: the transaction sets yielded before it were complete and well-formed, the file
    as a whole is not, so a caller that must not apply part of a file applies them in one
    database transaction that the error rolls back. Raises ``TypeError`` when ``text`` is
    not a str.
    """
    if not isinstance(text, str):
        raise TypeError(f"iter_835 expects the file text as str, got {type(text).__name__}")
    prepared = prepare(text)
    chunks, seps = segment_chunks(prepared.text)
    gen = _transactions(chunks, seps, _Envelope(seps.component, list(prepared.warnings)))
    while True:
        # The cyclic GC is off while parsing only (see parse_835), not while the caller works.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            tx = next(gen, None)
        finally:
            if gc_was_enabled:
                gc.enable()
        if tx is None:
            return
        yield tx


def _parse(
    chunks: Iterable[list[str]],
    seps: Separators,
    heads: dict[str, tuple] | None = None,
    notes: list[str] | None = None,
) -> Era835:
    env = _Envelope(seps.component, notes)
    txs = list(_transactions(chunks, seps, env, heads))
    return Era835(env.isa_numbers[0], env.isa_numbers, env.sender, env.receiver, txs)


def _transactions(  # noqa: C901 - one flat hot loop
    chunks: Iterable[list[str]],
    seps: Separators,
    env: _Envelope,
    heads: dict[str, tuple] | None = None,
) -> Iterator[RemitTransaction]:
    """The hot loop: claim and service-line segments, most frequent first; yields each
    transaction set when its SE closed it.

    Most segments in the claim loops are "codes, then one value": DTM*472,
    CAS*CO*45, REF*6R, AMT*B6, NM1*82...*XX, then a date, amount, reference or
    id. Each segment is cut at its last element separator and the text before
    it (the head: few distinct texts per file, unlike the values) looked up in a
    per-file memo of records made from a clean segment with that head. On a hit only
    the last element and the loop state are left to check, so these segments
    are never split and their codes are shared str objects. Everything else
    (SVC, CLP, the patient's NM1, new heads, anything not clean) is split and
    checked; a clean one then becomes a record for the next time. Records
    hold only immutable values (str, date, Decimal, NamedTuple), never a
    message tied to one segment number: a hit still takes the loop-state
    checks with its own number, and a last element that does not fit (a bad
    date, another NM109) goes back to the checking path.

    Amounts are memoized by text (fee-schedule amounts repeat a lot), line
    CAS adjustments by head and amount (immutable, so shared), dates in
    ``DATES``. A memoized value was validated when first read; the same text
    gives the same value. Function calls cost as much as a dozen plain
    operations here, so the per-line work is inlined.

    ``heads``: tests pass a dict that never remembers, so that every segment
    takes the checking path, to show a memo hit gives exactly the same.
    """
    el, comp = seps.element, seps.component
    state = OUT
    tx: RemitTransaction | None = None
    claim: ClaimPayment | None = None
    line: ServiceLine | None = None
    warns = env.warns
    if heads is None:
        heads = {}  # segment text before its last element -> record
    heads_get = heads.get
    mc: dict[str, Decimal] = {}  # amount text -> Decimal
    mc_get = mc.get
    procedures: dict[str, tuple] = {}  # SVC01 composite -> (qualifier, code, modifiers)
    procedures_get = procedures.get
    dates_get = DATES.get
    new_line, new_claim, one, new = new_service_line, new_claim_payment, ONE_UNIT, new_tuple
    groups, statuses, D, nc = ADJUSTMENT_GROUPS, CLAIM_STATUS, Decimal, NUMBER_CHARS
    # Parsed objects start with these shared read-only empties: replace, never add to them.
    empty_list, empty_dict = EMPTY_LIST, EMPTY_DICT
    first = 1  # number of the first segment of the chunk
    for raws in chunks:
        for n, raw in enumerate(raws, first):
            head, _, v = raw.rpartition(el)
            rec = heads_get(head)
            if rec is None:
                seg = raw.split(el)
                sid = seg[0]
                if sid == "SVC":
                    if state != CLAIM and state != LINE:
                        raise _unexpected(n, sid, state)
                    ln = len(seg)
                    if ln < 4:
                        raise X12Error(
                            "SVC01-SVC03 (procedure, charge, payment) are required", n, sid
                        )
                    proc = procedures_get(seg[1])
                    if proc is None:
                        proc = svc_procedure(seg[1], n, comp, warns, procedures)
                    v = seg[2]
                    charge = mc_get(v)
                    if charge is None:
                        charge = mc[v] = number(v, n, sid, 2)
                    v = seg[3]
                    paid = mc_get(v)
                    if paid is None:
                        paid = mc[v] = number(v, n, sid, 3)
                    units = one
                    if ln > 5 and seg[5] and seg[5] != "1":  # "1" is by far the usual
                        v = seg[5]
                        units = mc_get(v)
                        if units is None:
                            units = mc[v] = number(v, n, sid, 5)
                    line = new_line(
                        proc[0], proc[1], proc[2], charge, paid, ln > 4 and seg[4] or None, units
                    )
                    if ln > 6:
                        svc_original(line, seg, n, comp, warns)
                    if claim.service_lines is empty_list:
                        claim.service_lines = [line]
                    else:
                        claim.service_lines.append(line)
                    state = LINE
                    continue
                if sid == "CLP":
                    if state < PAYEE or state > LINE:
                        raise _unexpected(n, sid, state)
                    if state == PAYEE:
                        warns.append(
                            f"segment {n} (CLP): claim payment outside an LX header number loop"
                        )
                    claim = None
                    if len(seg) > 9 and seg[1] and seg[2] in statuses:
                        # CLP03-CLP05 inline (claim totals, nearly all distinct: no memo);
                        # claim_payment reports whatever is wrong.
                        v, p, r = seg[3], seg[4], seg[5]
                        if not (v.strip(nc) or p.strip(nc) or r.strip(nc)):
                            try:
                                claim = new_claim(
                                    seg[1],
                                    seg[2],
                                    D(v),
                                    D(p),
                                    D(r) if r else None,
                                    seg[6],
                                    seg[7] or None,
                                    seg[8] or None,
                                    seg[9] or None,
                                    len(seg) > 11 and seg[11] or None,
                                )
                            except (ArithmeticError, ValueError):
                                pass
                    if claim is None:
                        claim = claim_payment(seg, n)
                    tx.claims.append(claim)
                    state = CLAIM
                    continue
                if sid == "NM1":
                    if state == CLAIM and len(seg) > 9 and seg[1] == "QC":  # the patient
                        claim.patient = new(PersonName, (seg[3], seg[4], seg[5], seg[8], seg[9]))
                    else:
                        rec = _claim_name(seg, n, state, claim)
                        if rec is not None:
                            heads[head] = rec
                    continue
                if sid == "CAS":
                    if len(seg) != 4 or seg[1] not in groups:
                        _cas_checked(seg, n, state, claim, line, mc)
                        continue
                    rec = (sid, seg[1], seg[2], {})  # {amount text: line Adjustment}
                elif sid == "DTM":
                    if len(seg) != 3 or dtm_record(seg) is None:
                        _date_checked(seg, n, state, tx, claim, line, warns)
                        continue
                    rec = (sid, seg[1])
                elif sid == "REF" or sid == "AMT" or sid == "QTY":
                    if len(seg) != 3:
                        _valued_checked(seg, n, state, env, claim, line, mc)
                        continue
                    rec = (sid, seg[1])
                elif sid == "LQ":
                    if state != LINE:
                        raise _unexpected(n, sid, state)
                    if len(seg) < 3 or not seg[2]:
                        raise X12Error("LQ01 qualifier and LQ02 remark code are required", n, sid)
                    remark = seg[2] if seg[1] == "HE" else f"{seg[1]}:{seg[2]}"
                    if line.remarks is empty_list:
                        line.remarks = [remark]
                    else:
                        line.remarks.append(remark)
                    continue
                elif sid == "MOA" or sid == "MIA":
                    if state != CLAIM:
                        raise _unexpected(n, sid, state)
                    remarks = claim_remarks(seg)
                    if claim.remarks is empty_list:
                        claim.remarks = remarks
                    else:
                        claim.remarks.extend(remarks)
                    continue
                else:
                    state = env.segment(seg, n, sid, state)
                    tx, warns = env.tx, env.warns
                    if env.out:  # SE closed a transaction set
                        yield env.out.pop()
                    continue
                heads[head] = rec
            # A record, memoized or just made: the last element (v) and the loop state are left.
            k = rec[0]
            if k == "DTM":
                d = dates_get(v)
                if d is None:  # not a date seen clean (or DATES is full)
                    _date_checked(raw.split(el), n, state, tx, claim, line, warns)
                    continue
                q = rec[1]
                if state == LINE:
                    if q == "472" or q == "150":
                        line.service_date = d
                    elif q == "151":
                        line.service_end_date = d
                    else:
                        warns.append(f"segment {n} (DTM): DTM01 {shown(q)} ignored in loop 2110")
                elif state == CLAIM:
                    if q == "232":
                        claim.statement_from = d
                    elif q == "233":
                        claim.statement_to = d
                    elif q == "050":
                        claim.received_date = d
                    elif q == "036":
                        claim.coverage_expiration = d
                    else:
                        warns.append(f"segment {n} (DTM): DTM01 {shown(q)} ignored in loop 2100")
                elif state == HDR:
                    if q == "405":
                        tx.production_date = d
                else:
                    raise _unexpected(n, k, state)
            elif k == "CAS":
                if state == LINE:
                    adj = rec[3].get(v)
                    if adj is None:
                        amt = mc_get(v)
                        if amt is None:
                            amt = mc[v] = number(v, n, k, 3)
                        adj = rec[3][v] = new(Adjustment, (rec[1], rec[2], amt, None, "line"))
                    if line.adjustments is empty_list:
                        line.adjustments = [adj]
                    else:
                        line.adjustments.append(adj)
                    continue
                if state != CLAIM:
                    raise _unexpected(n, k, state)
                amt = mc_get(v)
                if amt is None:
                    amt = mc[v] = number(v, n, k, 3)
                adj = new(Adjustment, (rec[1], rec[2], amt, None, "claim"))
                if claim.adjustments is empty_list:
                    claim.adjustments = [adj]
                else:
                    claim.adjustments.append(adj)
            elif k == "REF":
                q = rec[1]
                if state == LINE:
                    if line.refs is empty_dict:
                        line.refs = {q: v}
                    else:
                        line.refs[q] = v
                    if q == "6R":
                        line.line_control_number = v
                elif state == CLAIM:
                    if claim.refs is empty_dict:
                        claim.refs = {q: v}
                    else:
                        claim.refs[q] = v
                else:
                    env.ref(raw.split(el), n, state)
            elif k == "NM1":
                if v != rec[3]:  # same name, another NM109: not the memoized segment
                    rec = _claim_name(raw.split(el), n, state, claim)
                    if rec is not None:
                        heads[head] = rec
                    continue
                if state != CLAIM:
                    _name_checked(None, n, state, claim)  # raises
                q = rec[1]
                if q == "82":
                    claim.rendering_provider = rec[2]
                elif q == "TT":
                    claim.crossover_carrier = rec[2]
                else:
                    claim.corrected_priority_payer = rec[2]
            else:  # AMT or QTY
                if state == LINE:
                    target = line
                elif state == CLAIM:
                    target = claim
                else:
                    raise _unexpected(n, k, state)
                amt = mc_get(v)
                if amt is None:
                    amt = mc[v] = number(v, n, k, 2)
                if k == "AMT":
                    if target.amounts is empty_dict:
                        target.amounts = {rec[1]: amt}
                    else:
                        target.amounts[rec[1]] = amt
                elif target.quantities is empty_dict:
                    target.quantities = {rec[1]: amt}
                else:
                    target.quantities[rec[1]] = amt
        first += len(raws)
    n = first - 1
    if state != OUT:
        where = _EXPECTED[state][0]
        missing = {ISA_: "IEA", GS_: "GE"}.get(state, "SE")
        raise X12Error(f"file truncated: ends {where}, expected {missing}", n + 1, missing)


# ----------------------------- checking paths for segments without a memo record


def _claim_name(seg, n, state, claim) -> tuple | None:
    """Loop 2100 NM1 other than the usual patient one: checks it and sets the claim's name.

    Returns the memo record for a name that is not PHI (rendering provider,
    crossover carrier, priority payer: the same text recurs on many claims).
    """
    rec = name_record(seg)
    if rec is None or state != CLAIM:
        _name_checked(seg, n, state, claim)  # raises
    q, name = rec[1], rec[2]
    if q == "QC":  # PHI, unique per claim: not memoized
        claim.patient = name
    elif q == "IL":
        claim.subscriber = name
    elif q == "74":
        claim.corrected_patient = name
    else:
        if q == "82":
            claim.rendering_provider = name
        elif q == "TT":
            claim.crossover_carrier = name
        else:
            claim.corrected_priority_payer = name
        return ("NM1", q, name, seg[-1])  # seg[-1]: the text after the head
    return None


def _name_checked(seg, n, state, claim) -> None:
    """NM1 outside loop 2100 (any NM1) or with a wrong NM101 (``seg``): raises."""
    if state != CLAIM:
        if state == PAYER or state == PAYEE or state == HDR:
            raise X12Error("payer/payee loops use N1, not NM1", n, "NM1")
        raise _unexpected(n, "NM1", state)
    q = seg[1] if len(seg) > 1 else ""
    if q not in CLAIM_NAMES:
        raise X12Error(
            f"NM101 {shown(q)} is not allowed in loop 2100; expected QC, IL, 74, 82, TT, PR or GB",
            n,
            "NM1",
        )
    raise AssertionError("name_record accepts every valid NM1")  # pragma: no cover


def _cas_checked(seg, n, state, claim, line, mc) -> None:
    """CAS with a bad group code, or with quantities or several triplets."""
    if state == LINE:
        obj, level = line, "line"
    elif state == CLAIM:
        obj, level = claim, "claim"
    else:
        raise _unexpected(n, "CAS", state)
    adjs: list[Adjustment] = []
    read_cas(seg, n, level, adjs, mc)
    if adjs:
        if obj.adjustments is EMPTY_LIST:
            obj.adjustments = adjs
        else:
            obj.adjustments.extend(adjs)


def _valued_checked(seg, n, state, env, claim, line, mc) -> None:
    """REF, AMT or QTY with other than exactly two elements (missing ones raise)."""
    sid = seg[0]
    if len(seg) < 3:
        raise X12Error(f"{sid}01 qualifier and {sid}02 value are required", n, sid)
    q, v = seg[1], seg[2]
    if state == LINE:
        obj = line
    elif state == CLAIM:
        obj = claim
    elif sid == "REF":
        env.ref(seg, n, state)
        return
    else:
        raise _unexpected(n, sid, state)
    if sid == "REF":
        if obj.refs is EMPTY_DICT:
            obj.refs = {}
        obj.refs[q] = v
        if q == "6R" and obj is line:
            line.line_control_number = v
        return
    amt = mc.get(v)
    if amt is None:
        amt = mc[v] = number(v, n, sid, 2)
    if sid == "AMT":
        if obj.amounts is EMPTY_DICT:
            obj.amounts = {}
        obj.amounts[q] = amt
    else:
        if obj.quantities is EMPTY_DICT:
            obj.quantities = {}
        obj.quantities[q] = amt


def _date_checked(seg, n, state, tx, claim, line, warns) -> None:
    """DTM without a memo record yet, or with a date not known clean."""
    sid = "DTM"
    if len(seg) < 3:
        raise X12Error("DTM01 qualifier and DTM02 date are required", n, sid)
    q = seg[1]
    if state == LINE:
        if q == "472" or q == "150":
            line.service_date = DATES.get(seg[2]) or read_date(seg[2], n, sid, 2, warns)
        elif q == "151":
            line.service_end_date = read_date(seg[2], n, sid, 2, warns)
        else:
            warns.append(f"segment {n} (DTM): DTM01 {shown(q)} ignored in loop 2110")
    elif state == CLAIM:
        d = DATES.get(seg[2]) or read_date(seg[2], n, sid, 2, warns)
        if q == "232":
            claim.statement_from = d
        elif q == "233":
            claim.statement_to = d
        elif q == "050":
            claim.received_date = d
        elif q == "036":
            claim.coverage_expiration = d
        else:
            warns.append(f"segment {n} (DTM): DTM01 {shown(q)} ignored in loop 2100")
    elif state == HDR:
        if q == "405":
            tx.production_date = read_date(seg[2], n, sid, 2, warns)
    else:
        raise _unexpected(n, sid, state)


# ------------------------------------------------- envelope, header, summary


class _Envelope:
    """Interchange/group/transaction bookkeeping and the header and summary loops.

    These segments are a handful per transaction, so they live off the hot loop;
    ``segment`` returns the new loop state and leaves ``tx``/``warns`` current.
    """

    __slots__ = (
        "comp",
        "out",
        "isa_numbers",
        "sender",
        "receiver",
        "isa13",
        "gs06",
        "st02",
        "groups",
        "sets",
        "st_n",
        "tx",
        "party",
        "warns",
        "trn_seen",
        "notes",
    )

    def __init__(self, comp: str, notes: list[str] | None = None) -> None:
        self.comp = comp
        # What the tokenizer repaired in the file (a bare ST..SE, a wrapped ISA): every
        # transaction set's warnings start with them.
        self.notes = notes or []
        self.out: list[RemitTransaction] = []
        self.isa_numbers: list[str] = []
        self.sender = self.receiver = self.isa13 = self.gs06 = self.st02 = ""
        self.groups = self.sets = self.st_n = 0
        self.tx: RemitTransaction | None = None
        self.party: Party | None = None
        self.warns: list[str] = []
        self.trn_seen = False

    def ref(self, seg: list[str], n: int, state: int) -> None:
        """REF outside loops 2100/2110 (length already checked)."""
        if state == PAYER or state == PAYEE:
            self.party.refs[seg[1]] = seg[2]
        elif state == HDR:
            self.tx.refs[seg[1]] = seg[2]
        else:
            raise _unexpected(n, "REF", state)

    def segment(self, seg: list[str], n: int, sid: str, state: int) -> int:  # noqa: C901
        tx = self.tx
        if sid == "PER":
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
            tx.provider_adjustments.extend(read_plb(seg, n, self.comp, self.warns))
            state = SUMMARY
        elif sid == "N1":
            # Loop 1000A (N1*PR, the payer) then 1000B (N1*PE, the payee), once each.
            q = seg[1] if len(seg) > 1 else ""
            if state == HDR:
                if q != "PR":
                    raise X12Error(
                        "N101 must be PR: the payer loop (1000A) comes first; expected N1*PR",
                        n,
                        sid,
                    )
                if not self.trn_seen:
                    raise X12Error(
                        "expected TRN (reassociation trace) before the payer loop", n, sid
                    )
            elif state == PAYER:
                if q != "PE":
                    raise X12Error(
                        "N101 must be PE: the payee loop (1000B) follows the payer's;"
                        " expected N1*PE",
                        n,
                        sid,
                    )
            else:  # before the header, a second payee, or inside the claims
                raise _unexpected(n, sid, state)
            if len(seg) < 3 or not seg[2]:
                raise X12Error("N102 name is required", n, sid)
            s = seg + PAD
            party = Party(q, s[2], s[3] or None, s[4] or None)
            if q == "PR":
                self.party = tx.payer = party
                state = PAYER
            else:
                self.party = tx.payee = party
                state = PAYEE
        elif sid == "N3" or sid == "N4":
            if state != PAYER and state != PAYEE:
                raise _unexpected(n, sid, state)
            self.party.address += tuple(seg[1:])
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
            self.trn_seen = True
        elif sid == "CUR":
            if state != HDR:
                raise _unexpected(n, sid, state)
            tx.payment.currency = seg[2] if len(seg) > 2 else None
        elif sid == "BPR":
            state = self._bpr(seg, n, state)
        elif sid in ("SE", "ST", "GS", "GE", "IEA", "ISA"):
            state = self._envelope(seg, n, sid, state)
        elif sid.startswith("ISA"):
            raise X12Error("every interchange in one file must use the same separators", n, "ISA")
        else:
            raise _unexpected(n, sid, state)
        return state

    def _bpr(self, seg: list[str], n: int, state: int) -> int:
        sid = "BPR"
        if state != HDR_START:
            raise _unexpected(n, sid, state)
        if len(seg) < 5:
            raise X12Error("BPR01-BPR04 are required", n, sid)
        if seg[3] not in ("C", "D"):
            raise X12Error("BPR03 must be C (credit) or D (debit)", n, sid)
        paid_on = None
        if len(seg) > 16 and seg[16]:
            paid_on = read_date(seg[16], n, sid, 16, self.warns)
        else:
            self.warns.append(f"segment {n} (BPR): BPR16 payment date is missing")
        pay = Payment(seg[1], number(seg[2], n, sid, 2), seg[3], seg[4], paid_on)
        tx = RemitTransaction(
            self.st02, self.isa13, self.gs06, pay, Party("PR", ""), Party("PE", "")
        )
        tx.warnings = self.warns
        self.tx = tx
        return HDR

    def _envelope(self, seg: list[str], n: int, sid: str, state: int) -> int:  # noqa: C901
        st02 = self.st02
        if sid == "SE":
            if state < HDR_START:
                raise _unexpected(n, sid, state)
            if state < PAYEE or state == LXS:
                raise X12Error(
                    f"SE before the transaction is complete; expected {_EXPECTED[state][1]}", n, sid
                )
            count = seg[1] if len(seg) > 1 else ""
            want = n - self.st_n + 1
            if not count.isdigit() or int(count) != want:
                raise X12Error(
                    f"SE01 segment count is {count or 'missing'}, expected {want}", n, sid
                )
            if len(seg) < 3 or seg[2] != st02:
                raise X12Error(
                    f"SE02 does not match ST02 control number {shown(st02, 9, quote=False)}",
                    n,
                    sid,
                )
            self.out.append(self.tx)
            self.tx = self.party = None
            return GS_
        if sid == "ST":
            if state != GS_:
                raise _envelope_error(n, sid, state, st02)
            if len(seg) < 3 or seg[1] != "835" or not seg[2]:
                raise X12Error("expected ST*835 with a control number", n, sid)
            if len(seg) > 3 and seg[3] and not seg[3].startswith("005010X221"):
                raise X12Error("ST03 must be 005010X221A1", n, sid)
            self.st02, self.st_n, self.sets = seg[2], n, self.sets + 1
            self.warns, self.trn_seen = list(self.notes), False
            return HDR_START
        if sid == "GS":
            if state != ISA_:
                raise _envelope_error(n, sid, state, st02)
            if len(seg) < 9 or seg[1] != "HP":
                raise X12Error("expected GS*HP (835 functional group) with 8 elements", n, sid)
            if not seg[8].startswith("005010X221"):
                raise X12Error("GS08 must be 005010X221A1", n, sid)
            self.gs06, self.sets, self.groups = seg[6], 0, self.groups + 1
            return GS_
        if sid == "GE":
            if state != GS_:
                raise _envelope_error(n, sid, state, st02)
            sets = self.sets
            if len(seg) < 3 or not seg[1].isdigit() or int(seg[1]) != sets:
                raise X12Error(
                    f"GE01 must count the {sets} transaction set(s) in the group", n, sid
                )
            if not same_number(seg[2], self.gs06):
                raise X12Error(
                    "GE02 does not match GS06 group control number"
                    f" {shown(self.gs06, 9, quote=False)}",
                    n,
                    sid,
                )
            return ISA_
        if sid == "IEA":
            if state != ISA_:
                raise _envelope_error(n, sid, state, st02)
            groups, isa13 = self.groups, self.isa13
            if len(seg) < 3 or not seg[1].isdigit() or int(seg[1]) != groups:
                raise X12Error(f"IEA01 must count the {groups} functional group(s)", n, sid)
            if not same_number(seg[2], isa13):
                raise X12Error(
                    "IEA02 does not match ISA13 interchange control number"
                    f" {shown(isa13, 9, quote=False)}",
                    n,
                    sid,
                )
            return OUT
        # ISA
        if state != OUT:
            raise _envelope_error(n, sid, state, st02)
        if len(seg) != 17:
            raise X12Error("ISA must have 16 elements", n, sid)
        if seg[16] != self.comp:
            raise X12Error("every interchange in one file must use the same separators", n, sid)
        self.isa13, self.groups = seg[13], 0
        self.isa_numbers.append(seg[13])
        if not self.sender:
            self.sender, self.receiver = seg[6].strip(), seg[8].strip()
        return ISA_


def _envelope_error(n: int, sid: str, state: int, st02: str) -> X12Error:
    if state >= HDR_START:
        return X12Error(
            f"expected SE closing transaction {shown(st02, 9, quote=False)} before {sid}", n, sid
        )
    if state == GS_:
        return X12Error(f"expected GE closing the functional group before {sid}", n, sid)
    if state == ISA_:
        return X12Error(f"expected IEA closing the interchange before {sid}", n, sid)
    return _unexpected(n, sid, state)
