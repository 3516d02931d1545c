"""Money as Indonesians write it: Rp 3.500 (dots group thousands, no decimals). Pages use
it through the `rupiah` template filters; messages and emails call it directly."""


def _grouped(amount: int) -> str:
    return f"{abs(amount):,}".replace(",", ".")


def rupiah(amount: int | str | None) -> str:
    """3500 -> "Rp 3.500"; -3500 -> "-Rp 3.500"; None -> "–"."""
    if amount is None or amount == "":
        return "–"
    amount = int(amount)
    return f"{'-' if amount < 0 else ''}Rp {_grouped(amount)}"


def rupiah_signed(amount: int | str | None) -> str:
    """A ledger movement: "+Rp 3.500" or "-Rp 3.500"."""
    if amount is None or amount == "":
        return "–"
    amount = int(amount)
    return f"{'-' if amount < 0 else '+'}Rp {_grouped(amount)}"
