"""US states: USPS codes from the codes, names and common abbreviations EHRs write."""

from __future__ import annotations

import re

_NAMES: dict[str, tuple[str, ...]] = {
    "AL": (
        "Alabama",
        "Ala.",
    ),
    "AK": ("Alaska",),
    "AZ": (
        "Arizona",
        "Ariz.",
    ),
    "AR": (
        "Arkansas",
        "Ark.",
    ),
    "CA": (
        "California",
        "Calif.",
        "Cal.",
    ),
    "CO": (
        "Colorado",
        "Colo.",
    ),
    "CT": (
        "Connecticut",
        "Conn.",
    ),
    "DE": (
        "Delaware",
        "Del.",
    ),
    "DC": (
        "District of Columbia",
        "D.C.",
        "Washington DC",
        "Washington D.C.",
    ),
    "FL": (
        "Florida",
        "Fla.",
    ),
    "GA": (
        "Georgia",
        "Ga.",
    ),
    "HI": (
        "Hawaii",
        "Hawai'i",
    ),
    "ID": ("Idaho",),
    "IL": (
        "Illinois",
        "Ill.",
    ),
    "IN": (
        "Indiana",
        "Ind.",
    ),
    "IA": ("Iowa",),
    "KS": (
        "Kansas",
        "Kan.",
        "Kans.",
    ),
    "KY": (
        "Kentucky",
        "Ky.",
    ),
    "LA": (
        "Louisiana",
        "La.",
    ),
    "ME": ("Maine",),
    "MD": (
        "Maryland",
        "Md.",
    ),
    "MA": (
        "Massachusetts",
        "Mass.",
    ),
    "MI": (
        "Michigan",
        "Mich.",
    ),
    "MN": (
        "Minnesota",
        "Minn.",
    ),
    "MS": (
        "Mississippi",
        "Miss.",
    ),
    "MO": (
        "Missouri",
        "Mo.",
    ),
    "MT": (
        "Montana",
        "Mont.",
    ),
    "NE": (
        "Nebraska",
        "Neb.",
        "Nebr.",
    ),
    "NV": (
        "Nevada",
        "Nev.",
    ),
    "NH": (
        "New Hampshire",
        "N.H.",
    ),
    "NJ": (
        "New Jersey",
        "N.J.",
    ),
    "NM": (
        "New Mexico",
        "N.M.",
        "N.Mex.",
    ),
    "NY": (
        "New York",
        "N.Y.",
    ),
    "NC": (
        "North Carolina",
        "N.C.",
    ),
    "ND": (
        "North Dakota",
        "N.D.",
        "N.Dak.",
    ),
    "OH": ("Ohio",),
    "OK": (
        "Oklahoma",
        "Okla.",
    ),
    "OR": (
        "Oregon",
        "Ore.",
        "Oreg.",
    ),
    "PA": (
        "Pennsylvania",
        "Pa.",
        "Penn.",
    ),
    "RI": (
        "Rhode Island",
        "R.I.",
    ),
    "SC": (
        "South Carolina",
        "S.C.",
    ),
    "SD": (
        "South Dakota",
        "S.D.",
        "S.Dak.",
    ),
    "TN": (
        "Tennessee",
        "Tenn.",
    ),
    "TX": (
        "Texas",
        "Tex.",
    ),
    "UT": ("Utah",),
    "VT": (
        "Vermont",
        "Vt.",
    ),
    "VA": (
        "Virginia",
        "Va.",
    ),
    "WA": (
        "Washington",
        "Wash.",
    ),
    "WV": (
        "West Virginia",
        "W.Va.",
        "W.V.",
    ),
    "WI": (
        "Wisconsin",
        "Wis.",
        "Wisc.",
    ),
    "WY": (
        "Wyoming",
        "Wyo.",
    ),
    "AS": ("American Samoa",),
    "GU": ("Guam",),
    "MP": ("Northern Mariana Islands",),
    "PR": ("Puerto Rico",),
    "VI": (
        "Virgin Islands",
        "U.S. Virgin Islands",
        "US Virgin Islands",
    ),
    "AA": ("Armed Forces Americas",),
    "AE": ("Armed Forces Europe",),
    "AP": ("Armed Forces Pacific",),
}


def _key(text: str) -> str:
    return re.sub(r"[^a-z]+", "", text.casefold())


_BY_KEY = {_key(n): code for code, names in _NAMES.items() for n in (code, *names)}


def usps_state(text: str) -> str | None:
    """The USPS code for a state code, name or abbreviation ("Mass.", "massachusetts",
    "ma" -> "MA"); None when it names no US state or territory."""
    return _BY_KEY.get(_key(text))


# States and territories whose ZIP codes begin with 0: systems that store ZIPs as numbers
# drop it ("2110" for 02110).
ZERO_ZIP = frozenset({"CT", "MA", "ME", "NH", "NJ", "PR", "RI", "VT", "VI", "AE"})
