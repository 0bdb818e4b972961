"""JSON helpers: one place to swap the codec; rows become JSON-ready values."""

import json
from datetime import date, datetime
from decimal import Decimal


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
