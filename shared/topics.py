"""Topic names. Each event type has its own versioned topic; DLQs append `.dlq`."""

from shared.events import EVENT_TYPES

ENCOUNTER_DOCUMENTED = "rcm.encounter.documented.v1"
ENCOUNTER_CODED = "rcm.encounter.coded.v1"
CLAIM_SUBMITTED = "rcm.claim.submitted.v1"
CLAIM_HELD = "rcm.claim.held.v1"
CLAIM_ACCEPTED = "rcm.claim.accepted.v1"
CLAIM_REJECTED = "rcm.claim.rejected.v1"
REMITTANCE_RECEIVED = "rcm.remittance.received.v1"
CORRECTION_REQUESTED = "rcm.claim.correction_requested.v1"
WRITEOFF_REQUESTED = "rcm.followup.writeoff_requested.v1"
STATEMENT_ISSUED = "rcm.followup.statement_issued.v1"

ALL = sorted(cls.topic for cls in EVENT_TYPES.values())


def dlq(topic: str) -> str:
    return f"{topic}.dlq"
