"""Both log formatters start a line the same way (shared.logs.JsonFormatter.head); each keeps
its own allow-list of keys after it."""

import json
import logging
import sys

from shared.http import HttpLogFormatter
from shared.logs import JsonFormatter


def _record() -> logging.LogRecord:
    try:
        raise ValueError("Ada Zed")
    except ValueError:
        exc = sys.exc_info()
    rec = logging.LogRecord(
        "rcm.http", logging.WARNING, __file__, 1, "request %s", ("failed",), exc
    )
    rec.created = 1_780_000_000.25
    rec.fields = {"route": "/claims/{id}", "status": 500, "claim_id": "C1", "name": "Ada Zed"}
    return rec


HEAD = {
    "ts": "2026-05-28T20:26:40",
    "level": "warning",
    "service": "billing",
    "logger": "rcm.http",
    "msg": "request failed",
}


def test_an_http_line_is_the_shared_head_and_only_http_keys():
    line = json.loads(HttpLogFormatter("billing").format(_record()))
    assert line == HEAD | {"route": "/claims/{id}", "status": 500}


def test_a_service_line_is_the_shared_head_and_safe_keys():
    line = json.loads(JsonFormatter("billing").format(_record()))
    assert line == HEAD | {
        "status": 500,
        "claim_id": "C1",
        "dropped_fields": 2,
        "error_type": "ValueError",
    }
