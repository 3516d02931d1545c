"""Phone-number normalisation (docs/API.md, "Phone numbers"): digits with the country code and
no `+`; a leading `0` is a national number of Indonesia; 5 to 15 digits. Pure logic, no
database."""

from typing import Any

import pytest

from modems.phone import PhoneNumberError, normalize_phone

VALID = [
    # The seed's own short example: phonenumbers would read it as national, 62628111.
    ("628111", "628111"),
    ("628111234567", "628111234567"),
    ("+62 811-1234-567", "628111234567"),
    ("+628111234567", "628111234567"),
    ("0811 1234 567", "628111234567"),
    ("08111234567", "628111234567"),
    ("(0811) 1234.567", "628111234567"),
    ("[0811] 1234-567", "628111234567"),
    ("00628111234567", "628111234567"),
    ("0062 811 1234 567", "628111234567"),
    ("  628111234567  ", "628111234567"),
    ("+1 (415) 555-0100", "14155550100"),  # another country code is kept as it is
    ("12345", "12345"),  # 5 digits: the shortest accepted
    ("123456789012345", "123456789012345"),  # 15 digits: the longest accepted
]

INVALID: list[Any] = [
    "abc",
    "62811abc",
    "62811-1234-56x",
    "12",  # too short
    "1234",  # 4 digits: still too short
    "1234567890123456",  # 16 digits
    "62811123456789012",  # 17 digits
    "",
    "   ",
    "+",
    "00",
    "++628111",
    "628 111 #1",
    "٦٢٨١١١٢٣٤",  # Arabic-Indic digits
    "６２８１１１２３４",  # full-width digits
    "628111²",  # a superscript digit
    "628111\x00",
    None,
    628111,
    ["628111"],
]


@pytest.mark.parametrize(("raw", "expected"), VALID)
def test_valid_number_is_normalised_to_digits_with_country_code(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize("raw", INVALID, ids=repr)
def test_anything_that_is_not_a_phone_number_is_refused(raw: Any) -> None:
    with pytest.raises(PhoneNumberError):
        normalize_phone(raw)


def test_the_seed_short_number_is_not_read_as_a_national_number() -> None:
    assert normalize_phone("628111") != "62628111"
    assert normalize_phone("628111") == "628111"


def test_normalising_twice_gives_the_same_number() -> None:
    for raw, expected in VALID:
        assert normalize_phone(normalize_phone(raw)) == expected


def test_phone_number_error_is_a_value_error() -> None:
    assert issubclass(PhoneNumberError, ValueError)
