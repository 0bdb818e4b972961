"""Size limits per encounter, checked before anything is stored or emitted.

The request body limit (``RCM_HTTP_MAX_BODY_BYTES``) bounds a request, not one encounter of a
bundle or NDJSON batch an operator allowed to be large. An encounter whose event would not fit
a Kafka message stopped the outbox relay for every later encounter (issue 18: a 50 MB note),
so a note or encounter above these limits is refused at intake, naming the field and the sizes
(never the content).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.intake.domain.fhir import ParsedEncounter


class IntakeLimits(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RCM_INTAKE_", extra="ignore")

    # A long discharge summary is tens of KB of text; 256 KiB leaves room for any visit's note.
    max_note_bytes: int = Field(default=256 * 1024, ge=1024)
    # The encounter as emitted (JSON, UTF-8): below the producer's 1 MiB request size, with room
    # for the envelope and headers.
    max_encounter_bytes: int = Field(default=768 * 1024, ge=4096)


def oversized(encounters: Sequence[ParsedEncounter], limits: IntakeLimits) -> list[dict]:
    """One ``{"path", "message"}`` per note or encounter above its limit ([] when all fit)."""
    problems = []
    for n, parsed in enumerate(encounters):
        enc = parsed.encounter
        note = len(enc.note.encode("utf-8", "surrogatepass")) if enc.note else 0
        if note > limits.max_note_bytes:
            problems.append(
                {
                    "path": f"encounters[{n}].note",
                    "message": f"the note is {note} bytes; at most {limits.max_note_bytes} "
                    "(RCM_INTAKE_MAX_NOTE_BYTES)",
                }
            )
            continue  # the encounter is too large for the same reason
        size = len(enc.model_dump_json().encode("utf-8", "surrogatepass"))
        if size > limits.max_encounter_bytes:
            problems.append(
                {
                    "path": f"encounters[{n}]",
                    "message": f"the encounter is {size} bytes as JSON; at most "
                    f"{limits.max_encounter_bytes} (RCM_INTAKE_MAX_ENCOUNTER_BYTES)",
                }
            )
    return problems
