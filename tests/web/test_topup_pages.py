"""The buyer's top-up pages: the dashboard's Top up button, amounts and ways to pay, a bank
transfer's instructions with the exact amount, and Midtrans's page for the other way."""

import pytest
from django.test import Client
from django.urls import reverse

from billing.models import TopUp
from billing.topups import topup_create, topup_pay
from tests.factories import make_buyer
from tests.web.conftest import Account

pytestmark = pytest.mark.django_db


def test_the_dashboard_has_a_top_up_button(buyer_client: Client) -> None:
    html = buyer_client.get(reverse("dashboard")).content.decode()
    assert f'href="{reverse("topup")}"' in html


def test_a_bank_transfer_shows_the_exact_amount_and_the_accounts(
    buyer_client: Client, buyer_account: Account, settings: object
) -> None:
    settings.MANUAL_BANK_ACCOUNTS = ["BCA 1234567890 PT ZeroTP"]  # type: ignore[attr-defined]
    page = buyer_client.get(reverse("topup")).content.decode()
    assert "Rp 100.000" in page and 'value="manual"' in page
    answer = buyer_client.post(reverse("topup"), {"amount": "100000", "provider": "manual"})
    topup = TopUp.objects.get(user=buyer_account.user)
    assert answer["Location"] == reverse("topup-detail", args=[topup.pk])
    html = buyer_client.get(answer["Location"]).content.decode()
    assert f'<code id="topup-payable">{topup.payable}</code>' in html
    assert "BCA 1234567890 PT ZeroTP" in html
    topup_pay(topup_id=topup.pk)
    paid = buyer_client.get(answer["Location"]).content.decode()
    amount = f"{topup.payable:,}".replace(",", ".")
    assert f"Rp {amount} was added to your balance." in paid


def test_an_amount_out_of_bounds_is_refused_in_rupiah(buyer_client: Client) -> None:
    answer = buyer_client.post(reverse("topup"), {"amount": "500", "provider": "manual"})
    assert answer.status_code == 200
    assert "A top-up is Rp 10.000 to Rp 10.000.000." in answer.content.decode()
    assert not TopUp.objects.exists()


def test_someone_elses_top_up_is_not_found(buyer_client: Client, buyer_account: Account) -> None:

    theirs = topup_create(user=make_buyer().user, amount=20_000, provider="manual")
    assert buyer_client.get(reverse("topup-detail", args=[theirs.pk])).status_code == 404
