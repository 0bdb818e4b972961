"""Topic names. Each event type has its own versioned topic; DLQs append `.dlq`."""

from shared.events import EVENT_TYPES

ENCOUNTER_DOCUMENTED = "rcm.encounter.documented.v1"
ENCOUNTER_CODED = "rcm.encounter.coded.v1"
CLAIM_SUBMITTED = "rcm.claim.submitted.v1"
CLAIM_HELD = "rcm.claim.held.v1"
CLAIM_ACCEPTED = "rcm.claim.accepted.v1"
CLAIM_REJECTED = "rcm.claim.rejected.v1"
REMITTANCE_RECEIVED = "rcm.remittance.received.v1"
REMITTANCE_HELD = "rcm.remittance.held.v1"
CORRECTION_REQUESTED = "rcm.claim.correction_requested.v1"
WRITEOFF_REQUESTED = "rcm.followup.writeoff_requested.v1"
STATEMENT_ISSUED = "rcm.followup.statement_issued.v1"
PROVIDER_QUERY = "rcm.coding.query.v1"
PATIENT_ACCOUNT = "rcm.payments.patient_account.v1"

ALL = sorted(cls.topic for cls in EVENT_TYPES.values())


def dlq(topic: str) -> str:
    return f"{topic}.dlq"


# Replication: three copies of every partition, and a write (acks=all) needs two of them, so
# one broker may be lost without losing a write or refusing one. A smaller cluster (the
# one-broker local stack) holds as many copies as it has brokers, and one suffices to write.
REPLICATION_FACTOR = 3
MIN_INSYNC_REPLICAS = 2


def replication(brokers: int) -> tuple[int, int]:
    """(replication factor, min.insync.replicas) for topics on a cluster of ``brokers``."""
    factor = max(1, min(REPLICATION_FACTOR, brokers))
    return factor, (MIN_INSYNC_REPLICAS if factor >= REPLICATION_FACTOR else 1)
