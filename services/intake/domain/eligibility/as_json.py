"""JSON view of a parsed 271, the ``rcm eligibility --read FILE`` output.

Per result: coverage status, plan, the cost share in and out of network, every benefit
(amounts and percentages as decimal strings), other payers and managed-care plans named in
2120 loops, and AAA rejections with what to do about them. Names, birth dates and member
ids are never included.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from .model import Benefit, CostShare, EligibilityResult, Rejection, RelatedEntity
from .x12_271 import Response271


def response_to_json(response: Response271) -> dict:
    return {
        "interchange_control_number": response.interchange_control_number,
        "results": [result_to_json(r) for r in response.results],
        "warnings": list(response.warnings),
    }


def result_to_json(r: EligibilityResult) -> dict:
    return {
        "trace_number": r.trace_number,
        "level": r.level,
        "status": r.status,
        "payer": {"id": r.payer_id, "name": r.payer_name},
        "plan": {"name": r.plan_name, "number": r.plan_number, "group_number": r.group_number},
        "coverage": {"begin": _date(r.coverage_begin), "end": _date(r.coverage_end)},
        "cost_share": {
            "in_network": _cost_share(r.cost_share(in_network=True)),
            "out_of_network": _cost_share(r.cost_share(in_network=False)),
        },
        "benefits": [_benefit(b) for b in r.benefits],
        "other_payers": [_entity(e) for e in r.other_payers],
        "errors": [_rejection(x) for x in r.rejections],
        "actions": list(r.actions()),
    }


def _text(d: Decimal | None) -> str | None:
    return None if d is None else format(d, "f")


def _date(d: date | None) -> str | None:
    return d.isoformat() if d else None


def _cost_share(c: CostShare) -> dict:
    return {
        "copay": _text(c.copay),
        "coinsurance": _text(c.coinsurance),
        "deductible": _text(c.deductible),
        "deductible_remaining": _text(c.deductible_remaining),
        "out_of_pocket": _text(c.out_of_pocket),
        "out_of_pocket_remaining": _text(c.out_of_pocket_remaining),
    }


def _benefit(b: Benefit) -> dict:
    return {
        "code": b.code,
        "kind": b.kind,
        "coverage_level": b.coverage_level,
        "service_types": list(b.service_types),
        "insurance_type": b.insurance_type,
        "plan": b.plan,
        "time_period": b.time_period,
        "period": b.period,
        "amount": _text(b.amount),
        "percent": _text(b.percent),
        "quantity_qualifier": b.quantity_qualifier,
        "quantity": _text(b.quantity),
        "in_network": b.in_network,
        "authorization_required": b.authorization_required,
        "begin": _date(b.begin),
        "end": _date(b.end),
        "entities": [_entity(e) for e in b.entities],
    }


def _entity(e: RelatedEntity) -> dict:
    return {
        "entity_code": e.entity_code,
        "role": e.role,
        "name": e.name,
        "id_qualifier": e.id_qualifier,
        "identifier": e.identifier,
        "benefit_code": e.benefit_code,
        "insurance_type": e.insurance_type,
    }


def _rejection(x: Rejection) -> dict:
    return {
        "loop": x.loop,
        "segment": x.segment,
        "reason": x.reason,
        "description": x.description,
        "follow_up": x.follow_up,
        "action": x.action,
        "valid_request": x.valid_request,
    }
