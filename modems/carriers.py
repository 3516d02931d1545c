"""Mobile carriers by the names the sms-activate protocol gives them (its `operator`
parameter: `telkomsel`, `indosat`, ...), read from the operator name a modem reports
(AT+COPS: "TELKOMSEL", "INDOSAT OOREDOO", "3", "by.U")."""

import re
from functools import lru_cache

# The carrier a name's words point to, first match wins: Indosat's full name contains
# Hutchison, which also owns 3; by.U and Axis are brands of Telkomsel and XL, sold apart.
_BRANDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("byu", ("byu",)),
    ("indosat", ("indosat", "im3", "ooredoo", "mentari")),
    ("telkomsel", ("telkomsel", "tsel", "simpati", "kartuas")),
    ("axis", ("axis",)),
    ("xl", ("xl", "xlaxiata", "xlsmart")),
    ("smartfren", ("smartfren", "smart")),
    ("three", ("3", "tri", "three", "hutchison")),
)
CARRIER_MAX_LENGTH = 32


# A sync names each of its thousand modems' operators, and a pool has a handful of them.
@lru_cache(maxsize=256)
def carrier_of(provider: str) -> str:
    """The carrier's protocol name; an unknown operator keeps its own name in that form
    (lower-case letters and digits); no name, no carrier ("")."""
    words = re.findall(r"[a-z0-9]+", provider.lower())
    joined = "".join(words)
    for carrier, brands in _BRANDS:
        if any(brand in words or (len(brand) > 3 and brand in joined) for brand in brands):
            return carrier
    return joined[:CARRIER_MAX_LENGTH]
