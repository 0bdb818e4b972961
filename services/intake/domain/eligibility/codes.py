"""Code lists of the 270/271 (005010X279A1) that eligibility decisions read.

Only the codes rcm acts on are named; anything else is kept as its code.
"""

from __future__ import annotations

# EB01 eligibility or benefit information: what one EB segment says.
BENEFIT_KINDS = {
    "1": "active",
    "2": "active",  # full risk capitation
    "3": "active",  # services capitated
    "4": "active",  # services capitated to primary care physician
    "5": "active",  # pending investigation
    "6": "inactive",
    "7": "inactive",  # pending eligibility update
    "8": "inactive",  # pending investigation
    "A": "coinsurance",
    "B": "copay",
    "C": "deductible",
    "D": "benefit_description",
    "E": "exclusions",
    "F": "limitations",
    "G": "out_of_pocket",
    "I": "non_covered",
    "J": "cost_containment",
    "L": "primary_care_provider",
    "N": "services_restricted",
    "R": "other_payer",
    "U": "contact_for_information",
    "X": "health_care_facility",
}
ACTIVE = frozenset({"1", "2", "3", "4", "5"})
INACTIVE = frozenset({"6", "7", "8"})

# EB06 time period qualifier. "Remaining" periods carry what is left to meet.
TIME_PERIODS = {
    "6": "hour",
    "7": "day",
    "13": "24_hours",
    "21": "years",
    "22": "service_year",
    "23": "calendar_year",
    "24": "year_to_date",
    "25": "contract",
    "26": "episode",
    "27": "visit",
    "28": "outlier",
    "29": "remaining",
    "30": "exceeded",
    "31": "not_exceeded",
    "32": "lifetime",
    "33": "lifetime_remaining",
    "34": "month",
    "35": "week",
    "36": "admission",
}
REMAINING_PERIODS = frozenset({"29", "33"})
# Periods that state a whole benefit (a deductible or out-of-pocket maximum), by preference.
TOTAL_PERIODS = ("23", "22", "21", "25", "32")

# EB12 in plan network indicator.
NETWORK = {"Y": True, "N": False}

# NM101 of a 2120C/D benefit related entity: the payer-like ones rcm reports as other payers.
PAYER_ROLES = {
    "PR": "payer",
    "PRP": "primary_payer",
    "SEP": "secondary_payer",
    "TTP": "tertiary_payer",
    "P4": "prior_insurance_carrier",
    "P5": "plan_sponsor",
    "Y2": "managed_care_organization",
    "2B": "third_party_administrator",
    "IL": "insured",
}
OTHER_ROLES = {
    "13": "contracted_service_provider",
    "1I": "preferred_provider_organization",
    "1P": "provider",
    "36": "employer",
    "73": "other_physician",
    "FA": "facility",
    "GP": "gateway_provider",
    "GW": "group",
    "I3": "independent_physicians_association",
    "LR": "legal_representative",
    "OC": "origin_carrier",
    "P3": "primary_care_provider",
    "VER": "party_performing_verification",
    "VN": "vendor",
    "VY": "organization_completing_configuration_change",
    "X3": "utilization_management_organization",
}

# AAA03 reject reasons, and what rcm does about each: "retry" later (the payer could not
# answer), "registration" (fix the patient's or subscriber's demographics or member id),
# or "review" (a biller looks: provider enrolment, payer set-up, the request itself).
REJECT_REASONS = {
    "04": ("authorized quantity exceeded", "review"),
    "15": ("required application data missing", "review"),
    "33": ("input errors", "review"),
    "35": ("out of network", "review"),
    "41": ("authorization/access restrictions", "review"),
    "42": ("unable to respond at current time", "retry"),
    "43": ("invalid/missing provider identification", "review"),
    "44": ("invalid/missing provider name", "review"),
    "45": ("invalid/missing provider specialty", "review"),
    "47": ("invalid/missing provider state", "review"),
    "48": ("invalid/missing referring provider identification number", "review"),
    "49": ("provider is not primary care physician", "review"),
    "50": ("provider ineligible for inquiries", "review"),
    "51": ("provider not on file", "review"),
    "52": ("service dates not within provider plan enrollment", "review"),
    "53": ("inquired benefit inconsistent with provider type", "review"),
    "54": ("inappropriate product/service id qualifier", "review"),
    "56": ("inappropriate date", "review"),
    "57": ("invalid/missing date(s) of service", "review"),
    "58": ("invalid/missing date-of-birth", "registration"),
    "60": ("date of birth follows date(s) of service", "registration"),
    "61": ("date of death precedes date(s) of service", "registration"),
    "62": ("date of service not within allowable inquiry period", "review"),
    "63": ("date of service in future", "review"),
    "64": ("invalid/missing patient id", "registration"),
    "65": ("invalid/missing patient name", "registration"),
    "66": ("invalid/missing patient gender code", "registration"),
    "67": ("patient not found", "registration"),
    "68": ("duplicate patient id number", "registration"),
    "71": (
        "patient birth date does not match that for the patient on the database",
        "registration",
    ),
    "72": ("invalid/missing subscriber/insured id", "registration"),
    "73": ("invalid/missing subscriber/insured name", "registration"),
    "74": ("invalid/missing subscriber/insured gender code", "registration"),
    "75": ("subscriber/insured not found", "registration"),
    "76": ("duplicate subscriber/insured id number", "registration"),
    "77": ("subscriber found, patient not found", "registration"),
    "78": ("subscriber/insured not in group/plan identified", "registration"),
    "79": ("invalid participant identification", "review"),
    "80": ("no response received - transaction terminated", "retry"),
    "97": ("invalid or missing provider address", "review"),
    "T4": ("payer name or identifier missing", "review"),
}
