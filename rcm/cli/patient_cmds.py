"""`rcm patient-payment`, `rcm refund` and `rcm payment-plan`: patient A/R through the payments
service's HTTP API (issue 21 item 4).

rcm never takes card numbers: a card payment carries the outside processor's reference, and a
value that looks like a card number (13-19 digits passing Luhn) is refused here, before
anything is sent, naming the option and never repeating the value. Every creating call sends
an Idempotency-Key: the one given, or a new one printed on stderr so a retry can send it again.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from decimal import Decimal, InvalidOperation


def _money(text: str) -> str:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"expected an amount like 20.00, not {text!r}") from None
    if not value.is_finite() or value <= 0 or value != value.quantize(Decimal("0.01")):
        raise argparse.ArgumentTypeError("an amount is positive with at most two decimals")
    return str(value.quantize(Decimal("0.01")))


def _allocation(text: str) -> dict:
    claim, sep, amount = text.partition("=")
    if not sep or not claim:
        raise argparse.ArgumentTypeError("an allocation is CLAIM_ID=AMOUNT")
    return {"claim_id": claim, "amount": _money(amount)}


def _no_card_numbers(**values: str | None) -> None:
    from rcm.cli.main import UserError
    from services.payments.domain.patient_payments import looks_like_pan

    for option, value in values.items():
        if value and looks_like_pan(value):
            raise UserError(
                f"--{option.replace('_', '-')} looks like a card number: rcm never takes card"
                " numbers (give the outside processor's reference)"
            )


def _token(args) -> str:
    if args.token:
        return args.token
    from rcm.cli.main import UserError
    from shared.auth import DevSigner
    from shared.settings import AuthSettings, ConfigurationError, RuntimeSettings

    try:
        signer = DevSigner.build(AuthSettings(), RuntimeSettings())
    except ConfigurationError as e:
        raise UserError(f"--token is needed (a biller's or supervisor's token): {e}") from e
    return signer.sign(args.user, [args.role], ["*"], 600)


def _key(args) -> str:
    if args.idempotency_key:
        return args.idempotency_key
    key = uuid.uuid4().hex
    print(
        f"rcm: Idempotency-Key {key} (send it again with --idempotency-key to retry)",
        file=sys.stderr,
    )
    return key


def _call(args, method: str, path: str, *, body=None, key: str | None = None, params=None):
    """Call payments; print the JSON answer; a refusal is one line naming the status and why."""
    import httpx

    from rcm.cli.main import UserError

    headers = {"authorization": f"Bearer {_token(args)}"}
    if key:
        headers["idempotency-key"] = key
    try:
        with httpx.Client(base_url=args.url.rstrip("/"), timeout=30) as client:
            r = client.request(method, path, json=body, params=params, headers=headers)
    except httpx.HTTPError as e:
        raise UserError(f"payments at {args.url} not reachable: {type(e).__name__}") from e
    if r.status_code >= 400:
        try:
            detail = r.json().get("detail")
        except ValueError:
            detail = r.text[:200]
        raise UserError(f"payments answered {r.status_code}: {json.dumps(detail)}")
    print(json.dumps(r.json(), indent=2))
    return 0


def cmd_patient_payment(args) -> int:
    _no_card_numbers(account=args.account, check_number=args.check_number, reference=args.reference)
    body = {"account": args.account, "amount": args.amount, "method": args.method}
    if args.check_number:
        body["check_number"] = args.check_number
    if args.reference:
        body["processor_reference"] = args.reference
    if args.received_date:
        body["received_date"] = args.received_date
    if args.allocate:
        body["allocations"] = args.allocate
    return _call(args, "POST", "/patient-payments", body=body, key=_key(args))


def cmd_refund(args) -> int:
    if args.action == "request":
        _no_card_numbers(account=args.account, reference=args.reference)
        if not (args.account and args.amount and args.reason):
            from rcm.cli.main import UserError

            raise UserError("refund request needs --account, --amount and --reason")
        body = {
            "account": args.account,
            "amount": args.amount,
            "method": args.method,
            "reason": args.reason,
        }
        if args.reference:
            body["reference"] = args.reference
        return _call(args, "POST", "/refunds", body=body, key=_key(args))
    if args.action == "list":
        return _call(args, "GET", "/refunds", params={"state": args.state} if args.state else None)
    if args.refund_id is None:
        from rcm.cli.main import UserError

        raise UserError(f"refund {args.action} needs the refund id")
    return _call(args, "POST", f"/refunds/{args.refund_id}/{args.action}")


def cmd_payment_plan(args) -> int:
    if args.action == "review":
        params = {"as_of": args.as_of} if args.as_of else None
        return _call(args, "POST", "/payment-plans/review", params=params)
    if not (args.account and args.instalment and args.period):
        from rcm.cli.main import UserError

        raise UserError("payment-plan create needs --account, --instalment and --period")
    body = {
        "account": args.account,
        "instalment_amount": args.instalment,
        "period": args.period,
        "grace_days": args.grace_days,
    }
    if args.first_due:
        body["first_due_date"] = args.first_due
    return _call(args, "POST", "/payment-plans", body=body, key=_key(args))


def _common(s, role: str) -> None:
    s.add_argument("--url", required=True, help="the payments service, e.g. http://127.0.0.1:8004")
    s.add_argument("--token", help="bearer token (default: a development token of --user/--role)")
    s.add_argument("--user", default="rcm-cli", help="development token subject")
    s.add_argument("--role", default=role, help=f"development token role (default {role})")


def add_parsers(sub) -> None:
    """Register `rcm patient-payment`, `rcm refund` and `rcm payment-plan`."""
    s = sub.add_parser(
        "patient-payment", help="record a patient payment (cash, check or card reference)"
    )
    _common(s, "biller")
    s.add_argument("--account", required=True, help="the patient account (encounter id)")
    s.add_argument("--amount", required=True, type=_money)
    s.add_argument("--method", required=True, choices=["cash", "check", "card"])
    s.add_argument("--check-number", dest="check_number", help="for --method check")
    s.add_argument(
        "--reference",
        help="for --method card: the outside processor's reference (never a card number)",
    )
    s.add_argument("--received-date", dest="received_date", help="YYYY-MM-DD (default today)")
    s.add_argument(
        "--allocate",
        action="append",
        type=_allocation,
        metavar="CLAIM_ID=AMOUNT",
        help="apply part of the payment to a claim's patient balance (repeatable);"
        " the rest stays on the account as credit",
    )
    s.add_argument("--idempotency-key", dest="idempotency_key", help="to retry a payment safely")
    s.set_defaults(func=cmd_patient_payment)

    s = sub.add_parser("refund", help="refunds of patient credit: request, approve, issue, list")
    _common(s, "biller")
    s.add_argument("action", choices=["request", "approve", "issue", "list"])
    s.add_argument("refund_id", nargs="?", type=int, help="for approve and issue")
    s.add_argument("--account", help="for request: the patient account (encounter id)")
    s.add_argument("--amount", type=_money, help="for request")
    s.add_argument("--method", choices=["check", "card", "cash"], default="check")
    s.add_argument("--reference", help="check number or the processor's refund reference")
    s.add_argument("--reason", help="for request: why the credit goes back")
    s.add_argument("--state", choices=["requested", "approved", "issued"], help="for list")
    s.add_argument("--idempotency-key", dest="idempotency_key", help="to retry a request safely")
    s.set_defaults(func=cmd_refund)

    s = sub.add_parser("payment-plan", help="patient payment plans: create, review (the job)")
    _common(s, "biller")
    s.add_argument("action", choices=["create", "review"])
    s.add_argument("--account", help="the patient account (encounter id)")
    s.add_argument("--instalment", type=_money, help="amount per period")
    s.add_argument("--period", choices=["weekly", "biweekly", "monthly"])
    s.add_argument("--first-due", dest="first_due", help="YYYY-MM-DD (default one period on)")
    s.add_argument("--grace-days", dest="grace_days", type=int, default=15)
    s.add_argument("--as-of", dest="as_of", help="for review: YYYY-MM-DD (default today)")
    s.add_argument("--idempotency-key", dest="idempotency_key", help="to retry safely")
    s.set_defaults(func=cmd_payment_plan)
