"""Size limits per encounter, checked before anything is stored or emitted.

The request body limit (``RCM_HTTP_MAX_BODY_BYTES``) bounds a request, not one encounter of a
bundle or NDJSON batch an operator allowed to be large. An encounter whose event would not fit
a Kafka message stopped the outbox relay for every later encounter (issue 18: a 50 MB note),
so a note or encounter above these limits is refused at intake, naming the field and the sizes
(never the content): ``POST /encounters`` answers 413; HL7 v2 (MLLP and ``POST /hl7``) answers
the message AR when its own note is too large (not stored) and AE when the visit's assembled
encounter is (stored, not emitted).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.intake.domain.fhir import ParsedEncounter
from shared.events import Encounter


class IntakeLimits(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RCM_INTAKE_", extra="ignore")

    # A long discharge summary is tens of KB of text; 256 KiB leaves room for any visit's note.
    max_note_bytes: int = Field(default=256 * 1024, ge=1024)
    # The encounter as emitted (JSON, UTF-8): below the producer's 1 MiB request size, with room
    # for the envelope and headers.
    max_encounter_bytes: int = Field(default=768 * 1024, ge=4096)


def note_bytes(text: str | None) -> int:
    """A note's size as stored and emitted (UTF-8; a lone surrogate counted, not refused)."""
    return len(text.encode("utf-8", "surrogatepass")) if text else 0


def note_too_large(size: int, limits: IntakeLimits) -> str | None:
    """The refusal of a note of ``size`` bytes, naming the limit and its setting; None if it fits."""
    if size <= limits.max_note_bytes:
        return None
    return f"the note is {size} bytes; at most {limits.max_note_bytes} (RCM_INTAKE_MAX_NOTE_BYTES)"


def too_large(enc: Encounter, limits: IntakeLimits) -> tuple[str, str] | None:
    """("note", why) or ("", why) when the encounter's note or the encounter as emitted is
    above its limit; None when it fits. The sizes only, never the content."""
    if why := note_too_large(note_bytes(enc.note), limits):
        return "note", why  # the encounter is too large for the same reason
    size = len(enc.model_dump_json().encode("utf-8", "surrogatepass"))
    if size > limits.max_encounter_bytes:
        return "", (
            f"the encounter is {size} bytes as JSON; at most {limits.max_encounter_bytes} "
            "(RCM_INTAKE_MAX_ENCOUNTER_BYTES)"
        )
    return None


def oversized(encounters: Sequence[ParsedEncounter], limits: IntakeLimits) -> list[dict]:
    """One ``{"path", "message"}`` per note or encounter above its limit ([] when all fit)."""
    problems = []
    for n, parsed in enumerate(encounters):
        if found := too_large(parsed.encounter, limits):
            where, message = found
            path = f"encounters[{n}]" + (f".{where}" if where else "")
            problems.append({"path": path, "message": message})
    return problems
