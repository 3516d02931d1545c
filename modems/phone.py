"""Phone numbers as the contract writes them: digits with the country code, no `+`."""

import re

import phonenumbers

DEFAULT_REGION = "ID"
_DROPPED = re.compile(r"[\s\-.()\[\]]")


class PhoneNumberError(ValueError):
    pass


def normalize_phone(raw: str, region: str = DEFAULT_REGION) -> str:
    """`+62 811-123` -> `62811123`; `0811...` -> `62811...`; 5 to 15 digits, else an error.

    Digits that already carry a country code are kept as they are: phonenumbers would read
    the seed's short `628111` as a national number and give `62628111`.
    """
    if not isinstance(raw, str):
        raise PhoneNumberError("A phone number must be a string of digits.")
    cleaned = _DROPPED.sub("", raw)
    if cleaned.startswith("+"):
        cleaned = cleaned[1:]
    if not cleaned.isascii() or not cleaned.isdigit():
        raise PhoneNumberError(f"{raw!r} is not a phone number: digits only, with country code.")
    if cleaned.startswith("00"):
        cleaned = cleaned[2:]
    elif cleaned.startswith("0"):
        try:
            parsed = phonenumbers.parse(cleaned, region)
        except phonenumbers.NumberParseException:
            raise PhoneNumberError(f"{raw!r} is not a phone number.") from None
        cleaned = f"{parsed.country_code}{parsed.national_number}"
    if not 5 <= len(cleaned) <= 15:
        raise PhoneNumberError(f"{raw!r} is not a phone number: it must have 5 to 15 digits.")
    return cleaned
