"""HL7 v2 intake, pure: parse messages (python-hl7), read what a visit needs, assemble visits
into ``shared.events.Encounter`` and build ACKs. No I/O; the MLLP listener and the service
around it live outside ``domain``. The mapping is documented in docs/hl7v2-intake.md.

- ``receive(data, rules, registry)`` -> ``Received``: one message (an MLLP frame), its header,
  problems and visit key; ``build_ack(received.meta, received.ack_code, received.problems)``.
- ``VisitAssembler(rules, registry=, concept_maps=).add(message)`` -> ``Step`` (waiting,
  ready, update, unchanged, ignored, rejected) with the ``AssembledVisit``.
- ``read_file(data, rules, ...)`` -> every visit of a file of messages (batches allowed).
"""

from services.intake.domain.hl7v2.ack import build_ack
from services.intake.domain.hl7v2.assembler import (
    FileResult,
    Received,
    Step,
    VisitAssembler,
    read_file,
    receive,
)
from services.intake.domain.hl7v2.framing import split_messages
from services.intake.domain.hl7v2.message import (
    Hl7Message,
    MessageMeta,
    parse_message,
    parse_messages,
)
from services.intake.domain.hl7v2.problems import ERROR_TEXT, Hl7Error, Hl7Problem
from services.intake.domain.hl7v2.rules import (
    CONDITIONS,
    Hl7Rules,
    Readiness,
    RulesError,
    parse_readiness,
    parse_site_map,
    parse_visit_keys,
)
from services.intake.domain.hl7v2.visit import AssembledVisit

__all__ = [
    "CONDITIONS",
    "ERROR_TEXT",
    "AssembledVisit",
    "FileResult",
    "Hl7Error",
    "Hl7Message",
    "Hl7Problem",
    "Hl7Rules",
    "MessageMeta",
    "Readiness",
    "Received",
    "RulesError",
    "Step",
    "VisitAssembler",
    "build_ack",
    "parse_message",
    "parse_messages",
    "parse_readiness",
    "parse_site_map",
    "parse_visit_keys",
    "read_file",
    "receive",
    "split_messages",
]
