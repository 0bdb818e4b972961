"""The intake service's pure parts: content hashes, responses, HTTP bodies, sample registries."""

from __future__ import annotations

import json
import uuid
from datetime import date

import pytest
from pydantic import ValidationError

from rcm.cli.intake_cmds import sample_registry_files
from rcm.simulation.sites import PAYERS, SITES
from services.intake.accept import Outcome, content_hash
from services.intake.api import _response, problems_of
from services.intake.bulk_import import Summary
from services.intake.domain.registry import (
    Registry,
    parse_payers_csv,
    parse_providers_csv,
    parse_sites_csv,
)
from services.intake.mapping import Mapped, parse
from services.intake.masterdata import PayerBody, SiteBody, payer_json, site_json
from shared.events import Encounter

SECRET = "Zqxsecretvalue"


def _enc(**kw) -> Encounter:
    return Encounter.model_validate(
        {
            "encounter_id": "E1",
            "site_id": "north-clinic",
            "service_date": "2026-01-05",
            "billing_provider": {"name": "Northgate Family Medicine"},
            "patient": {"first_name": "A", "last_name": "B", "birth_date": "1980-01-01"},
            **kw,
        }
    )


def test_the_content_hash_ignores_the_version_and_sees_every_field():
    a = _enc()
    assert content_hash(a) == content_hash(a.model_copy(update={"document_version": 7}))
    assert content_hash(a) != content_hash(_enc(note="seen"))
    assert content_hash(a) != content_hash(_enc(service_date=date(2026, 1, 6).isoformat()))
    assert len(content_hash(a)) == 64


def test_one_encounter_keeps_the_flat_shape():
    eid = uuid.uuid4()
    accepted = Outcome("E1", "s", "accepted", 2, eid, [{"path": "p", "message": "m"}], ["payer_id"])
    r = _response([accepted], Mapped([], [], []))
    assert r.status_code == 202
    assert json.loads(r.body) == {
        "encounter_id": "E1",
        "status": "accepted",
        "event_id": str(eid),
        "document_version": 2,
        "warnings": [{"path": "p", "message": "m"}],
        "missing": ["payer_id"],
    }
    r = _response([Outcome("E1", "s", "duplicate", 2)], Mapped([], [], []))
    assert r.status_code == 200
    assert json.loads(r.body) == {
        "encounter_id": "E1",
        "status": "duplicate",
        "document_version": 2,
    }
    r = _response([Outcome("E1", "s", "conflict", 1)], Mapped([], [], []))
    assert r.status_code == 409 and json.loads(r.body)["detail"][0]["path"] == "$"


def test_several_encounters_or_any_problem_give_a_list():
    problems = [{"path": "entry[4].resource.period", "message": "expected a date of service"}]
    outcomes = [Outcome("E1", "s", "duplicate", 1), Outcome("E2", "s", "accepted", 1, uuid.uuid4())]
    r = _response(outcomes, Mapped([], problems, []))
    body = json.loads(r.body)
    assert r.status_code == 202
    assert [e["encounter_id"] for e in body["encounters"]] == ["E1", "E2"]
    assert body["problems"] == problems
    r = _response([Outcome("E1", "s", "duplicate", 1)] * 2, Mapped([], [], []))
    assert r.status_code == 200
    r = _response([Outcome("E1", "s", "conflict", 1)] * 2, Mapped([], [], []))
    assert r.status_code == 409


def test_validation_problems_carry_paths_never_inputs():
    with pytest.raises(ValidationError) as e:
        SiteBody.model_validate(
            {
                "name": SECRET,
                "npi": "1234567890",
                "tax_id": SECRET,
                "address": {"line1": "1 Main", "city": "X", "state": SECRET, "postal_code": SECRET},
                "providers": [{"npi": SECRET, "first_name": "A", "last_name": "B"}],
                SECRET: 1,
            }
        )
    problems = problems_of(e.value.errors())
    assert {p["path"] for p in problems} == {
        "npi",
        "tax_id",
        "address.state",
        "address.postal_code",
        "providers[0].npi",
        SECRET,  # an unknown key is named: it is the caller's key, not a value
    }
    assert SECRET not in json.dumps([p["message"] for p in problems])
    assert not any(p["message"].startswith("Value error") for p in problems)


def test_a_site_body_becomes_the_registry_site():
    body = SiteBody.model_validate(
        {
            "name": "Northgate Family Medicine",
            "npi": "1245873900",
            "tax_id": "81-4203377",
            "address": {
                "line1": "1200 Birchwood Avenue",
                "city": "Maple Falls",
                "state": "Ohio",
                "postal_code": "43215-1407",
            },
            "aliases": ["Northgate FM"],
            "providers": [{"npi": "1538204672", "first_name": "Elena", "last_name": "Marchetti"}],
        }
    )
    site, providers = body.to_domain("north-clinic")
    assert site.tax_id == "814203377" and site.address.state == "OH"
    assert site.address.postal_code == "432151407" and site.aliases == ("Northgate FM",)
    assert providers[0].site_id == "north-clinic"
    out = site_json(site, providers)
    assert out["providers"][0]["npi"] == "1538204672" and out["address"]["state"] == "OH"
    registry = Registry([site], providers)
    assert registry.site_by_name("northgate fm") == site
    assert registry.provider("1538204672").site_id == "north-clinic"
    with pytest.raises(ValidationError):
        SiteBody.model_validate(
            {
                "name": "x",
                "providers": [{"npi": "1538204672", "first_name": "a", "last_name": "b"}] * 2,
            }
        )


def test_a_payer_body():
    payer = PayerBody.model_validate(
        {"name": "Self-pay", "self_pay": True, "filing_indicator": "zz"}
    )
    assert payer.to_domain("SELF") == payer.to_domain("SELF")
    assert payer_json(payer.to_domain("SELF")) == {
        "payer_id": "SELF",
        "name": "Self-pay",
        "filing_indicator": "ZZ",
        "self_pay": True,
        "aliases": [],
    }
    with pytest.raises(ValidationError):
        PayerBody.model_validate({"name": "x", "filing_indicator": "Q9"})


def test_the_sample_registries_are_the_demo_sites_and_payers():
    files = sample_registry_files()
    sites = {s.site_id: s for s in parse_sites_csv(files["sites"].read_text())}
    providers = parse_providers_csv(files["providers"].read_text())
    payers = {p.payer_id: p for p in parse_payers_csv(files["payers"].read_text())}
    assert set(sites) == set(SITES)
    for site_id, demo in SITES.items():
        org = demo.organization
        s = sites[site_id]
        assert (s.name, s.npi, s.tax_id, s.taxonomy, s.address) == (
            org.name,
            org.npi,
            org.tax_id,
            org.taxonomy,
            org.address,
        )
        mine = {p.npi for p in providers if p.site_id == site_id}
        assert mine == {p.npi for p in demo.practitioners}
    for payer_id, demo in PAYERS.items():
        p = payers[payer_id]
        assert (p.name, p.filing_indicator, p.self_pay) == (demo.name, demo.filing_indicator, False)
    assert [p.payer_id for p in payers.values() if p.self_pay] == ["SELFPAY"]


def test_the_mapping_gives_problems_as_dicts():
    mapped = parse(b"{not json")
    assert mapped.encounters == []
    assert all(set(p) == {"path", "message"} for p in mapped.problems)
    native = parse(_enc().model_dump_json())
    assert [m.encounter.encounter_id for m in native.encounters] == ["E1"]


def test_the_import_summary():
    s = Summary()
    s.count(
        [
            {
                "status": "accepted",
                "document_version": 1,
                "warnings": [{}],
                "missing": ["payer_id"],
            },
            {"status": "accepted", "document_version": 3, "missing": [{"field": "npi"}]},
            {"status": "duplicate"},
            {"status": "conflict"},
        ]
    )
    for i in range(30):
        s.problem(f"f:{i}", "expected a date of service")
    out = s.as_json()
    assert (out["accepted"], out["new_versions"], out["unchanged"], out["conflicts"]) == (
        2,
        1,
        1,
        1,
    )
    assert out["missing"] == {"payer_id": 1, "npi": 1} and out["warnings"] == 1
    assert out["problems"] == {"expected a date of service": 30} and len(out["examples"]) == 25


def test_event_ids_are_distinct_random_uuids():
    from services.intake.accept import _event_ids

    ids = _event_ids(500)
    assert len(set(ids)) == 500 and {i.version for i in ids} == {4}
    assert _event_ids(0) == []
