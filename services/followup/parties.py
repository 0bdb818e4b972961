"""Who a claim is about, from encounter.coded: account keys, 276 inquiries, statement addressing.

PHI (names, birth dates, member ids, addresses) passes through here into X12 and
PDFs only; nothing in this module logs or raises with it.
"""

from __future__ import annotations

import json
from decimal import Decimal

from services.followup.domain.x12_276 import StatusInquiry
from services.followup.repository import PartyRow
from shared.audit import account_key
from shared.events import Encounter, Organization, Person
from shared.npi import is_valid_npi


def party_row(enc: Encounter) -> PartyRow:
    """The encounter's parties: provider, patient, the subscriber when not the patient."""
    cov = enc.primary_coverage
    subscriber = cov.subscriber if cov is not None and cov.relationship != "self" else None
    return PartyRow(
        encounter_id=enc.encounter_id,
        site_id=enc.site_id,
        account_key=account_key(enc.site_id, enc.patient.patient_id, enc.encounter_id),
        billing_provider=enc.billing_provider.model_dump_json(),
        patient=enc.patient.model_dump_json(),
        subscriber=subscriber.model_dump_json() if subscriber else None,
        member_id=cov.member_id if cov else None,
        relationship=cov.relationship if cov else "self",
    )


def inquiry_for(claim) -> StatusInquiry | None:
    """A 276 inquiry for a claim row joined with its encounter parties; None when data is missing.

    What is missing is a data gap to report by claim id, not an error: the claim still
    gets its no-response work item.
    """
    if (
        claim["patient"] is None
        or not claim["member_id"]
        or not claim["payer_id"]
        or not claim["service_date"]
    ):
        return None
    provider = Organization.model_validate_json(claim["billing_provider"])
    if not provider.npi or not is_valid_npi(provider.npi):
        return None
    patient = Person.model_validate_json(claim["patient"])
    subscriber = Person.model_validate_json(claim["subscriber"]) if claim["subscriber"] else None
    return StatusInquiry(
        claim_id=claim["claim_id"],
        payer_id=claim["payer_id"],
        payer_name=claim["payer_name"] or claim["payer_id"],
        provider=provider,
        subscriber=subscriber or patient,
        member_id=claim["member_id"],
        service_date=claim["service_date"],
        total_charge=Decimal(claim["total_charge"]),
        patient=patient if subscriber is not None else None,
        payer_claim_control_number=claim["payer_claim_control_number"],
    )


def guarantor_lines(guarantor_json: str | None) -> tuple[str, tuple[str, ...]] | None:
    """(name, address lines) of a statement's guarantor, or None when unknown or without an address."""
    if not guarantor_json:
        return None
    g = Person.model_validate(json.loads(guarantor_json))
    if g.address is None:
        return None
    a = g.address
    lines = [a.line1, *([a.line2] if a.line2 else []), f"{a.city}, {a.state} {a.postal_code}"]
    return f"{g.first_name} {g.last_name}", tuple(lines)


def practice_name(provider_json: str | None, site_id: str) -> str:
    if provider_json:
        return Organization.model_validate_json(provider_json).name
    return site_id
