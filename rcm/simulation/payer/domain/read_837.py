"""Read an 837P (005010X222A1) or 837I (005010X223A2) interchange into a ``Submission``.

Reads what the rcm billing service writes and what real senders write (the public
LinuxForHealth samples): HL levels 20/22/23, payer from loop 2010BB only (the NM1*PR of
2330B other-payer loops is ignored), lines from LX + SV1/SV2. On a secondary or tertiary
claim it reads what the prior payers decided: 2320 AMT*D (paid) and, per line, 2430 SVD (paid)
with its PR CAS (the patient's share left). It keeps what a payer needs to acknowledge and
adjudicate, nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from shared.x12 import Separators, X12Error, split_segments

from .model import OtherPayer, Submission, SubmittedClaim, SubmittedLine, SubmittedTransaction

# HI qualifiers carrying diagnoses (ICD-10 A-prefixed, ICD-9 without): principal, other,
# admitting, reason for visit, external cause. Occurrence/value/condition codes are skipped.
_DIAGNOSIS_QUALIFIERS = {"ABK", "ABF", "ABJ", "APR", "ABN", "BK", "BF", "BJ", "PR", "BN"}
# Some senders declare ':' in ISA16 and then write the 5010-recommended '>' anyway.
_FALLBACK_COMPONENT = ">"


@dataclass
class _Line:
    number: int
    seg_no: int
    code: str = ""
    modifiers: tuple[str, ...] = ()
    charge: Decimal | None = None
    units: Decimal = Decimal(1)
    revenue_code: str | None = None
    service_date: date | None = None
    service_end: date | None = None
    control_number: str | None = None
    # 2430: [SVD02 paid, PR CAS total, of which PR-1 deductible]
    prior: list[list[Decimal]] = field(default_factory=list)


@dataclass
class _Claim:
    seg_no: int
    fields: dict
    statement: tuple[date, date] | None = None
    diagnoses: list[str] = field(default_factory=list)
    lines: list[_Line] = field(default_factory=list)
    other_payer: bool = False  # inside a 2320/2330 loop: its NM1/REF are not ours
    prior_paid: Decimal | None = None  # 2320 AMT*D, summed over the prior payers
    others: list[dict] = field(default_factory=list)  # 2320 SBR01/SBR09 + 2330B NM1*PR


class _Reader:
    def __init__(self, segments: list[list[str]], seps: Separators):
        self.segments = segments
        self.seps = seps
        self.warnings: list[str] = []
        self.claims: list[SubmittedClaim] = []
        self.transactions: list[SubmittedTransaction] = []
        self.header: dict[str, str] = {}
        self.n = 0  # 1-based number of the segment being read
        self.seg: list[str] = []
        self.st: dict | None = None
        self.st_count = 0

    # ------------------------------------------------------------------ helpers
    def fail(self, message: str) -> X12Error:
        return X12Error(message, self.n, self.seg[0] if self.seg else None)

    def el(self, i: int) -> str:
        return self.seg[i].strip() if len(self.seg) > i else ""

    def need(self, i: int, what: str) -> str:
        value = self.el(i)
        if not value:
            raise self.fail(f"{self.seg[0]}{i:02d} ({what}) is required")
        return value

    def composite(self, value: str) -> list[str]:
        if self.seps.component in value:
            return value.split(self.seps.component)
        if _FALLBACK_COMPONENT in value:
            note = f"component separator '{_FALLBACK_COMPONENT}' used but ISA16 declares '{self.seps.component}'"
            if note not in self.warnings:
                self.warnings.append(note)
            return value.split(_FALLBACK_COMPONENT)
        return [value]

    def money(self, i: int, what: str) -> Decimal:
        raw = self.need(i, what)
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise self.fail(f"{self.seg[0]}{i:02d} ({what}) {raw!r} is not a number") from None
        if not value.is_finite() or value < 0:
            raise self.fail(f"{self.seg[0]}{i:02d} ({what}) must be a non-negative amount")
        return value.quantize(Decimal("0.01"))

    def dates(self, fmt_i: int, value_i: int) -> tuple[date, date]:
        fmt, raw = self.need(fmt_i, "date format"), self.need(value_i, "date")
        try:
            if fmt == "D8":
                d = datetime.strptime(raw, "%Y%m%d").date()
                return d, d
            if fmt == "RD8":
                start, _, end = raw.partition("-")
                return (
                    datetime.strptime(start, "%Y%m%d").date(),
                    datetime.strptime(end, "%Y%m%d").date(),
                )
            if fmt == "DT":
                d = datetime.strptime(raw[:8], "%Y%m%d").date()
                return d, d
        except ValueError:
            raise self.fail(
                f"{self.seg[0]}{value_i:02d} {raw!r} is not a valid {fmt} date"
            ) from None
        raise self.fail(f"{self.seg[0]}{fmt_i:02d} date format {fmt!r} is not D8, RD8 or DT")

    # ------------------------------------------------------------------ reading
    def read(self) -> Submission:
        ids = [s[0] for s in self.segments]
        if not ids or ids[0] != "ISA":
            raise X12Error("interchange must start with ISA", 1, ids[0] if ids else None)
        for n, seg in enumerate(self.segments, start=1):
            self.n, self.seg = n, seg
            handler = _HANDLERS.get(seg[0])
            if handler is None:
                continue
            if seg[0] not in _ENVELOPE:
                self._in_st()
            handler(self)
        if "iea" not in self.header:
            raise X12Error("interchange has no IEA trailer", len(self.segments), "IEA")
        return Submission(
            interchange_control_number=self.header["isa13"],
            sender_id=self.header["sender"],
            receiver_id=self.header["receiver"],
            group_control_number=self.header.get("gs06", ""),
            functional_id=self.header.get("gs01", ""),
            version=self.header.get("gs08", ""),
            transactions=tuple(self.transactions),
            claims=tuple(self.claims),
            warnings=tuple(self.warnings),
        )

    def _isa(self) -> None:
        if len(self.seg) != 17:
            raise self.fail(f"ISA must have 16 elements, found {len(self.seg) - 1}")
        self.header.update(
            isa13=self.need(13, "control number"), sender=self.el(6), receiver=self.el(8)
        )

    def _gs(self) -> None:
        if self.el(1) != "HC":
            raise self.fail(f"GS01 {self.el(1)!r} is not HC: not a claim (837) group")
        self.header.update(gs01="HC", gs06=self.need(6, "group control number"), gs08=self.el(8))
        self.st_count = 0

    def _st(self) -> None:
        if self.st is not None:
            raise self.fail(f"ST before the SE of transaction set {self.st['cn']}")
        if "gs06" not in self.header:
            raise self.fail("ST outside a functional group (GS...GE)")
        if self.el(1) != "837":
            raise self.fail(f"ST01 {self.el(1)!r} is not 837")
        self.st = {
            "cn": self.need(2, "control number"),
            "impl": self.el(3) or self.header.get("gs08", ""),
        }
        self.st_start, self.st_claims = self.n, 0
        self.submitter = ("", "")
        self.billing: dict = {}
        self.subscriber: dict | None = None
        self.patient: tuple[str, str] | None = None
        self.claim: _Claim | None = None
        self.line: _Line | None = None
        self.bht_ref = ""
        self.hl_level = ""

    def _in_st(self) -> None:
        if self.st is None:
            raise self.fail(f"{self.seg[0]} outside a transaction set (ST...SE)")

    def _bht(self) -> None:
        self.bht_ref = self.el(3)

    def _hl(self) -> None:
        self._close_claim()
        level = self.need(3, "hierarchical level code")
        self.hl_level = level
        if level == "20":
            self.billing, self.subscriber, self.patient = {}, None, None
        elif level == "22":
            if not self.billing:
                raise self.fail("subscriber HL (22) before any billing provider HL (20)")
            self.subscriber, self.patient = {}, None
        elif level == "23":
            if self.subscriber is None:
                raise self.fail("patient HL (23) before any subscriber HL (22)")
            self.patient = ("", "")
        else:
            raise self.fail(f"HL03 {level!r} is not 20, 22 or 23")

    def _sbr(self) -> None:
        if self.claim is not None:
            self.claim.other_payer = True  # 2320: other subscriber information
            self.claim.others.append({"sequence": self.el(1), "filing": self.el(9) or "CI"})
        elif self.subscriber is not None:
            self.subscriber.update(sequence=self.el(1) or "P", filing=self.el(9) or "CI")

    def _nm1(self) -> None:
        if len(self.seg) < 2:
            raise self.fail("NM101 (entity identifier) is required")
        entity = self.seg[1]
        last, first, qual, ident = self.el(3), self.el(4), self.el(8), self.el(9)
        if entity == "41" and self.hl_level == "":
            self.submitter = (last, ident)
        elif self.claim is not None:
            # 2330B: the other payer, where a crossover would go; 2310x providers are not used.
            if entity == "PR" and self.claim.others and self.line is None:
                self.claim.others[-1].update(payer_id=ident, name=last)
            return
        elif entity == "85" and self.hl_level == "20":
            self.billing.update(name=last, npi=ident if qual == "XX" else None)
        elif entity == "IL" and self.subscriber is not None:
            self.subscriber.update(last=last, first=first, member=ident or None)
        elif entity == "PR" and self.subscriber is not None:
            self.subscriber.update(payer_name=last, payer_id=ident)
        elif entity == "QC" and self.patient is not None:
            self.patient = (last, first)

    def _ref(self) -> None:
        qual = self.el(1)
        if self.line is not None:
            if qual == "6R":
                self.line.control_number = self.el(2)
        elif self.claim is not None:
            if not self.claim.other_payer and qual in {"F8", "G1"}:
                self.claim.fields[qual] = self.el(2)
        elif self.hl_level == "20" and qual in {"EI", "SY"}:
            self.billing["tax_id"] = self.el(2)

    def _dtp(self) -> None:
        qual = self.el(1)
        if self.line is not None and qual == "472":
            self.line.service_date, self.line.service_end = self.dates(2, 3)
        elif self.line is None and self.claim is not None and qual == "434":
            self.claim.statement = self.dates(2, 3)

    def _amt(self) -> None:
        if self.claim is not None and self.line is None and self.claim.other_payer:
            if self.el(1) == "D":  # 2320: the other payer's paid amount
                paid = self.money(2, "payer paid amount")
                self.claim.prior_paid = (self.claim.prior_paid or Decimal("0.00")) + paid

    def _svd(self) -> None:
        if self.line is None:
            raise self.fail("SVD (line adjudication) outside a service line")
        self.line.prior.append(
            [self.money(2, "line paid amount"), Decimal("0.00"), Decimal("0.00")]
        )

    def _cas(self) -> None:
        # 2430 (after SVD): the prior payer's line adjustments; patient share (PR) kept.
        if self.line is None or not self.line.prior or self.el(1) != "PR":
            return
        for i in range(3, len(self.seg), 3):
            if self.el(i):
                amount = self.money(i, "adjustment amount")
                self.line.prior[-1][1] += amount
                if self.el(i - 1) == "1":
                    self.line.prior[-1][2] += amount

    def _hi(self) -> None:
        if self.claim is None or self.line is not None:
            return
        for value in self.seg[1:]:
            parts = self.composite(value)
            if len(parts) >= 2 and parts[0] in _DIAGNOSIS_QUALIFIERS and parts[1]:
                self.claim.diagnoses.append(parts[1])

    def _clm(self) -> None:
        self._close_claim()
        if self.subscriber is None:
            raise self.fail("CLM before any subscriber HL (22)")
        if not self.subscriber.get("payer_id"):
            raise self.fail("claim has no payer (NM1*PR in loop 2010BB with NM109)")
        clm05 = self.composite(self.need(5, "facility code"))
        if len(clm05) < 3 or not clm05[0] or not clm05[2]:
            raise self.fail("CLM05 must be facility code:qualifier:frequency code")
        fields = {
            "claim_id": self.need(1, "patient control number"),
            "total_charge": self.money(2, "total charge"),
            "facility_code": clm05[0],
            "frequency_code": clm05[2],
        }
        self.claim = _Claim(seg_no=self.n, fields=fields)
        self.st_claims += 1

    def _lx(self) -> None:
        if self.claim is None:
            raise self.fail("LX (service line) outside a claim")
        self._close_line()
        try:
            number = int(self.need(1, "line number"))
        except ValueError:
            raise self.fail(f"LX01 {self.el(1)!r} is not a number") from None
        self.line = _Line(number=number, seg_no=self.n)

    def _sv1(self) -> None:
        line = self._current_line()
        proc = self.composite(self.need(1, "procedure"))
        line.code, line.modifiers = self._procedure(proc)
        line.charge = self.money(2, "line charge")
        line.units = self._units(4)

    def _sv2(self) -> None:
        line = self._current_line()
        line.revenue_code = self.need(1, "revenue code")
        if self.el(2):
            line.code, line.modifiers = self._procedure(self.composite(self.el(2)))
        line.charge = self.money(3, "line charge")
        line.units = self._units(5)

    def _current_line(self) -> _Line:
        if self.line is None:
            raise self.fail(f"{self.seg[0]} without a preceding LX")
        if self.line.charge is not None:
            raise self.fail(f"second service segment in line {self.line.number}")
        return self.line

    def _procedure(self, parts: list[str]) -> tuple[str, tuple[str, ...]]:
        if len(parts) < 2 or not parts[1]:
            raise self.fail("procedure composite must be qualifier:code")
        return parts[1], tuple(m for m in parts[2:6] if m)

    def _units(self, i: int) -> Decimal:
        raw = self.el(i)
        if not raw:
            return Decimal(1)
        try:
            return Decimal(raw)
        except InvalidOperation:
            raise self.fail(f"{self.seg[0]}{i:02d} units {raw!r} is not a number") from None

    def _se(self) -> None:
        self._close_claim()
        count = self.n - self.st_start + 1
        if self.el(1) != str(count):
            raise self.fail(f"SE01 says {self.el(1)!r} segments, transaction has {count}")
        if self.el(2) != self.st["cn"]:
            raise self.fail(f"SE02 {self.el(2)!r} does not match ST02 {self.st['cn']!r}")
        self.transactions.append(
            SubmittedTransaction(
                control_number=self.st["cn"],
                implementation=self.st["impl"],
                reference=self.bht_ref,
                submitter_name=self.submitter[0],
                submitter_id=self.submitter[1],
                claim_count=self.st_claims,
            )
        )
        self.st = None
        self.st_count += 1

    def _ge(self) -> None:
        if self.st is not None:
            raise self.fail(f"GE before the SE of transaction set {self.st['cn']}")
        if self.el(1) != str(self.st_count):
            raise self.fail(f"GE01 says {self.el(1)!r} transaction sets, group has {self.st_count}")

    def _iea(self) -> None:
        if self.el(2) != self.header.get("isa13"):
            raise self.fail("IEA02 does not match ISA13")
        self.header["iea"] = "1"

    # ------------------------------------------------------------------ closing
    def _close_line(self) -> None:
        if self.line is None or self.claim is None:
            return
        if self.line.charge is None:
            raise X12Error(
                f"service line {self.line.number} has no SV1/SV2", self.line.seg_no, "LX"
            )
        self.claim.lines.append(self.line)
        self.line = None

    def _close_claim(self) -> None:
        claim = self.claim
        if claim is None:
            return
        self._close_line()
        if not claim.lines:
            raise X12Error(
                f"claim {claim.fields['claim_id']} has no service lines", claim.seg_no, "CLM"
            )
        claim_type = "institutional" if "X223" in self.st["impl"] else "professional"
        line_dates = [ln.service_date for ln in claim.lines if ln.service_date]
        line_ends = [ln.service_end for ln in claim.lines if ln.service_end]
        if claim.statement is not None:
            start, end = claim.statement
        elif line_dates:
            start, end = min(line_dates), max(line_ends)
        else:
            raise X12Error(
                f"claim {claim.fields['claim_id']} has no service date (DTP*472 or DTP*434)",
                claim.seg_no,
                "CLM",
            )
        if claim_type == "professional" and line_dates:
            start = min(line_dates)
        sub, bill = self.subscriber or {}, self.billing
        patient = self.patient if self.patient and self.patient[0] else None
        f = claim.fields
        self.claims.append(
            SubmittedClaim(
                claim_id=f["claim_id"],
                total_charge=f["total_charge"],
                frequency_code=f["frequency_code"],
                facility_code=f["facility_code"],
                claim_type=claim_type,
                payer_id=sub["payer_id"],
                payer_name=sub.get("payer_name", ""),
                billing_provider_npi=bill.get("npi"),
                billing_provider_tax_id=bill.get("tax_id"),
                billing_provider_name=bill.get("name", ""),
                subscriber_last_name=sub.get("last", ""),
                subscriber_first_name=sub.get("first", ""),
                patient_last_name=patient[0] if patient else sub.get("last", ""),
                patient_first_name=patient[1] if patient else sub.get("first", ""),
                member_id=sub.get("member"),
                service_date=start,
                service_end_date=max(end, start),
                diagnoses=tuple(claim.diagnoses),
                lines=tuple(
                    SubmittedLine(
                        line_number=ln.number,
                        code=ln.code,
                        modifiers=ln.modifiers,
                        charge=ln.charge,
                        units=ln.units,
                        service_date=ln.service_date or start,
                        revenue_code=ln.revenue_code,
                        line_control_number=ln.control_number,
                        prior_paid=sum((p[0] for p in ln.prior), Decimal("0.00")),
                        prior_patient=ln.prior[-1][1] if ln.prior else None,
                        prior_deductible=ln.prior[-1][2] if ln.prior else Decimal("0.00"),
                    )
                    for ln in claim.lines
                ),
                st_control_number=self.st["cn"],
                payer_sequence=sub.get("sequence", "P"),
                filing_indicator=sub.get("filing", "CI"),
                payer_claim_control_number=f.get("F8"),
                prior_authorization=f.get("G1"),
                prior_paid=claim.prior_paid,
                other_payers=tuple(
                    OtherPayer(o["sequence"], o["payer_id"], o.get("name", ""), o["filing"])
                    for o in claim.others
                    if o.get("payer_id")
                ),
                type_of_bill=(
                    f"0{f['facility_code']}{f['frequency_code']}"
                    if claim_type == "institutional"
                    else None
                ),
            )
        )
        self.claim = None


# Segment id -> reader method; anything else (PER, DMG, PRV, CL1, MOA...) is skipped.
_ENVELOPE = {"ISA", "GS", "ST", "GE", "IEA"}
_HANDLERS = {
    tag: getattr(_Reader, "_" + tag.lower())
    for tag in ("ISA", "GS", "ST", "BHT", "HL", "SBR", "NM1", "REF", "DTP", "HI", "CLM", "LX")
    + ("SV1", "SV2", "SE", "GE", "IEA", "AMT", "CAS")
} | {"SVD": _Reader._svd}


def read_837(text: str) -> Submission:
    """Read one 837P/837I interchange.

    Raises ``shared.x12.X12Error`` (naming the 1-based segment number and id) when the
    file is not an 837 or is malformed: missing payer, a claim without lines or dates,
    bad amounts or dates, wrong SE/GE/IEA counts. Messages never carry PHI.
    """
    segments, seps = split_segments(text)
    return _Reader(segments, seps).read()
