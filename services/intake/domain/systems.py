"""Identifier and code systems the mapping reads and ``encounter_to_bundle`` writes."""

from __future__ import annotations

from shared.npi import is_valid_npi as npi_is_valid  # one NPI rule for every service

__all__ = ["npi_is_valid"]

NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
EIN_SYSTEM = "urn:oid:2.16.840.1.113883.4.4"
SITE_SYSTEM = "urn:rcm:site"
PAYER_SYSTEM = "urn:rcm:payer-id"
ENCOUNTER_SYSTEM = "urn:rcm:encounter"
PRIOR_AUTH_SYSTEM = "urn:rcm:prior-auth"
MRN_SYSTEM = "urn:rcm:mrn"
FILING_INDICATOR_URL = "urn:rcm:claim-filing-indicator"
TYPE_OF_BILL_URL = "urn:rcm:type-of-bill"
ADMISSION_DATE_URL = "urn:rcm:admission-date"
ADMISSION_TYPE_SYSTEM = "urn:rcm:ub04-admission-type"
POINT_OF_ORIGIN_SYSTEM = "urn:rcm:ub04-point-of-origin"
PATIENT_STATUS_SYSTEM = "urn:rcm:ub04-patient-status"
TAXONOMY_SYSTEM = "http://nucc.org/provider-taxonomy"
POS_SYSTEM = (
    "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set.html"
)
RELATIONSHIP_SYSTEM = "http://terminology.hl7.org/CodeSystem/subscriber-relationship"
ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PARTICIPATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
SELF_PAY_SYSTEM = "http://terminology.hl7.org/CodeSystem/coverage-selfpay"
# NUBC UB-04 code systems as US Core / THO name them.
NUBC_POINT_OF_ORIGIN = "https://www.nubc.org/CodeSystem/PointOfOrigin"
NUBC_DISCHARGE = "https://www.nubc.org/CodeSystem/PatDischargeStatus"
NUBC_PRIORITY = "https://www.nubc.org/CodeSystem/PriorityTypeOfAdmitOrVisit"
SNOMED_SYSTEMS = ("http://snomed.info/sct", "urn:oid:2.16.840.1.113883.6.96")

CODE_SYSTEM_URIS = {
    "icd10cm": "http://hl7.org/fhir/sid/icd-10-cm",
    "cpt": "http://www.ama-assn.org/go/cpt",
    "hcpcs": "urn:oid:2.16.840.1.113883.6.285",
    "icd10pcs": "http://www.cms.gov/Medicare/Coding/ICD10",
}
# Systems whose codes are claim codes (validated by coding) ...
CLAIM_CODE_SYSTEMS = {uri: name for name, uri in CODE_SYSTEM_URIS.items()} | {
    "urn:oid:2.16.840.1.113883.6.90": "icd10cm",
    "urn:oid:2.16.840.1.113883.6.12": "cpt",
    "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets": "hcpcs",
    "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets": "hcpcs",
    "urn:oid:2.16.840.1.113883.6.4": "icd10pcs",
}
# ... and systems whose codes are evidence only (never validated as ICD-10-CM).
EVIDENCE_CODE_SYSTEMS = {s: "snomed" for s in SNOMED_SYSTEMS} | {
    "http://hl7.org/fhir/sid/icd-9-cm": "icd9cm",
    "urn:oid:2.16.840.1.113883.6.103": "icd9cm",
    "urn:oid:2.16.840.1.113883.6.104": "icd9cm",
    "http://www.cms.gov/Medicare/Coding/ICD9": "icd9cm",
}

X12_FILING_INDICATORS = frozenset(
    "11 12 13 14 15 16 17 AM BL CH CI DS FI HM LM MA MB MC OF TV VA WC ZZ".split()
)
