"""The money pages: the buyer's top-up (the dashboard's button, amounts and ways to pay, a
bank transfer's exact amount), the reseller's withdrawals, and the staff's finance page
with its ledger export."""

import pytest
from django.test import Client
from django.urls import reverse

from billing.models import TopUp, Withdrawal
from billing.services import topup, wallet_balance
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
    assert "Rp 100,000" in page and 'value="manual"' in page
    answer = buyer_client.post(reverse("topup"), {"amount": "100000", "provider": "manual"})
    topup = TopUp.objects.get(user=buyer_account.user)
    assert answer["Location"] == reverse("topup-detail", args=[topup.pk])
    html = buyer_client.get(answer["Location"]).content.decode()
    assert f'<code id="topup-payable">{topup.payable}</code>' in html
    assert "BCA 1234567890 PT ZeroTP" in html
    topup_pay(topup_id=topup.pk)
    paid = buyer_client.get(answer["Location"]).content.decode()
    amount = f"{topup.payable:,}"  # English pages group with commas
    assert f"Rp {amount} was added to your balance." in paid


def test_an_amount_out_of_bounds_is_refused_in_rupiah(buyer_client: Client) -> None:
    answer = buyer_client.post(reverse("topup"), {"amount": "500", "provider": "manual"})
    assert answer.status_code == 200
    assert "A top-up is Rp 10,000 to Rp 10,000,000." in answer.content.decode()
    assert not TopUp.objects.exists()


def test_someone_elses_top_up_is_not_found(buyer_client: Client, buyer_account: Account) -> None:

    theirs = topup_create(user=make_buyer().user, amount=20_000, provider="manual")
    assert buyer_client.get(reverse("topup-detail", args=[theirs.pk])).status_code == 404


def test_a_reseller_requests_a_withdrawal_from_the_page(
    reseller_client: Client, reseller_account: Account
) -> None:
    topup(user=reseller_account.user, amount=80_000)
    page = reverse("withdrawals")
    assert "Rp 80,000" in reseller_client.get(page).content.decode()
    body = {
        "amount": "60000",
        "method": "ewallet",
        "bank_or_wallet": "DANA",
        "account_number": "081234567890",
        "account_name": "Budi Santoso",
    }
    done = reseller_client.post(page, body, follow=True).content.decode()
    assert "Withdrawal #" in done and "of Rp 60,000 requested" in done
    assert wallet_balance(reseller_account.user) == 20_000
    refused = reseller_client.post(page, body).content.decode()
    assert "Your balance is below Rp 60,000" in refused
    assert Withdrawal.objects.filter(reseller=reseller_account.user).count() == 1


def test_a_buyer_is_sent_to_become_a_reseller_first(buyer_client: Client) -> None:
    answer = buyer_client.get(reverse("withdrawals"))
    assert answer.status_code == 302 and answer["Location"] == reverse("reseller")


def test_staff_see_the_finance_figures_and_export_the_ledger(
    staff_client: Client, buyer_account: Account
) -> None:
    pending = topup_create(user=buyer_account.user, amount=40_000, provider="manual")
    topup_pay(topup_id=pending.pk)
    html = staff_client.get(reverse("finance")).content.decode()
    amount = f"{pending.payable:,}"
    assert f'<span class="value" id="topped-up-today">Rp {amount}</span>' in html
    csv_answer = staff_client.get(reverse("finance-ledger-csv"))
    assert csv_answer["Content-Type"] == "text/csv; charset=utf-8"
    lines = b"".join(csv_answer.streaming_content).decode().splitlines()
    assert lines[0] == "time,reference,kind,account,email,amount,memo"
    credited = [line for line in lines if f"topup:{pending.pk}," in line]
    assert len(credited) == 2  # the wallet's entry and the external source's
    assert any(f",wallet,{buyer_account.email},{pending.payable}," in line for line in credited)
    assert staff_client.get(reverse("finance-ledger-csv"), {"from": "yesterday"}).status_code == 400


def test_the_finance_page_is_for_staff_only(buyer_client: Client) -> None:
    assert buyer_client.get(reverse("finance")).status_code == 403
    assert buyer_client.get(reverse("finance-ledger-csv")).status_code == 403


def test_the_money_pages_and_their_messages_speak_indonesian(
    buyer_client: Client, buyer_account: Account
) -> None:
    buyer_client.post(reverse("set_language"), {"language": "id", "next": "/topup/"})
    refused = buyer_client.post(reverse("topup"), {"amount": "500", "provider": "manual"})
    assert "Isi saldo antara Rp 10.000 dan Rp 10.000.000." in refused.content.decode()
    buyer_client.post(reverse("topup"), {"amount": "20000", "provider": "manual"})
    listed = buyer_client.get(reverse("topup")).content.decode()
    assert "Menunggu pembayaran" in listed and "Transfer bank" in listed
