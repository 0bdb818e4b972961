"""docs/security.md's Kafka ACL table is what each service really consumes (its ServiceSpec), so a
service that starts reading a new topic cannot leave the operators' grants behind; and what it
says a service emits is a known topic."""

from __future__ import annotations

import importlib
import re

from rcm.localstack.kafka_acls import service_acls
from shared.topics import ALL
from tests.conftest import ROOT

SERVICES = ("intake", "coding", "billing", "payments", "followup", "workbench")


def _acl_table() -> dict[str, tuple[set[str], set[str]]]:
    text = (ROOT / "docs" / "security.md").read_text()
    start = text.index("| principal | Write + Describe on topics")
    rows = {}
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        emits, consumes = (set(re.findall(r"`(rcm\.[a-z_.0-9]+)`", c)) for c in cells[1:3])
        rows[cells[0]] = (emits, consumes)
    return rows


def test_the_acl_table_names_what_each_service_consumes_and_known_topics():
    table = _acl_table()
    assert set(table) == set(SERVICES)
    for name in SERVICES:
        spec = importlib.import_module(f"services.{name}.app").spec()
        emits, consumes = table[name]
        assert consumes == set(spec.topics), name
        assert emits <= set(ALL), name
        if not spec.kafka:
            assert not emits and not consumes


def test_service_acls_grant_reads_on_its_group_and_nothing_else():
    acls = service_acls("User:rcm-coding", "rcm-coding", ["rcm.encounter.documented.v1"], [])
    granted = {(a.resource, a.name, a.operation) for a in acls}
    assert ("group", "rcm-coding", "read") in granted
    assert ("topic", "rcm.encounter.documented.v1", "read") in granted
    assert ("topic", "rcm.encounter.documented.v1.dlq", "write") in granted
    assert not any(op in ("create", "alter", "delete") for _, _, op in granted)
