"""JSON helpers: one place to swap the codec; Decimal and dates become strings."""

import json
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID


def _default(o):
    if isinstance(o, Decimal):
        return str(o)
    if isinstance(o, (datetime, date)):
        return o.isoformat()
    if isinstance(o, UUID):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def dumps(obj) -> bytes:
    return json.dumps(obj, default=_default, separators=(",", ":")).encode()


def loads(raw: bytes | str):
    return json.loads(raw)


def plain(record) -> dict:
    """A database row as JSON-ready values: Decimal -> decimal string, dates -> ISO 8601."""
    out = {}
    for k, v in dict(record).items():
        if isinstance(v, Decimal):
            v = str(v)
        elif isinstance(v, (date, datetime)):
            v = v.isoformat()
        out[k] = v
    return out
