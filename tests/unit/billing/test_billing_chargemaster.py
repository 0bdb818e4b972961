from decimal import Decimal

import pytest

from services.billing.domain.chargemaster import load_sample_chargemaster, parse_chargemaster_csv

REQUIRED_CODES = (
    "99202 99203 99204 99205 99211 99212 99213 99214 99215 99281 99282 99283 99284 99285 "
    "80048 80053 85025 83036 81002 87880 87804 87635 80061 84443 36415 93000 71046 73610 "
    "73630 73030 72100 20610 96372 90471 90686 90715 90732 J1885 J3301 J0696 G0008 G0009 "
    "12001 12002 11102 17110 10060 29540 29515 69210 99406 94640 81025 87086 99051"
).split()


@pytest.mark.parametrize(
    "site", ["north-clinic", "south-urgent-care", "east-hospital", "unknown-site"]
)
def test_sample_chargemasters_price_every_required_code(site):
    cm = load_sample_chargemaster(site)
    missing = [c for c in REQUIRED_CODES if cm.price(c) is None]
    assert missing == []
    assert all(cm.price(c) > 0 for c in REQUIRED_CODES)
    assert all(isinstance(cm.price(c), Decimal) for c in REQUIRED_CODES)


def test_sites_have_their_own_prices_and_unknown_site_gets_default():
    north = load_sample_chargemaster("north-clinic")
    east = load_sample_chargemaster("east-hospital")
    assert north.price("99213") == Decimal("125.00")
    assert east.price("99213") == Decimal("200.00")
    assert load_sample_chargemaster("nowhere").name == "chargemaster_default.csv"
    assert east.revenue_code("85025") == "0305"
    assert east.revenue_code("99284") == "0450"


def test_modifier_row_wins_over_base_price_and_unknown_code_is_none():
    cm = load_sample_chargemaster("north-clinic")
    assert cm.price("73610") == Decimal("85.00")
    assert cm.price("73610", ["26"]) == Decimal("30.00")
    assert cm.price("73610", ["RT", "TC"]) == Decimal("55.00")
    assert cm.price("73610", ["RT"]) == Decimal("85.00")  # no RT row: base price
    assert cm.price("99999") is None
    assert cm.lookup("99999") is None


def test_parse_accepts_any_column_order_dollars_and_blank_lines():
    cm = parse_chargemaster_csv('price,code,revenue_code\n"$1,250.5",99285,0450\n\n12,36415,\n')
    assert cm.price("99285") == Decimal("1250.50")
    assert cm.revenue_code("36415") is None
    assert len(cm) == 2


@pytest.mark.parametrize(
    "text, message",
    [
        ("code,description\n99213,visit\n", "row 1: missing required column 'price'"),
        ("code,price\n99213,abc\n", "row 2, column 'price': 'abc' is not a decimal amount"),
        ("code,price\n99213,10\n99214,-5\n", "row 3, column 'price': must be zero or positive"),
        ("code,price\n,10\n", "row 2, column 'code'"),
        ("code,price\n99-213,10\n", "row 2, column 'code'"),
        ("code,modifier,price\n73610,2,10\n", "row 2, column 'modifier'"),
        ("code,price,revenue_code\n99213,10,510\n", "row 2, column 'revenue_code'"),
        ("code,price\n99213,10\n99213,11\n", "row 3, column 'code': duplicate entry for 99213"),
        ("", "empty file"),
    ],
)
def test_parse_errors_name_row_and_column(text, message):
    with pytest.raises(ValueError) as err:
        parse_chargemaster_csv(text, name="cm.csv")
    assert message in str(err.value)
    assert str(err.value).startswith("cm.csv")
