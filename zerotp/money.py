"""Money as the reader's language writes it: Rp 3.500 in Indonesian, Rp 3,500 in English
(no decimals). The one place amounts become text: pages use it through the `rupiah`
template filters; messages, error messages and emails call it directly."""

from django.utils import translation

# The thousands separator of each language of the site (settings.LANGUAGES).
_SEPARATORS = {"id": "."}


def _grouped(amount: int) -> str:
    language = (translation.get_language() or "en").split("-")[0]
    return f"{abs(amount):,}".replace(",", _SEPARATORS.get(language, ","))


def rupiah(amount: int | str | None) -> str:
    """3500 -> "Rp 3,500" (English) or "Rp 3.500" (Indonesian); -3500 -> "-Rp 3,500";
    None -> "–"."""
    if amount is None or amount == "":
        return "–"
    amount = int(amount)
    return f"{'-' if amount < 0 else ''}Rp {_grouped(amount)}"


def rupiah_signed(amount: int | str | None) -> str:
    """A ledger movement: "+Rp 3,500" or "-Rp 3,500"."""
    if amount is None or amount == "":
        return "–"
    amount = int(amount)
    return f"{'-' if amount < 0 else '+'}Rp {_grouped(amount)}"
