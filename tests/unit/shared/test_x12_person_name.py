"""shared.x12.Transaction.add_person: the one NM1 for a person that the 837, 276, 835, 277CA and
271 writers share (names cut to the 5010 maxima, the id only when there is one)."""

from shared.x12 import Transaction


def _nm1(*args, **kw) -> list[str]:
    tx = Transaction("0001")
    tx.add_person(*args, **kw)
    return tx.segments[-1]


def test_a_member_with_an_id():
    assert _nm1("IL", "o'brien-smith", "Ada*Marie", " w123~456 ") == [
        "NM1",
        "IL",
        "1",
        "O'BRIEN-SMITH",
        "ADA MARIE",
        "",
        "",
        "",
        "MI",
        "W123 456",
    ]


def test_no_id_drops_the_trailing_elements():
    assert _nm1("QC", "Zed", "Ada", None) == ["NM1", "QC", "1", "ZED", "ADA"]
    assert _nm1("QC", "Zed", "Ada", "") == ["NM1", "QC", "1", "ZED", "ADA"]


def test_names_and_id_are_cut_to_the_5010_maxima():
    seg = _nm1("82", "L" * 70, "F" * 40, "9" * 90, "XX")
    assert [len(seg[3]), len(seg[4]), seg[8], len(seg[9])] == [60, 35, "XX", 80]


def test_a_provider_by_npi():
    assert _nm1("71", "Okafor", "Samuel", "1603948251", "XX") == [
        "NM1",
        "71",
        "1",
        "OKAFOR",
        "SAMUEL",
        "",
        "",
        "",
        "XX",
        "1603948251",
    ]
