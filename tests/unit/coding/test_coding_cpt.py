import pytest

from services.coding.domain import cpt


def test_bundled_cpt_table_has_labels_not_descriptors():
    t = cpt.cpt_table()
    assert t["99213"].category == "em-office-est"
    assert len(t["99213"].label) <= 40
    for code in (
        "99202",
        "99215",
        "99281",
        "99285",
        "36415",
        "93000",
        "71046",
        "90471",
        "90472",
        "20610",
        "12001",
    ):
        assert code in t


def test_load_cpt_descriptors_csv_and_tab():
    text = 'code,descriptor\n99213,"Office visit, est"\n# comment\n\n99214\tLonger, with commas'
    assert cpt.load_cpt_descriptors(text) == {
        "99213": "Office visit, est",
        "99214": "Longer, with commas",
    }


def test_load_cpt_descriptors_errors_name_the_line():
    with pytest.raises(ValueError, match="line 2"):
        cpt.load_cpt_descriptors("99213,ok\nXYZ,bad")
    with pytest.raises(ValueError, match="line 1: code 99213 has no descriptor"):
        cpt.load_cpt_descriptors("99213,")


def test_parse_hcpcs_fixed_width_with_continuations():
    codes = cpt.hcpcs_sample()
    assert codes["J3301"].short_description == "Triamcinolone acet inj nos"
    assert codes["J7620"].long_description.endswith(
        "administered through dme"
    )  # joined continuation
    assert codes["RT"].kind == "modifier"
    assert cpt.label("G0008") == "Admin influenza virus vac"


def test_parse_hcpcs_csv_variant_and_errors():
    text = 'HCPC,SEQNUM,RECID,LONG DESCRIPTION,SHORT DESCRIPTION\nJ1100,00100,3,"Injection, dexamethasone",Dexameth\n'
    assert cpt.parse_hcpcs_quarterly(text)["J1100"].long_description == "Injection, dexamethasone"
    with pytest.raises(ValueError, match="line 1: unknown record id"):
        cpt.parse_hcpcs_quarterly("J1100000109Injection")
    with pytest.raises(ValueError, match="line 1: continuation of J1100"):
        cpt.parse_hcpcs_quarterly("J110000200" + "4" + "more text".ljust(80))


def test_code_shapes():
    assert cpt.system_of("99213") == "cpt" and cpt.system_of("0001F") == "cpt"
    assert cpt.system_of("J3301") == "hcpcs" and cpt.system_of("X1") is None
