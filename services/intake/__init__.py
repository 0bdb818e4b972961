"""Intake: takes what the EHRs send (FHIR R4, bulk NDJSON, HL7 v2), assembles encounters, emits encounter.documented."""
