"""Staff move money in and out from the admin: the users list shows balances, bank
transfers are confirmed with one click or by pasting the statement, withdrawals are paid
with their transfer references or rejected; each once, through the ledger."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.models import User
from accounts.services import account_create
from billing.models import LedgerTransaction, TopUp, Withdrawal
from billing.services import topup, wallet_balance
from billing.topups import topup_create
from billing.withdrawals import withdrawal_request
from tests.factories import make_buyer

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("staff@example.com", "pw"))
    return client


def withdrawal_of(amount: int) -> Withdrawal:
    reseller = account_create(email=f"r{amount}@example.com", is_reseller=True).user
    topup(user=reseller, amount=amount)
    return withdrawal_request(
        reseller=reseller,
        amount=amount,
        method="bank",
        account_name="Budi Santoso",
        account_number="1234567890",
        bank_or_wallet="BCA",
    )


def test_the_users_list_shows_each_balance(staff: Client) -> None:
    make_buyer(balance=1_250_000)
    html = staff.get(reverse("admin:accounts_user_changelist")).content.decode()
    assert "Rp 1,250,000" in html


def test_a_bank_transfer_is_confirmed_with_one_click_once(staff: Client) -> None:
    buyer = make_buyer()
    pending = topup_create(user=buyer.user, amount=50_000, provider="manual")
    changelist = reverse("admin:billing_topup_changelist")
    for _ in range(2):
        staff.post(changelist, {"action": "confirm", ACTION_CHECKBOX_NAME: [pending.pk]})
    assert wallet_balance(buyer.user) == pending.payable
    assert LedgerTransaction.objects.filter(reference=f"topup:{pending.pk}").count() == 1


def test_pasting_the_bank_statement_confirms_the_matching_transfers(staff: Client) -> None:
    first, second = make_buyer(), make_buyer()
    one = topup_create(user=first.user, amount=100_000, provider="manual")
    two = topup_create(user=second.user, amount=250_000, provider="manual")
    amount = f"{one.payable:,}".replace(",", ".")
    statement = (
        f"05/12 TRSF E-BANKING CR 0512/FTSCY/WS95051 {amount},00 BUDI SANTOSO\n"
        "05/12 BIAYA ADM 15.000,00\n"
    )
    page = reverse("admin:billing_topup_statement")
    assert staff.get(page).status_code == 200
    answer = staff.post(page, {"statement": statement}, follow=True)
    assert f"Credited 1 top-ups: #{one.pk}" in answer.content.decode()
    staff.post(page, {"statement": statement})  # pasted again: nothing more
    assert wallet_balance(first.user) == one.payable
    assert TopUp.objects.get(pk=two.pk).status == TopUp.Status.PENDING


def test_staff_pay_a_withdrawal_with_its_reference_and_the_reseller_is_emailed(
    staff: Client, django_capture_on_commit_callbacks: object
) -> None:
    withdrawal = withdrawal_of(60_000)
    changelist = reverse("admin:billing_withdrawal_changelist")
    form = staff.post(changelist, {"action": "pay", ACTION_CHECKBOX_NAME: [withdrawal.pk]})
    assert b"Rp 60,000" in form.content and b"BCA 1234567890" in form.content
    missing = {"action": "pay", "apply": "1", ACTION_CHECKBOX_NAME: [withdrawal.pk]}
    assert b"needs its transfer reference" in staff.post(changelist, missing, follow=True).content
    assert Withdrawal.objects.get(pk=withdrawal.pk).status == Withdrawal.Status.PENDING
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        staff.post(changelist, {**missing, f"reference_{withdrawal.pk}": "BCA-0512-77"})
    paid = Withdrawal.objects.get(pk=withdrawal.pk)
    assert (paid.status, paid.transfer_reference) == (Withdrawal.Status.PAID, "BCA-0512-77")
    assert LedgerTransaction.objects.filter(reference=f"withdrawal:{paid.pk}:paid").count() == 1
    assert [m.subject for m in mail.outbox] == ["ZeroTP: your withdrawal of Rp 60,000 is paid"]


def test_staff_reject_a_withdrawal_and_the_money_goes_back(staff: Client) -> None:
    withdrawal = withdrawal_of(75_000)
    assert wallet_balance(withdrawal.reseller) == 0
    changelist = reverse("admin:billing_withdrawal_changelist")
    body = {"action": "reject", "apply": "1", ACTION_CHECKBOX_NAME: [withdrawal.pk]}
    staff.post(changelist, {**body, "note": "The account name does not match."})
    staff.post(changelist, {**body, "note": "again"})
    rejected = Withdrawal.objects.get(pk=withdrawal.pk)
    assert (rejected.status, rejected.note) == (
        Withdrawal.Status.REJECTED,
        "The account name does not match.",
    )
    assert wallet_balance(withdrawal.reseller) == 75_000
