from datetime import date
from decimal import Decimal as D

import pytest

from services.followup.domain.aging import (
    AGING_BUCKETS,
    AgingItem,
    age_balances,
    bucket_for,
    render_aging_table,
)

AS_OF = date(2024, 6, 30)


def item(claim, service, balance, payer="MCR01", site="S1", patient="P1", submitted=None):
    return AgingItem(payer, site, patient, claim, service, submitted, D(balance))


# Hand-computed: ages in days from 2024-06-30 sit on each side of every boundary.
ITEMS = [
    item("C00", date(2024, 6, 30), "10.00"),  # 0 days    -> 0-30
    item("C30", date(2024, 5, 31), "20.00"),  # 30 days   -> 0-30
    item("C31", date(2024, 5, 30), "30.00"),  # 31 days   -> 31-60
    item("C60", date(2024, 5, 1), "40.00"),  # 60 days   -> 31-60
    item("C61", date(2024, 4, 30), "50.00"),  # 61 days   -> 61-90
    item("C90", date(2024, 4, 1), "60.00"),  # 90 days   -> 61-90
    item("C91", date(2024, 3, 31), "70.00"),  # 91 days   -> 91-120
    item("C120", date(2024, 3, 2), "80.00"),  # 120 days -> 91-120
    item("C121", date(2024, 3, 1), "90.00", payer="AETNA01"),  # 121 days -> 120+
    item("CZERO", date(2024, 1, 1), "0.00"),  # zero balance: excluded
    item("CCRED", date(2024, 6, 1), "-15.25", site="S2"),  # credit: own column
]


def test_bucket_boundaries():
    assert AGING_BUCKETS == ("0-30", "31-60", "61-90", "91-120", "120+")
    expected = {
        0: "0-30",
        30: "0-30",
        31: "31-60",
        60: "31-60",
        61: "61-90",
        90: "61-90",
        91: "91-120",
        120: "91-120",
        121: "120+",
        5000: "120+",
        -3: "0-30",
    }
    assert {d: bucket_for(d) for d in expected} == expected


def test_by_payer_from_service_date():
    t = age_balances(ITEMS, AS_OF, basis="service", group_by="payer")
    assert t.rows["MCR01"] == {
        "0-30": D("30.00"),
        "31-60": D("70.00"),
        "61-90": D("110.00"),
        "91-120": D("150.00"),
        "120+": D("0.00"),
        "credit": D("-15.25"),
    }
    assert t.rows["AETNA01"]["120+"] == D("90.00")
    assert t.totals == {
        "0-30": D("30.00"),
        "31-60": D("70.00"),
        "61-90": D("110.00"),
        "91-120": D("150.00"),
        "120+": D("90.00"),
        "credit": D("-15.25"),
    }
    assert t.grand_total == D("434.75")
    assert t.row_total("MCR01") == D("344.75")


def test_by_site_and_patient_and_zero_balances_excluded():
    by_site = age_balances(ITEMS, AS_OF, group_by="site")
    assert set(by_site.rows) == {"S1", "S2"}
    assert by_site.rows["S2"] == {**{b: D("0.00") for b in AGING_BUCKETS}, "credit": D("-15.25")}
    only_zero = age_balances([item("Z", date(2024, 1, 1), "0")], AS_OF, group_by="patient")
    assert only_zero.rows == {} and only_zero.grand_total == 0


def test_submission_basis_ages_from_first_submission():
    items = [
        item("A", date(2024, 1, 2), "100.00", submitted=date(2024, 5, 31)),  # 30 days since sub
        item("B", date(2024, 1, 2), "100.00", submitted=date(2024, 5, 30)),  # 31 days
        item("C", date(2024, 4, 30), "5.00"),  # never submitted: ages from service, 61 days
    ]
    t = age_balances(items, AS_OF, basis="submission")
    assert t.totals["0-30"] == D("100.00")
    assert t.totals["31-60"] == D("100.00")
    assert t.totals["61-90"] == D("5.00")
    assert age_balances(items, AS_OF, basis="service").totals["120+"] == D("200.00")


def test_bad_arguments():
    with pytest.raises(ValueError, match="basis"):
        age_balances(ITEMS, AS_OF, basis="posting")
    with pytest.raises(ValueError, match="group_by"):
        age_balances(ITEMS, AS_OF, group_by="provider")
    with pytest.raises(TypeError, match="claim F"):
        age_balances([AgingItem("P", "S", "K", "F", AS_OF, None, 1.5)], AS_OF)


def test_render_aging_table():
    text = render_aging_table(age_balances(ITEMS, AS_OF))
    lines = text.splitlines()
    assert lines[0] == "A/R aging as of 2024-06-30 (from date of service)"
    assert lines[1].split() == [
        "Payer",
        "0-30",
        "31-60",
        "61-90",
        "91-120",
        "120+",
        "Credit",
        "Total",
    ]
    assert lines[3].split() == ["AETNA01", "0.00", "0.00", "0.00", "0.00", "90.00", "0.00", "90.00"]
    assert lines[4].split() == [
        "MCR01",
        "30.00",
        "70.00",
        "110.00",
        "150.00",
        "0.00",
        "-15.25",
        "344.75",
    ]
    assert lines[-1].split() == [
        "TOTAL",
        "30.00",
        "70.00",
        "110.00",
        "150.00",
        "90.00",
        "-15.25",
        "434.75",
    ]
    assert len({len(ln) for ln in lines[1:]}) == 1  # columns line up
