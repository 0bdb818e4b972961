"""Structured JSON logging that cannot carry PHI.

Only allow-listed keys (ids, counts, codes, timings) reach the log line; any
other keyword is dropped and counted, so a careless call can never leak a name,
birth date, member id or note text.
"""

from __future__ import annotations

import json
import logging
import sys
import time

SAFE_KEYS = frozenset(
    {
        "service",
        "event_id",
        "event_type",
        "encounter_id",
        "claim_id",
        "site_id",
        "topic",
        "partition",
        "offset",
        "count",
        "batch",
        "duration_ms",
        "error",
        "error_type",
        "file_name",
        "interchange_control_number",
        "work_item_id",
        "remittance_id",
        "status",
        "attempt",
        "instance",
        "payer_id",
        "reason_code",
        "component",
        "address",
        "statement_id",
    }
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: the time, level, service, logger and message, then SAFE_KEYS."""

    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def head(self, record: logging.LogRecord) -> dict:
        """What every line starts with, whichever keys follow."""
        return {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }

    def format(self, record: logging.LogRecord) -> str:
        out = self.head(record)
        fields = getattr(record, "fields", None) or {}
        dropped = 0
        for k, v in fields.items():
            if k in SAFE_KEYS:
                out[k] = v
            else:
                dropped += 1
        if dropped:
            out["dropped_fields"] = dropped
        if record.exc_info and record.exc_info[0] is not None:
            # Type and location only: exception messages may quote input values.
            out["error_type"] = record.exc_info[0].__name__
        return json.dumps(out, default=str)


def configure(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "faststream", "uvicorn.access", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def log(logger: logging.Logger, level: int, msg: str, **fields) -> None:
    logger.log(level, msg, extra={"fields": fields})


def describe_error(e: BaseException, limit: int = 5) -> str:
    """An error message safe to store or show: field paths and reasons, never input values."""
    from pydantic import ValidationError

    if isinstance(e, ValidationError):
        parts = [
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in e.errors(include_input=False, include_url=False)[:limit]
        ]
        more = e.error_count() - limit
        return "; ".join(parts) + (f"; (+{more} more)" if more > 0 else "")
    return f"{str(e)[:500]}"
