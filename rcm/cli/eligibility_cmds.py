"""`rcm eligibility` (270 out, 271 in) and `rcm claim FILE --after ERA.835` (the next payer's
837 from the prior payers' 835s), offline: no broker, no database."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

from rcm.cli.main import UserError, print_x12_json, read_x12

SENDER = "RCMSUBMITTER"
RECEIVER = "CLEARINGHOUSE"


def add_parsers(sub) -> None:
    """Register `rcm eligibility` on the top-level subparsers."""
    s = sub.add_parser(
        "eligibility",
        help="print the 270 for an encounter's coverages, or read a 271 as JSON (--read)",
    )
    s.add_argument("file", help="an encounter (FHIR, native JSON, HL7 v2), or a 271 with --read")
    s.add_argument("--read", action="store_true", help="FILE is a 271: print it as JSON")
    s.add_argument("--encounter", metavar="ID", help="the encounter of a multi-encounter input")
    s.add_argument(
        "--service-type",
        dest="service_types",
        action="append",
        metavar="CODE",
        help="EQ service type code to ask about (repeatable; default 30, health benefit plan)",
    )
    s.set_defaults(func=cmd_eligibility)


def cmd_eligibility(args) -> int:
    if args.read:
        return _read_271(args.file)
    from rcm.cli.intake_cmds import one_encounter
    from services.intake.domain.eligibility import build_270, requests_for_encounter

    enc = one_encounter(args.file, args.encounter)
    try:
        requests = requests_for_encounter(enc, service_types=args.service_types or ("30",))
        text = build_270(
            requests,
            sender_id=SENDER,
            receiver_id=RECEIVER,
            interchange_control_number=1,
            group_control_number=1,
            created_at=datetime.now(UTC),
        )
    except ValueError as e:
        raise UserError(f"{args.file}: cannot write a 270: {e}") from e
    sys.stdout.write(text)
    return 0


def _read_271(path: str) -> int:
    from services.intake.domain.eligibility import read_271
    from services.intake.domain.eligibility.as_json import response_to_json

    return print_x12_json(path, read_271, response_to_json)


def cmd_claim_after(args) -> int:
    """`rcm claim FILE --after ERA.835 [--after ERA2.835]`: the secondary (tertiary) 837.

    Codes and prices the encounter as `rcm claim` does, reads each prior payer's claim
    payment from its 835 (primary first), builds the next payer's claim and prints its 837.
    """
    from services.billing.domain.cob import CobRefused, build_cob_claim
    from services.billing.domain.x12_837 import build_837

    claim = priced_claim(args)
    prior = [_prior_adjudication(path, claim.claim_id) for path in args.after]
    try:
        cob = build_cob_claim(claim, prior)
    except CobRefused as e:
        for reason in e.reasons:
            print(f"rcm: {reason}", file=sys.stderr)
        raise UserError(
            f"{args.file}: no claim for the next payer ({len(e.reasons)} reason(s))"
        ) from e
    scrubbed(args.file, cob)
    try:
        batch = build_837(
            [cob],
            interchange_control_number=1,
            group_control_number=1,
            created_at=datetime.now(UTC),
        )
    except ValueError as e:
        raise UserError(f"{args.file}: {e}") from e
    sys.stdout.write(batch.text)
    return 0


def priced_claim(args):
    """The encounter coded and priced (the claim to the primary): `rcm claim` and `--after`."""
    from rcm.cli.intake_cmds import one_encounter
    from services.billing.domain.chargemaster import (
        load_sample_chargemaster,
        parse_chargemaster_csv,
    )
    from services.billing.domain.claim import build_claim
    from services.coding.domain import engine
    from shared.claim_ids import claim_id_for

    enc = one_encounter(args.file, args.encounter)
    result = engine.code_encounter(enc)
    try:
        payload = result.to_payload(enc, coded_by="auto")
    except ValueError as e:
        raise UserError(f"{args.file}: cannot bill: {e}") from e
    if args.chargemaster:
        try:
            text = Path(args.chargemaster).read_text()
            cm = parse_chargemaster_csv(text, name=args.chargemaster)
        except (OSError, ValueError) as e:
            raise UserError(f"{args.chargemaster}: {e}") from e
    else:
        cm = load_sample_chargemaster(enc.site_id)
        print(
            f"rcm: pricing with the bundled sample chargemaster for site {enc.site_id!r} "
            "(pass --chargemaster FILE to use yours)",
            file=sys.stderr,
        )
    return build_claim(payload, claim_id=claim_id_for(enc.encounter_id), chargemaster=cm)


def scrubbed(path: str, claim) -> None:
    """UserError when billing's scrubber holds the claim (the findings on stderr); billable codes
    are judged as the billing service judges them (``icd10cm.billable_on``)."""
    from services.billing.domain.scrubber import load_sample_payer_rules, scrub
    from shared import icd10cm

    findings = scrub(claim, is_billable=icd10cm.billable_on, payer_rules=load_sample_payer_rules())
    if findings:
        for f in findings:
            where = f" [{f.field}]" if f.field else ""
            print(f"rcm: scrub {f.code}: {f.message}{where}", file=sys.stderr)
        raise UserError(
            f"{path}: claim held by the scrubber ({len(findings)} finding(s)); no 837 written"
        )


def _prior_adjudication(path: str, claim_id: str):
    """The claim payment for ``claim_id`` in the 835 at ``path``, as billing's input.

    The ERA's only claim payment is taken when none carries the claim id (a payer that
    echoed another patient control number); a reversal is never taken.
    """
    from services.payments.domain.era import parse_835
    from shared.x12 import X12Error

    try:
        era = parse_835(read_x12(path))
    except X12Error as e:
        raise UserError(f"{path}: {e}") from e
    payments = [(tx, cp) for tx in era.transactions for cp in tx.claims if cp.status_code != "22"]
    mine = [(tx, cp) for tx, cp in payments if cp.patient_control_number == claim_id]
    if not mine and len(payments) == 1:
        print(f"rcm: {path}: its one claim payment is taken for claim {claim_id}", file=sys.stderr)
        mine = payments
    if not mine:
        raise UserError(f"{path}: no claim payment (CLP) for claim {claim_id}")
    tx, cp = mine[-1]
    when = tx.payment.date or tx.production_date
    if when is None:
        raise UserError(f"{path}: no payment date (BPR16) or production date (DTM*405)")
    return prior_from_835(cp, when)


def prior_from_835(cp, adjudication_date):
    """An 835 ``ClaimPayment`` (payments' parser) as billing's ``PriorAdjudication``."""
    from services.billing.domain.cob import PriorAdjudication, PriorAdjustment, PriorLine

    def adjustments(items) -> tuple:
        return tuple(PriorAdjustment(a.group, a.reason, a.amount, a.quantity) for a in items)

    return PriorAdjudication(
        adjudication_date=adjudication_date,
        charge=cp.charge,
        paid=cp.paid,
        payer_claim_control_number=cp.payer_claim_control_number,
        adjustments=adjustments(cp.adjustments),
        lines=tuple(
            PriorLine(
                code=sl.code,
                modifiers=tuple(sl.modifiers),
                charge=sl.charge,
                paid=sl.paid,
                adjustments=adjustments(sl.adjustments),
                units=sl.units,
                qualifier=sl.qualifier,
                billed_code=sl.original_code,
                billed_modifiers=tuple(sl.original_modifiers),
            )
            for sl in cp.service_lines
        ),
        status=cp.status_code,
    )
