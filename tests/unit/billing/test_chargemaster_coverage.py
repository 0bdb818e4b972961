"""Every CPT/HCPCS code the coding engine can suggest has a price on every sample chargemaster.

A code the engine suggests but a site cannot price holds the claim ("no price"): the demo and
any site starting from the samples would hold ordinary visits (a knee x-ray, a DTaP, a B12 shot).
"""

from __future__ import annotations

import ast
import json
from decimal import Decimal
from pathlib import Path

import pytest

from services.billing.domain.chargemaster import SAMPLE_SITES, load_sample_chargemaster
from services.coding.domain import cpt, engine
from services.intake.domain.fhir import parse_intake

CODING_DOMAIN = Path(cpt.__file__).resolve().parent
# The modules that write service lines; the others (rules, diagnoses, specificity) hold
# ICD-10-CM codes, some of which have the shape of a HCPCS code (J3489, R0781).
LINE_WRITERS = ("procedures.py", "drugs.py", "em.py", "engine.py", "lines.py")


def suggestable_codes() -> set[str]:
    """The engine's code tables: CPT codes with rcm's labels and the HCPCS procedures."""
    hcpcs = {c for c, h in cpt.hcpcs_sample().items() if h.kind == "procedure"}
    return set(cpt.cpt_table()) | hcpcs


def _code_literals(module: str) -> set[str]:
    tree = ast.parse((CODING_DOMAIN / module).read_text(encoding="utf-8"))
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and cpt.system_of(node.value) is not None
    }


@pytest.mark.parametrize("module", LINE_WRITERS)
def test_every_code_the_engine_writes_is_in_its_tables(module):
    # Guards the enumeration below: a rule that emits a code missing from the tables
    # would escape the chargemaster check.
    assert _code_literals(module) - suggestable_codes() == set()


def test_the_tables_hold_the_codes_the_engine_suggests():
    codes = suggestable_codes()
    assert len(codes) > 200
    # the codes found unpriced on real demo runs (issue 21 item 5)
    for code in "17000 17003 73100 73562 90460 90651 90677 90700 90734 99173 99392 J3420".split():
        assert code in codes


@pytest.mark.parametrize("site", (*SAMPLE_SITES, "default"))
def test_every_suggestable_code_has_a_price(site):
    chargemaster = load_sample_chargemaster(site)
    unpriced = sorted(c for c in suggestable_codes() if chargemaster.price(c) is None)
    assert unpriced == []
    for code in suggestable_codes():
        item = chargemaster.lookup(code)
        assert item.price > Decimal(0), code
        assert item.description, code
        assert item.revenue_code and len(item.revenue_code) == 4, code


def test_cpt_rows_use_rcms_own_labels():
    # CPT descriptors are AMA-licensed: a CPT row added for the engine's codes carries the
    # coding table's own label, never a descriptor.
    chargemaster = load_sample_chargemaster("default")
    labels = cpt.cpt_table()
    assert chargemaster.lookup("73562").description == labels["73562"].label
    assert chargemaster.lookup("90460").description == labels["90460"].label


def test_site_prices_follow_the_site():
    base = load_sample_chargemaster("north-clinic").price("73562")
    assert load_sample_chargemaster("south-urgent-care").price("73562") > base
    assert load_sample_chargemaster("east-hospital").price("73562") > base


def test_what_the_engine_suggests_on_the_vignettes_is_priced_everywhere():
    # The engine itself, on the labelled vignettes (tests/fixtures/vignettes): its output, not
    # only its tables, is priced on every sample chargemaster.
    vignettes = Path(__file__).resolve().parents[2] / "fixtures" / "vignettes"
    suggested = set()
    for path in sorted(vignettes.glob("*.json")):
        if path.name == "labels.json":
            continue
        result = engine.code_encounter(parse_intake(json.loads(path.read_text())))
        suggested |= {p.code for p in result.procedures}
    assert {"90460", "90700", "99392", "J3420", "73562"} <= suggested  # the examples
    for site in (*SAMPLE_SITES, "default"):
        chargemaster = load_sample_chargemaster(site)
        assert sorted(c for c in suggested if chargemaster.price(c) is None) == [], site
