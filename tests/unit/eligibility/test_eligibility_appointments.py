"""Scheduled visits (docs/eligibility.md "Scheduled visits"): the decisions of when to ask before
the visit (batch window, freshness, check-in) and FHIR Appointments read as their visit, from a
real Appointment bundle (microsoft/fhir-server's SmartPatientA, MIT: tests/fixtures/realworld/
fhir/SOURCES.md) and from a sample patient's bundle with its Encounter replaced by the
Appointment that announced it."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from rcm.simulation.samples import generate_samples
from services.intake.domain.appointments import read_appointments
from services.intake.domain.eligibility.flow import (
    checks_in,
    coverage_key,
    in_batch_window,
    is_fresh,
    needs_asking,
)
from services.intake.domain.fhir import parse_intake
from tests.unit.eligibility.appointment_support import appointment_bundle

REAL = Path(__file__).parents[2] / "fixtures" / "realworld" / "fhir" / "ms-fhir-server"
NOW = datetime(2026, 12, 7, 18, 0, tzinfo=UTC)
DAY = timedelta(hours=24)


@pytest.mark.parametrize(
    ("service_date", "days", "due"),
    [
        (date(2026, 12, 7), 3, True),  # today
        (date(2026, 12, 10), 3, True),  # the window's last day
        (date(2026, 12, 11), 3, False),  # not yet
        (date(2026, 12, 6), 3, False),  # past: the encounter's business
        (date(2026, 12, 7), 0, False),  # batch off
    ],
)
def test_batch_window(service_date, days, due):
    assert in_batch_window(service_date, NOW.date(), days) is due


@pytest.mark.parametrize(
    ("state", "age", "fresh", "ask"),
    [
        (None, None, False, True),  # never asked
        ("answered", timedelta(hours=23), True, False),
        ("answered", timedelta(hours=25), False, True),  # stale
        ("rejected", timedelta(hours=1), True, False),  # the payer would say the same
        ("gave_up", timedelta(hours=1), False, True),  # never answered: ask again
        ("sent", None, False, False),  # its answer is on its way
        ("retry", None, False, False),
        ("retried", None, False, True),
    ],
)
def test_freshness(state, age, fresh, ask):
    answered_at = NOW - age if age is not None else None
    assert is_fresh(state, answered_at, NOW, DAY) is fresh
    assert needs_asking(state, answered_at, NOW, DAY) is ask


@pytest.mark.parametrize(
    ("previous", "status", "checking_in"),
    [
        ("booked", "arrived", True),
        ("booked", "checked-in", True),
        (None, "arrived", True),  # first heard of at the desk
        ("arrived", "checked-in", False),  # the same arrival
        ("checked-in", "checked-in", False),
        (None, "booked", False),
        ("arrived", "fulfilled", False),
        ("booked", "cancelled", False),
    ],
)
def test_check_in(previous, status, checking_in):
    assert checks_in(previous, status) is checking_in


def _sample():
    samples = generate_samples(30, seed=212, start_date=date(2026, 12, 1))
    return next(s for s in samples if parse_intake(s.bundle).institutional is None)


def test_appointment_reads_as_the_visit_its_encounter_will_be():
    sample = _sample()
    enc = parse_intake(sample.bundle)
    appt = appointment_bundle(sample.bundle, "A-77", f"{enc.service_date}T09:30:00-05:00")
    got = read_appointments(appt)
    assert got.problems == []
    [a] = got.appointments
    assert (a.appointment_id, a.status, a.source) == (
        "A-77",
        "booked",
        f"entry[{_at(appt)}].resource",
    )
    v = a.visit
    assert (v.site_id, v.service_date, v.patient.patient_id) == (
        enc.site_id,
        enc.service_date,
        enc.patient.patient_id,
    )
    assert v.billing_provider.npi == enc.billing_provider.npi
    assert v.rendering_provider.npi == enc.rendering_provider.npi
    assert [c.model_dump() for c in v.coverages] == [c.model_dump() for c in enc.coverages]
    # The same coverage keys: the encounter documented later finds the appointment's answer.
    for ca, ce in zip(v.coverages, enc.coverages, strict=True):
        assert coverage_key(v.site_id, v.patient.patient_id, ca, v.service_date) == coverage_key(
            enc.site_id, enc.patient.patient_id, ce, enc.service_date
        )
    assert not any("documentation" in w.message for w in a.warnings)


def _at(bundle: dict) -> int:
    return next(
        i for i, e in enumerate(bundle["entry"]) if e["resource"]["resourceType"] == "Appointment"
    )


def test_real_appointment_bundle():
    """SmartPatientA: an Appointment with only its Patient; no Location, so no site unless the
    sender has one; its Coverage's payor is the patient (self-pay: nothing to ask)."""
    data = (REAL / "SmartPatientA.json").read_bytes()
    got = read_appointments(data)
    assert [p.as_dict() for p in got.problems] == [
        {
            "path": "entry[10].resource.participant",
            "message": "no site: expected a Location participant whose managingOrganization"
            " names a site (or a caller with one site)",
        }
    ]
    got = read_appointments(data, site_id="site-a")
    [a] = got.appointments
    assert (a.appointment_id, a.status, a.visit.service_date) == (
        "smart-appointment-A1",
        "booked",
        date(2013, 12, 10),
    )
    assert a.visit.site_id == "site-a" and a.visit.coverages == []
    assert a.visit.patient.last_name == "SMART"


def test_real_batch_with_a_practitioner_only_appointment():
    """SmartCompartmentResources: one Appointment names only its Practitioner (no patient: a
    problem naming the path), the other its Patient."""
    got = read_appointments((REAL / "SmartCompartmentResources.json").read_bytes(), site_id="s")
    assert [a.appointment_id for a in got.appointments] == ["smart-appointment-A1"]
    [problem] = got.problems
    assert problem.path.endswith(".participant") and "Patient participant" in problem.message


def test_ndjson_and_a_bare_resource():
    sample = _sample()
    enc = parse_intake(sample.bundle)
    appt = appointment_bundle(sample.bundle, "A-78", f"{enc.service_date}T09:30:00Z")
    # NDJSON (bulk export) references by Type/id: each urn:uuid becomes its resource's.
    ids = {
        e["fullUrl"]: f"{e['resource']['resourceType']}/{e['fullUrl'].rsplit(':', 1)[-1]}"
        for e in appt["entry"]
    }
    text = "\n".join(
        json.dumps({**e["resource"], "id": ids[e["fullUrl"]].split("/")[1]}) for e in appt["entry"]
    )
    for urn, ref in ids.items():
        text = text.replace(f'"{urn}"', f'"{ref}"')
    got = read_appointments(text)
    [a] = got.appointments
    assert a.source == f"line[{_at(appt) + 1}]"
    assert a.visit.patient.patient_id == enc.patient.patient_id
    bare = read_appointments({"resourceType": "Appointment", "status": "booked"})
    assert [p.as_dict() for p in bare.problems] == [
        {"path": "start", "message": "required: the date and time of the visit"}
    ]
    bad = read_appointments({"resourceType": "Appointment", "status": "later", "start": "2026"})
    assert [p.path for p in bad.problems] == ["status"]
    none = read_appointments({"resourceType": "Patient"})
    assert [p.path for p in none.problems] == ["resourceType"]
