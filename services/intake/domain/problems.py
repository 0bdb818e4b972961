"""What intake reports: a ``Problem`` is a JSON path and what was expected there.

Messages never quote a value from the input: values may be PHI.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


class IntakeError(ValueError):
    """Input that is not an encounter. ``errors`` holds ``{"path", "message"}`` dicts; no PHI."""

    def __init__(self, errors: Iterable[Problem | dict[str, str]]):
        self.errors = [e.as_dict() if isinstance(e, Problem) else dict(e) for e in errors]
        shown = "; ".join(f"{e['path']}: {e['message']}" for e in self.errors[:10])
        more = f" (and {len(self.errors) - 10} more)" if len(self.errors) > 10 else ""
        super().__init__(f"invalid encounter intake: {shown}{more}")


class Sink:
    """Collects problems; ``add`` returns None so a reader can ``return sink.add(...)``."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, path: str, message: str) -> None:
        problem = Problem(path, message)
        if problem not in self.items:
            self.items.append(problem)
