"""Intake service settings."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import ServiceSettings

CONCEPT_MAP_SUFFIXES = (".json", ".csv")


class IntakeCodes(BaseSettings):
    """Files that translate an EHR's own codes (read at start-up)."""

    model_config = SettingsConfigDict(env_prefix="RCM_INTAKE_", extra="ignore")

    # A concept-map file (FHIR ConceptMap JSON or CSV), or a directory of them (one per EHR or site).
    concept_maps: Path | None = None
    snomed_map: Path | None = None  # NLM's SNOMED CT to ICD-10-CM map (tab-separated release file)

    def concept_map_files(self) -> list[Path]:
        p = self.concept_maps
        if p is None:
            return []
        if p.is_dir():
            return sorted(f for f in p.iterdir() if f.suffix.lower() in CONCEPT_MAP_SUFFIXES)
        return [p]


class IntakeSettings(ServiceSettings):
    service_name: str = "intake"
    codes: IntakeCodes = Field(default_factory=IntakeCodes)
