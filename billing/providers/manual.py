"""Bank transfer: the buyer sends the exact amount shown (with its unique 3-digit suffix)
to one of the operator's accounts (MANUAL_BANK_ACCOUNTS); staff confirm it in the admin."""

from django.conf import settings

from billing.models import TopUp


class Manual:
    name = "manual"
    unique_amount = True

    def hours(self) -> int:
        return settings.MANUAL_TOPUP_HOURS

    def start(self, topup: TopUp) -> str:
        return ""
