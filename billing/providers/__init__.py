"""Payment providers: each a small adapter behind one interface (`Provider`), enabled by
the PAYMENT_PROVIDERS setting. The top-up services (billing/topups.py) call them; they
never touch the ledger."""

from typing import Protocol
from urllib.parse import urlsplit

from django.conf import settings

from billing.models import TopUp
from billing.providers import manual, midtrans


class Provider(Protocol):
    name: str
    # A bank transfer is matched by its exact amount: the top-up asks for the amount plus
    # a 3-digit suffix no other pending top-up has.
    unique_amount: bool

    def hours(self) -> int:
        """How long a top-up may wait for its payment."""
        ...

    def start(self, topup: TopUp) -> str:
        """Open the payment with the provider; the page the buyer pays on ("": none)."""
        ...


_ALL: dict[str, Provider] = {"manual": manual.Manual(), "midtrans": midtrans.Midtrans()}


def enabled() -> dict[str, Provider]:
    return {name: _ALL[name] for name in settings.PAYMENT_PROVIDERS}


def payment_page_origins() -> list[str]:
    """The origins of the enabled providers' payment pages, which the top-up form is
    redirected to (the page's CSP form-action must allow them)."""
    if "midtrans" not in settings.PAYMENT_PROVIDERS:
        return []
    snap = urlsplit(settings.MIDTRANS_SNAP_URL)
    return [f"{snap.scheme}://{snap.netloc}"]
