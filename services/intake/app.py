"""Intake service wiring: HTTP intake of encounter documents and the master data registries.

Intake consumes no topic: what it receives is versioned in its schema and emitted as
``encounter.documented`` through its outbox and relay.
"""

from dataclasses import dataclass
from pathlib import Path

from services.intake.accept import AcceptQueue
from services.intake.api import create_app
from services.intake.domain.problems import IntakeError
from services.intake.mapping import Codes, load_codes
from services.intake.registry_cache import RegistryCache
from services.intake.settings import IntakeSettings
from shared.service import Runtime, ServiceSpec
from shared.settings import ConfigurationError


@dataclass
class IntakeContext:
    registry: RegistryCache  # sites and payers the mapping fills missing data from
    codes: Codes  # concept maps and the SNOMED CT map
    acceptor: AcceptQueue  # concurrent requests' encounters, one transaction for all waiting


async def build_context(rt: Runtime) -> IntakeContext:
    """Read the code translation files once; a bad one stops the start naming the file."""
    cfg = rt.settings.codes
    try:
        codes = load_codes(cfg.concept_map_files(), cfg.snomed_map)
    except OSError as e:
        raise ConfigurationError(f"intake code files: cannot read {e.filename}") from e
    except IntakeError as e:
        first = e.errors[0]
        raise ConfigurationError(
            f"intake code files: {first['path']}: {first['message']}"
            f" ({len(e.errors)} problem(s); RCM_INTAKE_CONCEPT_MAPS / RCM_INTAKE_SNOMED_MAP)"
        ) from e
    return IntakeContext(
        registry=RegistryCache(),
        codes=codes,
        acceptor=AcceptQueue(rt.pool, rt.relay.notify, source="http"),
    )


async def accept_loop(rt: Runtime) -> None:
    """Applies what the HTTP API receives, a transaction per batch of waiting requests."""
    await rt.context.acceptor.run(rt.stop)


def spec() -> ServiceSpec:
    return ServiceSpec(
        name="intake",
        schema="intake",
        package_dir=Path(__file__).parent,
        settings=IntakeSettings,
        api=create_app,
        build_context=build_context,
        loops=[accept_loop],
    )
