import pytest

from shared.npi import is_valid_npi


@pytest.mark.parametrize("npi", ["1234567893", "1245319599", "1003000126", "2000000002"])
def test_valid_npis_pass_the_luhn_check_with_80840_prefix(npi):
    assert is_valid_npi(npi) is True


@pytest.mark.parametrize(
    "npi",
    [
        "1234567890",  # wrong check digit
        "1234567894",
        "3234567893",  # must start with 1 or 2
        "123456789",  # too short
        "12345678931",  # too long
        "12345678A3",
        "",
        " 1234567893",
    ],
)
def test_invalid_npis_fail(npi):
    assert is_valid_npi(npi) is False


def test_non_string_is_invalid():
    assert is_valid_npi(1234567893) is False  # type: ignore[arg-type]
