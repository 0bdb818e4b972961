"""Scheduled visits for tests: a sample patient's FHIR bundle (rcm.simulation.samples) with its
Encounter replaced by the Appointment that announced it (same patient, practitioner, location,
coverages), as an EHR's scheduling feed would send it."""

from __future__ import annotations

import copy


def appointment_bundle(
    bundle: dict, appointment_id: str, start: str, status: str = "booked"
) -> dict:
    """``bundle`` with its Encounter (and what documents it) replaced by an Appointment."""
    out = copy.deepcopy(bundle)
    entries = []
    for e in out["entry"]:
        r = e["resource"]
        if r["resourceType"] in ("Encounter", "Condition", "Procedure", "DocumentReference"):
            if r["resourceType"] == "Encounter":
                location = next(
                    x["fullUrl"]
                    for x in out["entry"]
                    if x["resource"]["resourceType"] == "Location"
                )
                practitioner = r["participant"][0]
                entries.append(
                    {
                        "fullUrl": f"urn:uuid:{appointment_id}",
                        "resource": {
                            "resourceType": "Appointment",
                            "id": appointment_id,
                            "status": status,
                            "start": start,
                            "participant": [
                                {"actor": r["subject"], "status": "accepted"},
                                {
                                    "type": practitioner.get("type", []),
                                    "actor": practitioner["individual"],
                                    "status": "accepted",
                                },
                                {"actor": {"reference": location}, "status": "accepted"},
                            ],
                        },
                    }
                )
            continue
        entries.append(e)
    out["entry"] = entries
    return out


def with_status(bundle: dict, status: str) -> dict:
    """The same appointment, updated to ``status`` (check-in: arrived or checked-in)."""
    out = copy.deepcopy(bundle)
    for e in out["entry"]:
        if e["resource"]["resourceType"] == "Appointment":
            e["resource"]["status"] = status
    return out
