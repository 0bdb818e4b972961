"""What mapping one Encounter needs at hand: the input's index, a reader for warnings,
configuration (registry, concept maps, SNOMED map), and the billing fields found missing."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.intake.domain.codes import ConceptMaps, SnomedMap
from services.intake.domain.reader import Reader
from services.intake.domain.references import Index, Ref, Res
from services.intake.domain.registry import Registry


@dataclass
class Ctx:
    index: Index
    read: Reader
    registry: Registry | None = None
    maps: ConceptMaps | None = None
    snomed: SnomedMap | None = None
    default_site: str | None = None
    missing: list[str] = field(default_factory=list)

    def need(self, name: str) -> None:
        """Record a billing field the biller must supply (once)."""
        if name not in self.missing:
            self.missing.append(name)

    def warn(self, path: str, message: str) -> None:
        self.read.warn(path, message)

    def resolve(self, ref: object, path: str, holder: Res, *types: str) -> Ref:
        return self.index.resolve(ref, path, holder, types, self.read.sink)
