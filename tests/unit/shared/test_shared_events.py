"""The event contract: envelope fields, JSON round trip, validation errors that name the field."""

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from pydantic import ValidationError

from shared.events import (
    EVENT_TYPES,
    ClaimHeld,
    ClaimHeldPayload,
    Encounter,
    EncounterDocumented,
    Organization,
    Person,
    Reason,
    parse_event,
)
from shared.logs import describe_error
from shared.topics import ALL, dlq


def _encounter(**kw) -> Encounter:
    data = dict(
        encounter_id="E1",
        site_id="north-clinic",
        service_date=date(2026, 5, 1),
        billing_provider=Organization(name="North Clinic", npi="1234567893"),
        patient=Person(first_name="Ada", last_name="Zed", birth_date=date(1970, 1, 2)),
    )
    data.update(kw)
    return Encounter(**data)


def test_envelope_round_trip_keeps_every_field():
    ev = EncounterDocumented(site_id="north-clinic", encounter_id="E1", payload=_encounter())
    back = parse_event(ev.to_json())
    assert type(back) is EncounterDocumented
    assert back == ev
    assert back.event_type == "encounter.documented"
    assert back.topic == "rcm.encounter.documented.v1"
    assert ev.key() == b"E1"


def test_every_event_type_has_a_versioned_topic_and_dlq():
    assert len(EVENT_TYPES) == len(ALL) == 13
    for cls in EVENT_TYPES.values():
        assert cls.topic.startswith("rcm.") and cls.topic.endswith(".v1")
    assert dlq("rcm.claim.held.v1") == "rcm.claim.held.v1.dlq"


def test_money_is_decimal_string_in_json_and_rejects_sub_cent():
    ev = ClaimHeld(
        site_id="s",
        encounter_id="E1",
        payload=ClaimHeldPayload(
            claim_id="C1",
            total_charge=Decimal("125.50"),
            service_date=date(2026, 5, 1),
            reasons=[Reason(code="NPI", message="bad")],
        ),
    )
    assert b'"total_charge":"125.50"' in ev.to_json()
    with pytest.raises(ValidationError):
        ClaimHeldPayload(
            claim_id="C1",
            total_charge=Decimal("1.005"),
            service_date=date(2026, 5, 1),
            reasons=[Reason(code="x", message="y")],
        )


def test_occurred_at_must_be_timezone_aware_and_is_normalised_to_utc():
    with pytest.raises(ValidationError):
        EncounterDocumented(
            site_id="s", encounter_id="E1", payload=_encounter(), occurred_at=datetime(2026, 1, 1)
        )
    from datetime import timedelta

    ev = EncounterDocumented(
        site_id="s",
        encounter_id="E1",
        payload=_encounter(),
        occurred_at=datetime(2026, 1, 1, 5, tzinfo=timezone(timedelta(hours=5))),
    )
    assert ev.occurred_at.utcoffset().total_seconds() == 0 and ev.occurred_at.hour == 0


def test_unknown_event_type_and_non_object_are_refused():
    with pytest.raises(ValueError, match="unknown event_type"):
        parse_event(b'{"event_type": "nope"}')
    with pytest.raises(ValueError, match="JSON object"):
        parse_event(b"[1, 2]")


def test_validation_error_description_names_the_path_but_not_the_value():
    ev = EncounterDocumented(site_id="s", encounter_id="E1", payload=_encounter())
    data = ev.model_dump(mode="json")
    data["payload"]["patient"]["birth_date"] = "SECRET-1970"
    with pytest.raises(ValidationError) as exc:
        parse_event(data | {"event_type": "encounter.documented"})
    text = describe_error(exc.value)
    assert "payload.patient.birth_date" in text
    assert "SECRET" not in text
