"""Plain-words descriptions of 999 and 277CA codes (our own wording of the X12 code lists)."""

from __future__ import annotations

# 999 IK304: why a segment is in error.
SEGMENT_ERRORS = {
    "1": "unrecognized segment id",
    "2": "unexpected segment",
    "3": "required segment missing",
    "4": "loop repeats more times than allowed",
    "5": "segment repeats more times than allowed",
    "6": "segment not defined in this transaction set",
    "7": "segment out of sequence",
    "8": "segment has data element errors",
    "I4": "segment marked 'not used' in the implementation guide is present",
    "I6": "situationally required segment is missing",
    "I7": "loop occurs fewer times than the implementation guide requires",
    "I8": "segment occurs fewer times than the implementation guide requires",
    "I9": "situationally 'not used' segment is present",
}

# 999 IK403: why a data element is in error.
ELEMENT_ERRORS = {
    "1": "required data element missing",
    "2": "conditionally required data element missing",
    "3": "too many data elements",
    "4": "data element too short",
    "5": "data element too long",
    "6": "invalid character in data element",
    "7": "invalid code value",
    "8": "invalid date",
    "9": "invalid time",
    "10": "exclusion condition violated",
    "12": "too many repetitions",
    "13": "too many components",
    "I6": "code value not used in this implementation",
    "I9": "situationally required data element missing",
    "I10": "data element marked 'not used' is present",
    "I11": "too few repetitions",
    "I12": "value does not match the required pattern",
    "I13": "situationally 'not used' data element is present",
}

# 999 IK501 / AK901: acknowledgement status.
ACK_STATUS = {
    "A": "accepted",
    "E": "accepted with errors noted",
    "M": "rejected: message authentication failed",
    "P": "partially accepted: some transaction sets rejected",
    "R": "rejected",
    "W": "rejected: failed assurance validity tests",
    "X": "rejected: content could not be analyzed after decryption",
}

# 999 IK502-IK506: transaction set level syntax errors.
TRANSACTION_ERRORS = {
    "1": "transaction set not supported",
    "2": "transaction set trailer (SE) missing",
    "3": "ST and SE control numbers differ",
    "4": "SE segment count does not match the segments sent",
    "5": "one or more segments in error",
    "6": "transaction set identifier missing or invalid",
    "7": "transaction set control number missing or invalid",
    "18": "transaction set not inside a functional group",
    "19": "implementation convention reference (ST03) invalid",
    "23": "transaction set control number repeated within the group",
    "I5": "one or more segments in error (implementation guide)",
    "I6": "implementation convention not supported",
}

# 999 AK905-AK909: functional group level errors.
GROUP_ERRORS = {
    "1": "functional group not supported",
    "2": "functional group version not supported",
    "3": "functional group trailer (GE) missing",
    "4": "GS and GE control numbers differ",
    "5": "GE transaction set count does not match",
    "6": "group control number syntax invalid",
    "19": "functional group control number not unique in the interchange",
}

# 277CA STC01-1: claim status category.
STATUS_CATEGORIES = {
    "A0": "forwarded to another entity",
    "A1": "received (not yet accepted for adjudication)",
    "A2": "accepted into the adjudication system",
    "A3": "returned as unprocessable",
    "A4": "not found",
    "A5": "split claim: accepted as several claims",
    "A6": "rejected: information missing",
    "A7": "rejected: information invalid",
    "A8": "rejected: related fields inconsistent",
    "E0": "no response possible: error in the submitted request",
    "E1": "no response possible: system unavailable",
    "E2": "no response possible: information holder not responding",
    "E3": "correction required: related fields inconsistent",
    "E4": "trading partner agreement requirement not met",
    "P1": "pending: in process",
    "P2": "pending: under review",
    "P3": "pending: waiting for requested information",
    "P4": "pending: waiting on the patient",
    "F0": "finalized",
    "F1": "finalized: paid",
    "F2": "finalized: denied",
    "F3": "finalized: adjudication complete, no payment forthcoming",
    "F4": "finalized: adjudication complete, no payment forthcoming (adjusted)",
}
ACCEPTED_CATEGORIES = frozenset({"A0", "A1", "A2", "A5"})
REJECTED_CATEGORIES = frozenset({"A3", "A4", "A6", "A7", "A8", "E0", "E3", "E4"})

# 277CA STC01-2: the commonest claim status codes.
STATUS_CODES = {
    "0": "no further status available electronically",
    "3": "adjudicated, awaiting the payment cycle",
    "15": "requested information not provided",
    "16": "returned: invalid data",
    "19": "receipt acknowledged",
    "20": "accepted for processing",
    "21": "information missing or invalid",
    "33": "subscriber or subscriber id not found",
    "35": "claim not found",
    "96": "no agreement with the entity",
    "97": "patient eligibility not found with the entity",
    "116": "sent to the wrong payer",
    "145": "entity specialty/taxonomy code",
    "153": "entity identification number",
    "164": "entity contract/member number",
    "178": "submitted charges",
    "187": "date(s) of service",
    "189": "facility type code",
    "254": "principal diagnosis code",
    "255": "diagnosis code",
    "400": "claim out of balance",
    "454": "procedure code",
    "455": "revenue code",
    "464": "payer claim control number",
    "562": "entity NPI",
    "732": "information inconsistent with billing guidelines",
}

# 277CA STC01-3 / NM101: the entity a status is about.
ENTITY_CODES = {
    "03": "dependent",
    "1P": "provider",
    "40": "receiver",
    "41": "submitter",
    "71": "attending provider",
    "77": "service location",
    "82": "rendering provider",
    "85": "billing provider",
    "87": "pay-to provider",
    "DN": "referring provider",
    "IL": "subscriber",
    "PR": "payer",
    "QC": "patient",
}


def describe_999_error(segment_error: str | None = None, element_error: str | None = None) -> str:
    """Words for an IK304 segment error and/or IK403 element error code."""
    parts = []
    if segment_error:
        parts.append(SEGMENT_ERRORS.get(segment_error, f"segment error {segment_error}"))
    if element_error:
        parts.append(ELEMENT_ERRORS.get(element_error, f"element error {element_error}"))
    return "; ".join(parts) or "error"


def describe_277_status(category: str, code: str | None = None, entity: str | None = None) -> str:
    """Words for one STC composite: category, status code and entity."""
    text = STATUS_CATEGORIES.get(category, f"status category {category}")
    if code:
        text += ": " + STATUS_CODES.get(code, f"status code {code}")
    if entity:
        text += f" ({ENTITY_CODES.get(entity, 'entity ' + entity)})"
    return text
