"""The demo's sites and payers, as data. Every name, number and address is fictitious;
NPIs carry a valid check digit so they pass the billing scrub."""

from __future__ import annotations

from dataclasses import dataclass

from shared.events import Address, Organization, Provider


def npi_check_digit(first9: str) -> str:
    """Check digit of an NPI: Luhn over ``80840`` + the first nine digits.

    Raises ValueError unless ``first9`` is nine digits.
    """
    if len(first9) != 9 or not first9.isdigit():
        raise ValueError("an NPI check digit needs exactly nine leading digits")
    total = 0
    # Walking right to left, the digit next to the (future) check digit is doubled.
    for i, ch in enumerate(reversed("80840" + first9)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def npi(first9: str) -> str:
    return first9 + npi_check_digit(first9)


@dataclass(frozen=True)
class Site:
    site_id: str
    kind: str
    organization: Organization
    # place of service by setting: office visits, emergency department, inpatient
    place_of_service: dict[str, str]
    practitioners: tuple[Provider, ...]

    @property
    def address(self) -> Address:
        assert self.organization.address is not None
        return self.organization.address


@dataclass(frozen=True)
class Payer:
    payer_id: str
    name: str
    filing_indicator: str  # SBR09
    kind: str  # medicare, medicaid, commercial


def _doc(first9: str, first: str, last: str, taxonomy: str) -> Provider:
    return Provider(npi=npi(first9), first_name=first, last_name=last, taxonomy=taxonomy)


SITES: dict[str, Site] = {
    s.site_id: s
    for s in (
        Site(
            site_id="north-clinic",
            kind="primary care office",
            organization=Organization(
                name="Northgate Family Medicine",
                npi=npi("124587390"),
                tax_id="814203377",
                taxonomy="207Q00000X",
                address=Address(
                    line1="1200 Birchwood Avenue",
                    city="Maple Falls",
                    state="OH",
                    postal_code="432151407",
                ),
            ),
            place_of_service={"office": "11"},
            practitioners=(
                _doc("153820467", "Elena", "Marchetti", "207Q00000X"),
                _doc("160394825", "Samuel", "Okafor", "207R00000X"),
                _doc("171748302", "Priya", "Raman", "208000000X"),
            ),
        ),
        Site(
            site_id="south-urgent-care",
            kind="urgent care",
            organization=Organization(
                name="Southbank Urgent Care",
                npi=npi("136502948"),
                tax_id="823340918",
                taxonomy="261QU0200X",
                address=Address(
                    line1="48 Harbor Point Road",
                    city="Cedar Bay",
                    state="OH",
                    postal_code="441132208",
                ),
            ),
            place_of_service={"office": "20"},
            practitioners=(
                _doc("182039475", "Marcus", "Lindqvist", "207P00000X"),
                _doc("194857203", "Hannah", "Delacroix", "363LF0000X"),
            ),
        ),
        Site(
            site_id="east-hospital",
            kind="hospital outpatient, emergency department and inpatient",
            organization=Organization(
                name="Eastbrook Community Hospital",
                npi=npi("147205836"),
                tax_id="837712054",
                taxonomy="282N00000X",
                address=Address(
                    line1="900 Riverside Parkway",
                    city="Ashford",
                    state="OH",
                    postal_code="452024411",
                ),
            ),
            place_of_service={"office": "22", "ed": "23", "inpatient": "21"},
            practitioners=(
                _doc("115928374", "Olivia", "Brennan", "207P00000X"),
                _doc("128473920", "Tomas", "Villanueva", "208M00000X"),
                _doc("139204857", "Grace", "Whitfield", "207X00000X"),
                _doc("140582736", "Daniel", "Achterberg", "207RC0000X"),
            ),
        ),
    )
}

PAYERS: dict[str, Payer] = {
    p.payer_id: p
    for p in (
        Payer("MCR01", "Medicare Part B (Demo MAC)", "MB", "medicare"),
        Payer("MCD01", "Buckeye State Medicaid (demo)", "MC", "medicaid"),
        Payer("AETNA1", "Aster Health Insurance Co", "CI", "commercial"),
        Payer("BCBS01", "Blue Lakes Cross Shield (demo)", "BL", "commercial"),
        Payer("UHC001", "Unity Health Care Plan", "CI", "commercial"),
        Payer("HMO001", "Harborview HMO", "HM", "commercial"),
    )
}
