"""The numbers pages (issue 19): a reseller sees how each of their numbers delivers per
application and which rest and why; staff see the same across resellers."""

import re
from typing import Any

import pytest
from django.urls import reverse

from orders.models import Order
from orders.services import numbers_rest, order_cancel, order_create, sms_receive
from tests.factories import ApplicationFactory, ModemFactory, make_agent, make_buyer
from tests.web.conftest import Account, Shoot, logged_in

pytestmark = pytest.mark.django_db


def _history(reseller: Account) -> tuple[str, str]:
    """Two numbers of the reseller: one delivered Telegram and failed WhatsApp three times
    in a row (resting from it), one never ordered; and a number of another reseller."""
    buyer = make_buyer(balance=100_000)
    whatsapp = ApplicationFactory(name="WhatsApp")
    telegram = ApplicationFactory(name="Telegram")
    burnt = ModemFactory(reseller=reseller.user, uid="SIM-A")
    ModemFactory(reseller=reseller.user, uid="SIM-B", online=False)
    ModemFactory(reseller=make_agent().user, uid="SIM-OTHER", online=False)
    for _ in range(3):
        placed = order_create(buyer=buyer.user, application_id=whatsapp.pk).order
        order_cancel(buyer=buyer.user, order_id=placed.pk)
    order_create(buyer=buyer.user, application_id=telegram.pk)
    sms_receive(reseller=reseller.user, uid=burnt.uid, sender="Telegram", text="Code 55555")
    numbers_rest()
    assert Order.objects.filter(modem=burnt).count() == 4
    return burnt.phone_number, whatsapp.name


def _row(html: str, number: str) -> str:
    found = re.search(rf'<tr data-number="{number}">(.*?)</tr>', html, re.S)
    assert found, f"no row for {number}"
    return found.group(1)


def test_a_reseller_sees_each_numbers_record_and_why_it_rests(reseller_account: Account) -> None:
    burnt, whatsapp = _history(reseller_account)
    client = logged_in(reseller_account)

    html = client.get(reverse("reseller-numbers")).content.decode()

    row = _row(html, burnt)
    assert "1 of 4 got a code (25%)" in row
    assert re.search(rf"{whatsapp}: resting until .* \(3 failed in a row\)", row)
    assert "Telegram 1/1" in row
    assert "SIM-B" in html and "no orders yet" in html
    assert "SIM-OTHER" not in html  # another reseller's

    resting = client.get(reverse("reseller-numbers"), {"resting": "1"}).content.decode()
    assert burnt in resting and "SIM-B" not in resting


def test_staff_see_every_resellers_numbers_and_others_are_sent_away(
    reseller_account: Account, staff_account: Account, buyer_account: Account
) -> None:
    burnt, _ = _history(reseller_account)

    html = logged_in(staff_account).get(reverse("staff-numbers")).content.decode()
    assert "SIM-OTHER" in html and reseller_account.email in _row(html, burnt)

    assert logged_in(reseller_account).get(reverse("staff-numbers")).status_code == 403
    buyer = logged_in(buyer_account)
    assert buyer.get(reverse("reseller-numbers")).url == reverse("reseller")


def test_the_reseller_numbers_page_in_a_browser(
    page: Any, live_server: Any, reseller_account: Account, log_in: Any, shoot: Shoot
) -> None:
    from playwright.sync_api import expect

    burnt, whatsapp = _history(reseller_account)
    log_in(page, reseller_account)
    page.goto(f"{live_server.url}{reverse('reseller')}")
    page.get_by_role("link", name="Your numbers").click()

    row = page.locator(f'tr[data-number="{burnt}"]')
    expect(row.locator(f'[data-resting="{whatsapp}"]')).to_contain_text("3 failed in a row")
    expect(row).to_contain_text("1 of 4 got a code (25%)")
    shoot(page, "60-reseller-numbers")
    page.get_by_role("link", name="Resting").click()
    expect(page.locator("tr[data-number]")).to_have_count(1)
