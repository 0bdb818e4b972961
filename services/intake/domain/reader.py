"""Tolerant reads of FHIR JSON: a value of the wrong shape is a warning at its path, then absent."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from services.intake.domain.codes import Coding
from services.intake.domain.problems import Sink
from services.intake.domain.references import join

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"(\d{4}-\d{2}-\d{2})(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?")


class Reader:
    def __init__(self, sink: Sink):
        self.sink = sink

    def warn(self, path: str, message: str) -> None:
        self.sink.add(path, message)

    def str_(self, obj: dict, key: str, path: str) -> str | None:
        v = obj.get(key)
        if v is not None and not isinstance(v, str):
            return self.warn(join(path, key), "expected a string")
        return (v.strip() or None) if v else None

    def obj(self, obj: dict, key: str, path: str) -> dict | None:
        v = obj.get(key)
        if v is not None and not isinstance(v, dict):
            return self.warn(join(path, key), "expected an object")
        return v

    def objs(self, obj: dict, key: str, path: str) -> list[tuple[str, dict]]:
        """Items of a list of objects; a single object where R4 has a list is taken as one."""
        v = obj.get(key)
        if v is None:
            return []
        where = f"{path}.{key}" if path else key
        if isinstance(v, dict):
            return [(where, v)]
        if not isinstance(v, list):
            self.warn(where, "expected a list")
            return []
        out = []
        for i, item in enumerate(v):
            if isinstance(item, dict):
                out.append((f"{where}[{i}]", item))
            else:
                self.warn(f"{where}[{i}]", "expected an object")
        return out

    def strs(self, obj: dict, key: str, path: str) -> list[str]:
        v = obj.get(key)
        if v is None:
            return []
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
            self.warn(join(path, key), "expected a list of strings")
            return []
        return [s.strip() for s in v if s.strip()]

    def concept(self, cc: Any, path: str) -> tuple[list[Coding], str | None]:
        """Codings ``(system, code, display)`` and text of a CodeableConcept (or a bare Coding,
        or an R5-style list of CodeableConcepts)."""
        if isinstance(cc, list):
            codings, texts = [], []
            for i, item in enumerate(cc):
                c, t = self.concept(item, f"{path}[{i}]")
                codings.extend(c)
                texts.extend([t] if t else [])
            return codings, texts[0] if texts else None
        if not isinstance(cc, dict):
            self.warn(path, "expected a CodeableConcept object")
            return [], None
        if "coding" not in cc and ("code" in cc or "system" in cc):
            return [self.coding(cc, path)], self.str_(cc, "display", path)
        codings = [self.coding(c, cp) for cp, c in self.objs(cc, "coding", path)]
        return codings, self.str_(cc, "text", path)

    def coding(self, c: dict, path: str) -> Coding:
        return (
            self.str_(c, "system", path),
            self.str_(c, "code", path),
            self.str_(c, "display", path),
        )

    def ident(self, res: dict, path: str, system: str) -> str | None:
        for ip, ident in self.objs(res, "identifier", path):
            if self.str_(ident, "system", ip) == system:
                return self.str_(ident, "value", ip)
        return None

    def ext(self, res: dict, url: str, path: str) -> tuple[str, str] | None:
        for xp, ext in self.objs(res, "extension", path):
            if ext.get("url") != url:
                continue
            for key in ("valueString", "valueCode", "valueDate"):
                if key in ext:
                    value = self.str_(ext, key, xp)
                    return (f"{xp}.{key}", value) if value else None
            if isinstance(ext.get("valueIdentifier"), dict):
                value = self.str_(ext["valueIdentifier"], "value", f"{xp}.valueIdentifier")
                return (f"{xp}.valueIdentifier.value", value) if value else None
            self.warn(xp, "expected valueString, valueCode, valueDate or valueIdentifier")
        return None

    def date_(self, obj: dict, key: str, path: str, *, full: bool = False) -> date | None:
        """A FHIR date (``full``) or dateTime; a dateTime gives its date as written (no UTC
        shift). A partial date (year, year-month) is not a day: a warning, then None."""
        raw = self.str_(obj, key, path)
        if raw is None:
            return None
        m = (_DATE if full else _DATETIME).fullmatch(raw)
        if not m:
            what = "a full date (YYYY-MM-DD)" if full else "a date or dateTime with the day"
            return self.warn(join(path, key), f"expected {what}")
        try:
            return date.fromisoformat(m.group(0)[:10])
        except ValueError:
            return self.warn(join(path, key), "expected a valid calendar date")
