"""A coder's decisions read into final codes: nothing accepted by default, pointers follow."""

from __future__ import annotations

from services.workbench.domain.review import read

SUGGESTED = {
    "diagnoses": [{"code": "S93401A"}, {"code": "M25571"}, {"code": "W010XXA"}],
    "procedures": [
        {"code": "99283", "modifiers": ["25"], "units": "1", "diagnosis_pointers": [1, 2, 3]},
        {"code": "29540", "modifiers": [], "units": "1", "diagnosis_pointers": [2]},
    ],
}


def form(**fields) -> dict[str, list[str]]:
    return {k.replace("_", "-"): v if isinstance(v, list) else [v] for k, v in fields.items()}


def test_every_suggestion_must_be_decided():
    r = read(SUGGESTED, form(dx_0="accept"))
    assert r.undecided == ["dx-1", "dx-2", "px-0", "px-1"]
    assert r.diagnoses == ["S93401A"]


def test_rejections_and_replacements_renumber_pointers():
    r = read(
        SUGGESTED,
        form(
            dx_0="accept",
            dx_1="reject",
            dx_2="replace",
            dx_2_with="w01.0xxa ",
            px_0="accept",
            px_1="replace",
            px_1_with="29515",
            px_1_modifiers="rt",
            px_1_units="2",
        ),
    )
    assert r.undecided == [] and r.problems == []
    assert r.diagnoses == ["S93401A", "W010XXA"]
    assert r.procedures == [
        {"code": "99283", "modifiers": ["25"], "units": "1", "diagnosis_pointers": [1, 2]},
        # its only diagnosis was rejected: it points at the principal diagnosis
        {"code": "29515", "modifiers": ["RT"], "units": "2", "diagnosis_pointers": [1]},
    ]


def test_added_codes_and_override_reasons():
    r = read(
        SUGGESTED,
        {
            **form(dx_0="accept", dx_1="accept", dx_2="reject", px_0="accept", px_1="reject"),
            "add-dx": ["R52", " ", "S93401A"],
            "add-px": ["J1885"],
            "override:NCCI-PTP": ["", "Separate site, documented"],
            "override:MUE": ["  "],
        },
    )
    assert r.diagnoses == ["S93401A", "M25571", "R52"]
    assert [p["code"] for p in r.procedures] == ["99283", "J1885"]
    assert r.overrides == [{"code": "NCCI-PTP", "reason": "Separate site, documented"}]


def test_problems_name_the_field():
    r = read(
        SUGGESTED,
        {
            **form(dx_0="replace", dx_0_with="not a code", dx_1="reject", dx_2="reject"),
            **form(
                px_0="replace",
                px_0_with="",
                px_1="accept",
                px_1_units="0",
                px_1_modifiers="RT,LEFT",
            ),
            "add-px": ["XYZ"],
        },
    )
    assert r.problems == [
        "dx-0-with: NOT A CODE is not an ICD-10-CM code",
        "px-0-with: empty is not a CPT or HCPCS code",
        "px-1-modifiers: up to four two-character modifiers, comma separated",
        "px-1-units: units must be a number above 0",
        "add-px[0]: XYZ is not a CPT or HCPCS code",
        "diagnoses: keep or add at least one diagnosis",
    ]
