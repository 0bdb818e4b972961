import csv
from decimal import Decimal
from importlib import resources

import pytest

from services.followup.domain.denials import (
    ACTIONS,
    CATEGORIES,
    DEFAULT,
    DenialRules,
    classify,
    denial_actions_for_remittance,
    load_official_descriptions,
)
from shared.events import Adjustment

# The 40+ CARCs most seen on professional remittances, with what we expect for CO.
COMMON_CO = {
    "4": "coding/bundling",
    "5": "coding/bundling",
    "6": "coding/bundling",
    "11": "coding/bundling",
    "15": "authorization",
    "16": "missing/invalid information",
    "18": "duplicate",
    "19": "eligibility/coverage",
    "22": "eligibility/coverage",
    "23": "contractual",
    "24": "contractual",
    "26": "eligibility/coverage",
    "27": "eligibility/coverage",
    "29": "timely filing",
    "31": "eligibility/coverage",
    "35": "non-covered",
    "39": "authorization",
    "40": "medical necessity",
    "45": "contractual",
    "49": "non-covered",
    "50": "medical necessity",
    "55": "non-covered",
    "58": "coding/bundling",
    "59": "contractual",
    "96": "non-covered",
    "97": "coding/bundling",
    "107": "missing/invalid information",
    "109": "eligibility/coverage",
    "119": "non-covered",
    "125": "missing/invalid information",
    "140": "eligibility/coverage",
    "146": "coding/bundling",
    "150": "medical necessity",
    "151": "medical necessity",
    "167": "medical necessity",
    "170": "non-covered",
    "181": "coding/bundling",
    "182": "coding/bundling",
    "185": "missing/invalid information",
    "189": "coding/bundling",
    "197": "authorization",
    "198": "authorization",
    "204": "non-covered",
    "206": "missing/invalid information",
    "226": "missing/invalid information",
    "234": "coding/bundling",
    "236": "coding/bundling",
    "252": "missing/invalid information",
    "253": "contractual",
    "A1": "missing/invalid information",
    "B7": "non-covered",
    "B9": "eligibility/coverage",
    "B13": "duplicate",
    "B15": "coding/bundling",
}


def test_table_covers_at_least_40_common_carcs_with_own_categories():
    codes = {code for (_group, code) in DEFAULT.carc}
    assert len(codes) >= 40
    assert set(COMMON_CO) <= codes
    for code, category in COMMON_CO.items():
        c = classify("CO", code)
        assert c.known and c.category == category, code
        assert c.action in ACTIONS and c.category in CATEGORIES


def test_packaged_csv_has_only_our_columns_and_short_labels():
    text = resources.files("services.followup.data").joinpath("carc.csv").read_text()
    rows = list(csv.DictReader(text.splitlines()))
    assert list(rows[0]) == ["code", "group", "short_label", "category", "action", "use_rarc"]
    # our own short labels, not the (copyrighted, long) official descriptions
    assert all(0 < len(r["short_label"]) <= 60 for r in rows)


@pytest.mark.parametrize(
    ("group", "carc", "rarc", "category", "action"),
    [
        ("PR", "1", [], "patient responsibility", "bill patient"),
        ("PR", "2", [], "patient responsibility", "bill patient"),
        ("PR", "3", [], "patient responsibility", "bill patient"),
        ("PR", "204", [], "patient responsibility", "bill patient"),
        ("CO", "45", [], "contractual", "no action"),
        ("PI", "45", [], "contractual", "no action"),
        ("CO", "97", [], "coding/bundling", "correct and resubmit"),
        ("CO", "B15", [], "coding/bundling", "correct and resubmit"),
        ("CO", "234", [], "coding/bundling", "correct and resubmit"),
        ("CO", "16", ["MA130"], "missing/invalid information", "correct and resubmit"),
        ("CO", "16", ["N290"], "missing/invalid information", "correct and resubmit"),
        ("CO", "16", ["N30"], "eligibility/coverage", "verify eligibility and rebill"),
        ("CO", "16", ["M51"], "coding/bundling", "correct and resubmit"),
        ("CO", "50", [], "medical necessity", "appeal"),
        ("CO", "197", [], "authorization", "appeal"),
        ("CO", "15", [], "authorization", "correct and resubmit"),
        ("CO", "27", [], "eligibility/coverage", "verify eligibility and rebill"),
        ("CO", "26", [], "eligibility/coverage", "verify eligibility and rebill"),
        ("CO", "31", [], "eligibility/coverage", "verify eligibility and rebill"),
        ("CO", "109", [], "eligibility/coverage", "verify eligibility and rebill"),
        ("CO", "29", [], "timely filing", "write off"),
        ("CO", "18", [], "duplicate", "no action"),
        ("OA", "18", [], "duplicate", "no action"),
        ("OA", "23", [], "contractual", "no action"),
        ("CO", "96", [], "non-covered", "write off"),
        ("CO", "204", [], "non-covered", "write off"),
        ("CR", "50", [], "medical necessity", "no action"),
    ],
)
def test_classify_group_and_carc(group, carc, rarc, category, action):
    c = classify(group, carc, rarc)
    assert (c.category, c.action, c.group, c.carc, c.known) == (category, action, group, carc, True)


def test_rarc_only_refines_generic_carcs():
    # CO-97 is specific: a remark about eligibility does not turn it into eligibility
    assert classify("CO", "97", ["N30"]).category == "coding/bundling"
    # informational remark codes (no category) are skipped, the next one decides
    c = classify("CO", "16", ["MA01", "N290"])
    assert c.source == "rarc" and c.category == "missing/invalid information"
    assert c.rarc == ("MA01", "N290")


def test_unknown_carc_is_unclassified_and_never_raises():
    for group, carc in [("CO", "9999"), ("OA", "ZZ"), ("XX", "45x"), ("", ""), ("PI", "  ")]:
        c = classify(group, carc)
        assert (c.category, c.action, c.known) == ("unclassified", "review", False)
    # an unknown reason under PR is still owed by the patient
    c = classify("PR", "9999")
    assert (c.category, c.action, c.known) == ("patient responsibility", "bill patient", False)


def test_group_is_normalised_and_oi_means_oa():
    assert classify(" co ", "45").group == "CO"
    assert classify("OI", "23").group == "OA"


def test_payer_overrides_from_json_exact_then_glob():
    rules = DEFAULT.with_payer_overrides(
        '{"MCR*": {"CO-50": {"category": "medical necessity", "action": "write off",'
        ' "label": "LCD not met"}},'
        ' "MCR01": {"16": {"category": "non-covered", "action": "review"}}}'
    )
    assert classify("CO", "50", payer_id="MCR02", rules=rules).action == "write off"
    assert classify("CO", "50", payer_id="MCR02", rules=rules).label == "LCD not met"
    assert classify("CO", "50", payer_id="AETNA1", rules=rules).action == "appeal"
    c = classify("CO", "16", payer_id="MCR01", rules=rules)
    assert (c.category, c.action, c.source) == ("non-covered", "review", "payer")
    # the default rules are untouched
    assert classify("CO", "50", payer_id="MCR02").action == "appeal"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1]", "top level"),
        ('{"P": {"CO-50": {"category": "nonsense", "action": "appeal"}}}', "P][CO-50]"),
        ('{"P": {"CO-50": {"category": "duplicate", "action": "pray"}}}', "unknown action"),
        ("{bad", "invalid JSON"),
    ],
)
def test_bad_payer_overrides_name_the_entry(text, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        DEFAULT.with_payer_overrides(text)


def test_bad_carc_table_names_the_line():
    with pytest.raises(ValueError, match="carc.csv line 3: unknown category"):
        DenialRules.from_text(
            "code,group,short_label,category,action,use_rarc\n"
            "1,*,Deductible,patient responsibility,bill patient,\n"
            "2,*,Coinsurance,owed,bill patient,\n",
            "code,short_label,category,action\n",
        )


def test_load_official_descriptions():
    text = 'code,description\n1,"Deductible amount, as worded by X12"\n\nCO45,Other text\n'
    assert load_official_descriptions(text) == {
        "1": "Deductible amount, as worded by X12",
        "CO45": "Other text",
    }
    with pytest.raises(ValueError, match="line 2"):
        load_official_descriptions("code,description\n97\n")


def _adj(group, reason, amount, beyond_contract):
    """An adjustment as remittance.received carries it, with payments' decision on it."""
    return Adjustment(
        group=group, reason=reason, amount=Decimal(amount), beyond_contract=beyond_contract
    )


def test_remittance_paid_claim_keeps_only_what_payments_puts_beyond_the_contract():
    adjustments = [
        _adj("CO", "45", "40.00", False),
        _adj("PR", "2", "12.00", False),
        _adj("CO", "97", "25.00", True),  # claim level
        _adj("CO", "97", "5.50", True),  # line level, same reason: summed
        _adj("CO", "16", "30.00", True),
        _adj("OA", "23", "60.00", False),  # the prior payer's adjudication
    ]
    out = denial_actions_for_remittance(adjustments, ["N290"], "partially_paid", "MCR01")
    assert [(c.group, c.carc, c.amount) for c in out] == [
        ("CO", "97", Decimal("30.50")),
        ("CO", "16", Decimal("30.00")),
    ]
    assert out[1].category == "missing/invalid information"


def test_payments_decides_what_is_worked_not_this_table():
    # followup's own table calls CO-24 contractual and has no row for CO-A2; payments' decision
    # (carried on the adjustment) is what opens a work item, the table only names it.
    adjustments = [_adj("CO", "24", "15.00", True), _adj("CO", "A2", "50.00", False)]
    out = denial_actions_for_remittance(adjustments, [], "partially_paid", "AETNA1")
    assert [(c.group, c.carc, c.category, c.amount) for c in out] == [
        ("CO", "24", "contractual", Decimal("15.00"))
    ]


def test_remittance_denied_claim_keeps_everything():
    adjustments = [_adj("CO", "45", "10.00", False), _adj("PR", "27", "90.00", False)]
    out = denial_actions_for_remittance(adjustments, [], "denied", "AETNA1")
    assert [(c.group, c.carc, c.action) for c in out] == [
        ("PR", "27", "bill patient"),
        ("CO", "45", "no action"),
    ]


def test_remittance_reversal_yields_nothing():
    assert denial_actions_for_remittance([_adj("CO", "50", "100", True)], [], "reversed", "X") == []
