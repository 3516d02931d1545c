"""Money in and out in a real browser (Debian's chromium, Playwright, the live server): a
new buyer tops up through a sandbox-shaped Midtrans on 127.0.0.1 and orders with it; a
reseller requests a withdrawal and staff pay it in the admin."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from billing.models import LedgerTransaction, TopUp, Withdrawal
from billing.services import topup, wallet_balance
from orders.models import Application, Order
from tests.billing.midtrans_fake import SERVER_KEY, FakeMidtrans, running_midtrans
from tests.factories import make_agent
from tests.web.conftest import Account, Shoot, make_account
from tests.web.test_browser import modem_online

pytestmark = pytest.mark.django_db(transaction=True)

LogIn = Callable[[Page, Account], None]


@pytest.fixture
def sandbox(live_server: Any, settings: Any) -> Iterator[FakeMidtrans]:
    with running_midtrans() as fake:
        fake.serve_pages(live_server.url)
        settings.PAYMENT_PROVIDERS = ["manual", "midtrans"]
        settings.MIDTRANS_SERVER_KEY = SERVER_KEY
        settings.MIDTRANS_SNAP_URL = fake.url
        settings.MIDTRANS_API_URL = fake.url
        yield fake


def test_a_new_buyer_tops_up_through_midtrans_and_orders(
    page: Page,
    live_server: Any,
    sandbox: FakeMidtrans,
    whatsapp: Application,
    log_in: LogIn,
    shoot: Shoot,
) -> None:
    agent = make_agent()
    modem_online(live_server, agent.key, "COM7", "628111230007")
    buyer = make_account("sari@example.com")
    log_in(page, buyer)
    expect(page.locator("#balance")).to_have_text("Rp 0")

    page.get_by_role("link", name="Top up", exact=True).click()
    page.get_by_role("button", name="Rp 50,000").click()
    expect(page.get_by_label("Amount (rupiah)")).to_have_value("50000")
    page.get_by_label("QRIS, virtual account or e-wallet (Midtrans, credited at once)").check()
    shoot(page, "30-topup-form")
    page.get_by_role("button", name="Continue to payment").click()

    expect(page.get_by_role("heading", name="Pay Rp 50.000")).to_be_visible()  # Midtrans's page
    page.get_by_role("button", name="Pay with QRIS").click()

    expect(page.get_by_text("Rp 50,000 was added to your balance.")).to_be_visible()
    expect(page.locator("#topup-status")).to_have_text("Paid")
    shoot(page, "31-topup-paid")
    topup_row = TopUp.objects.get(user=buyer.user)
    assert LedgerTransaction.objects.filter(reference=f"topup:{topup_row.pk}").count() == 1

    page.get_by_role("link", name="Dashboard", exact=True).click()
    expect(page.locator("#balance")).to_have_text("Rp 50,000")
    page.locator("label.app", has_text="WhatsApp").click()
    page.locator("label.offer", has_text="Normal").click()
    page.get_by_role("button", name="Buy a number").click()
    expect(page.locator("article.order [data-number]")).to_have_text("628111230007")
    expect(page.locator("#balance")).to_have_text("Rp 46,500")
    assert Order.objects.get(buyer=buyer.user).price == 3500


def test_a_reseller_withdraws_and_staff_pay_it(
    new_context: Callable[..., Any],
    live_server: Any,
    staff_account: Account,
    log_in: LogIn,
    shoot: Shoot,
) -> None:
    reseller = make_account("pool@example.com", reseller=True)
    topup(user=reseller.user, amount=120_000, note="earnings")
    page = new_context().new_page()
    log_in(page, reseller)
    page.goto(f"{live_server.url}/reseller/")
    page.get_by_role("link", name="Withdraw").click()
    page.get_by_label("Amount (rupiah)").fill("100000")
    page.get_by_role("radio", name="E-wallet").check()
    page.get_by_label("Bank or e-wallet (BCA, Mandiri, DANA, OVO, ...)").fill("DANA")
    page.get_by_label("Account or phone number").fill("081234567890")
    page.get_by_label("Name on the account").fill("Budi Santoso")
    page.get_by_role("button", name="Request the withdrawal").click()
    expect(page.get_by_text("of Rp 100,000 requested")).to_be_visible()
    expect(page.locator("#balance")).to_have_text("Rp 20,000")
    shoot(page, "32-withdrawal-requested")

    staff = new_context().new_page()
    log_in(staff, staff_account)
    staff.goto(f"{live_server.url}/admin/billing/withdrawal/")
    withdrawal = Withdrawal.objects.get()
    staff.locator(f"input[name='_selected_action'][value='{withdrawal.pk}']").check()
    staff.locator("select[name='action']").select_option("pay")
    staff.get_by_role("button", name="Run").click()
    staff.get_by_label("Transfer reference for pool@example.com").fill("DANA-0512-0042")
    shoot(staff, "33-staff-pay-withdrawal")
    staff.get_by_role("button", name="Mark paid").click()
    expect(staff.get_by_text("Marked 1 withdrawals paid")).to_be_visible()

    page.reload()
    expect(page.locator(".badge", has_text="Paid")).to_be_visible()
    expect(page.get_by_text("DANA-0512-0042")).to_be_visible()
    shoot(page, "34-withdrawal-paid")
    assert wallet_balance(reseller.user) == 20_000
    assert Withdrawal.objects.get().status == Withdrawal.Status.PAID
