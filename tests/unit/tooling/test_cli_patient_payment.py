"""`rcm patient-payment` / `rcm refund` refuse card numbers and bad amounts before sending
anything (the URL below answers nothing: a request would fail differently)."""

import pytest

from rcm.cli.main import main

URL = "http://127.0.0.1:9"  # discard port: nothing listens


@pytest.mark.parametrize(
    "argv",
    [
        ["patient-payment", "--method", "card", "--reference", "4111 1111 1111 1111"],
        ["patient-payment", "--method", "check", "--check-number", "5500000000000004"],
    ],
)
def test_a_card_number_is_refused_naming_the_option_not_the_value(argv, capsys):
    rc = main([*argv, "--account", "E1", "--amount", "5.00", "--url", URL])
    out = capsys.readouterr()
    assert rc == 2 and "card number" in out.err
    assert "4111" not in out.out + out.err and "5500" not in out.out + out.err


def test_a_refund_reference_that_is_a_card_number_is_refused(capsys):
    rc = main(["refund", "request", "--account", "E1", "--amount", "5.00", "--reason", "x",
               "--reference", "4111111111111111", "--url", URL])  # fmt: skip
    assert rc == 2 and "--reference" in capsys.readouterr().err


@pytest.mark.parametrize("amount", ["0", "-1.00", "1.005", "abc"])
def test_amounts_are_positive_with_two_decimals(amount, capsys):
    with pytest.raises(SystemExit) as e:
        main(["patient-payment", "--account", "E1", "--amount", amount, "--method", "cash",
              "--url", URL])  # fmt: skip
    assert e.value.code == 2 and "--amount" in capsys.readouterr().err
