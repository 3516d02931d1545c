"""The dashboard pages through Django's test client: who may see what, form errors, the
htmx fragments, and that every action goes through the services (the money checks run
after each test, as everywhere)."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import translation

from accounts.forms import AdminLoginForm
from accounts.models import ApiKey, User
from billing.services import topup, wallet_balance
from modems.models import InboundSms, Modem
from orders.models import Application, Order, OrderStatus
from orders.services import order_create, sms_receive
from tests.factories import ApplicationFactory, ModemFactory, make_agent
from tests.web.conftest import PASSWORD, Account, logged_in, make_account
from zerotp.money import rupiah, rupiah_signed

pytestmark = pytest.mark.django_db

BUYER_PAGES = [
    "dashboard",
    "order-history",
    "transactions",
    "account-api",
    "reseller",
    "active-orders",
    "operator-choices",
    "password_change",
]
RESELLER_PAGES = ["reseller", "reseller-modems", "reseller-sms"]
POST_ONLY = [
    ("order-cancel", [1]),
    ("order-finish", [1]),
    ("account-api-key", []),
    ("account-callback", []),
    ("account-callback-secret", []),
    ("account-callback-test", []),
    ("account-callback-resend", [1]),
    ("reseller-enable", []),
    ("reseller-key", []),
]


@pytest.fixture(autouse=True)
def _fresh_login_counts() -> None:
    cache.clear()  # login failures are counted in the cache, which outlives a test


# --- Who sees what ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["landing", "login", "signup", "password_reset"])
def test_public_pages_answer_anonymous_visitors(name: str) -> None:
    assert Client().get(reverse(name)).status_code == 200


@pytest.mark.parametrize(
    "name", [*BUYER_PAGES, "reseller-modems", "reseller-sms", "staff-overview"]
)
def test_private_pages_send_anonymous_visitors_to_log_in(name: str) -> None:
    url = reverse(name)
    response = Client().get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


@pytest.mark.parametrize(("name", "args"), POST_ONLY)
def test_actions_send_anonymous_visitors_to_log_in_and_change_nothing(
    name: str, args: list[int]
) -> None:
    response = Client().post(reverse(name, args=args))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(("name", "args"), POST_ONLY)
def test_actions_refuse_get(buyer_client: Client, name: str, args: list[int]) -> None:
    assert buyer_client.get(reverse(name, args=args)).status_code == 405


def test_an_expired_session_sends_an_htmx_poll_to_the_log_in_page() -> None:
    response = Client().get(
        reverse("active-orders"),
        headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/dashboard/"},
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == f"{reverse('login')}?next=/dashboard/"


@pytest.mark.parametrize("name", BUYER_PAGES)
def test_every_buyer_page_answers_its_buyer(
    buyer_client: Client, whatsapp: Application, name: str
) -> None:
    assert buyer_client.get(reverse(name)).status_code == 200


@pytest.mark.parametrize("name", RESELLER_PAGES)
def test_every_reseller_page_answers_its_reseller(reseller_client: Client, name: str) -> None:
    assert reseller_client.get(reverse(name)).status_code == 200


@pytest.mark.parametrize("name", ["reseller-modems", "reseller-sms"])
def test_reseller_pages_send_a_buyer_to_become_a_reseller(buyer_client: Client, name: str) -> None:
    response = buyer_client.get(reverse(name))
    assert response.status_code == 302 and response["Location"] == reverse("reseller")


def test_staff_overview_is_for_staff_only(buyer_client: Client, staff_client: Client) -> None:
    assert buyer_client.get(reverse("staff-overview")).status_code == 403
    assert staff_client.get(reverse("staff-overview")).status_code == 200


def test_navigation_links_staff_to_the_admin(buyer_client: Client, staff_client: Client) -> None:
    admin = f'href="{reverse("admin:index")}"'.encode()
    assert admin in staff_client.get(reverse("dashboard")).content
    assert admin not in buyer_client.get(reverse("dashboard")).content


def test_staff_overview_counts_today(staff_client: Client, whatsapp: Application) -> None:
    agent = make_agent()
    modem = ModemFactory(reseller=agent.user)
    ModemFactory(reseller=agent.user, last_heartbeat_at=None)
    buyer = make_account("b@example.com", balance=10_000)
    order_create(buyer=buyer.user, application_id=whatsapp.pk)
    sms_receive(reseller=agent.user, uid=modem.uid, sender="WhatsApp", text="Code 123456")
    page = staff_client.get(reverse("staff-overview"))
    overview = page.context["overview"]
    assert overview.orders_today == 1 and overview.completed_today == 1
    assert overview.revenue_today == 3500 - 3500 * 70 // 100
    assert (overview.modems_online, overview.modems_total) == (1, 2)
    assert b"Rp 1,050" in page.content


# --- Sign-up, log-in, passwords ----------------------------------------------------------


def test_sign_up_creates_the_account_without_an_api_key_and_logs_in() -> None:
    client = Client()
    response = client.post(
        reverse("signup"),
        {"email": "New@Example.com", "password1": PASSWORD, "password2": PASSWORD},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == reverse("dashboard")
    user = User.objects.get(email="new@example.com")
    assert response.context["user"] == user
    # No key nobody saw: the API page creates the first one and shows it.
    assert not ApiKey.objects.filter(user=user, kind="api").exists()
    assert b"Welcome to ZeroTP" in response.content and b"Rp 0" in response.content


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"email": "x", "password1": PASSWORD, "password2": PASSWORD}, "email", "valid email"),
        (
            {"email": "a@example.com", "password1": PASSWORD, "password2": "other"},
            "password2",
            "differ",
        ),
        (
            {"email": "a@example.com", "password1": "123", "password2": "123"},
            "password1",
            "too short",
        ),
        (
            {"email": "taken@example.com", "password1": PASSWORD, "password2": PASSWORD},
            "email",
            "already exists",
        ),
    ],
)
def test_sign_up_shows_what_is_wrong(data: dict, field: str, message: str) -> None:
    make_account("taken@example.com")
    response = Client().post(reverse("signup"), data)
    assert response.status_code == 200
    errors = " ".join(response.context["form"].errors[field])
    assert message in errors
    assert message.encode() in response.content
    assert User.objects.count() == 1


def test_log_in_takes_the_email_in_any_case(buyer_account: Account) -> None:
    response = Client().post(
        reverse("login"), {"username": "BUYER@example.com", "password": PASSWORD}
    )
    assert response.status_code == 302 and response["Location"] == reverse("dashboard")


def test_a_wrong_password_is_a_clear_error(buyer_account: Account) -> None:
    response = Client().post(
        reverse("login"), {"username": buyer_account.email, "password": "wrong"}
    )
    assert response.status_code == 200
    assert b"do not match an account" in response.content


def test_log_in_is_throttled_after_five_failures_for_that_email_and_address(
    buyer_account: Account, settings: object
) -> None:
    client = Client(REMOTE_ADDR="10.0.0.1")
    for _ in range(5):
        client.post(reverse("login"), {"username": buyer_account.email, "password": "wrong"})
    right = {"username": buyer_account.email, "password": PASSWORD}
    refused = client.post(reverse("login"), right)
    assert refused.status_code == 200 and b"Too many failed log-ins" in refused.content
    assert b"15 minutes" in refused.content
    # Another address is not held back by someone else's failures.
    assert Client(REMOTE_ADDR="10.0.0.2").post(reverse("login"), right).status_code == 302
    # The count lives in the shared cache: once it is gone the right password works again.
    cache.clear()
    assert client.post(reverse("login"), right).status_code == 302


def test_a_successful_log_in_clears_the_failures(buyer_account: Account) -> None:
    client = Client()
    wrong = {"username": buyer_account.email, "password": "wrong"}
    right = {"username": buyer_account.email, "password": PASSWORD}
    for _ in range(4):
        client.post(reverse("login"), wrong)
    assert client.post(reverse("login"), right).status_code == 302
    client.post(reverse("logout"))
    for _ in range(4):
        client.post(reverse("login"), wrong)
    assert client.post(reverse("login"), right).status_code == 302


def test_the_admin_log_in_form_has_the_same_throttle(staff_account: Account, rf: object) -> None:
    request = rf.post("/admin/login/", REMOTE_ADDR="10.0.0.9")
    data = {"username": staff_account.email, "password": "wrong"}
    for _ in range(5):
        assert not AdminLoginForm(request, data=data).is_valid()
    form = AdminLoginForm(request, data={**data, "password": PASSWORD})
    assert not form.is_valid() and "Too many failed log-ins" in str(form.errors)


def test_log_out_is_a_post(buyer_client: Client) -> None:
    response = buyer_client.post(reverse("logout"))
    assert response.status_code == 302 and response["Location"] == reverse("landing")
    assert buyer_client.get(reverse("dashboard")).status_code == 302


def test_password_reset_mails_a_link_that_sets_a_new_password(buyer_account: Account) -> None:
    client = Client()
    sent = client.post(reverse("password_reset"), {"email": "Buyer@Example.com"})
    assert sent.status_code == 302 and sent["Location"] == reverse("password_reset_done")
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [buyer_account.email]
    link = re.search(r"http://testserver(/password/reset/\S+/)", mail.outbox[0].body).group(1)
    form = client.get(link, follow=True)
    assert b"Choose a new password" in form.content
    done = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "a brand new secret", "new_password2": "a brand new secret"},
    )
    assert done.status_code == 302 and done["Location"] == reverse("password_reset_complete")
    assert Client().login(email=buyer_account.email, password="a brand new secret")


def test_password_reset_for_an_unknown_email_says_nothing_more(db: None) -> None:
    response = Client().post(reverse("password_reset"), {"email": "nobody@example.com"})
    assert response.status_code == 302 and not mail.outbox


def test_password_change_shows_errors_then_changes_it(buyer_client: Client) -> None:
    url = reverse("password_change")
    wrong = buyer_client.post(
        url, {"old_password": "nope", "new_password1": "x1", "new_password2": "x2"}
    )
    assert wrong.status_code == 200
    assert set(wrong.context["form"].errors) == {"old_password", "new_password2"}
    ok = buyer_client.post(
        url,
        {
            "old_password": PASSWORD,
            "new_password1": "another secret 9",
            "new_password2": "another secret 9",
        },
    )
    assert ok.status_code == 302 and ok["Location"] == reverse("password_change_done")


# --- Buyer dashboard ------------------------------------------------------------------------


def _order_form(client: Client, application: Application, operator: str = "normal") -> dict:
    token = client.get(reverse("dashboard")).context["form"]["token"].value()
    return {"application": application.pk, "operator": operator, "token": token}


def test_the_order_form_shows_price_and_stock_per_operator(
    buyer_client: Client, whatsapp: Application, online_modem: Modem
) -> None:
    page = buyer_client.get(reverse("dashboard")).content.decode()
    assert "Rp 3,500" in page and "1 in stock" in page
    assert "Rp 2,500" in page and "out of stock" in page  # promo: no modem serves it
    assert "Rp 10,000" in page  # the balance


def test_the_operator_choices_fragment_follows_the_application(
    buyer_client: Client, whatsapp: Application
) -> None:
    from tests.factories import ApplicationFactory

    telegram = ApplicationFactory(name="Telegram", prices={"special": 8000})
    fragment = buyer_client.get(
        reverse("operator-choices"),
        {"application": telegram.pk, "operator": "normal"},
        headers={"HX-Request": "true"},
    )
    assert fragment.status_code == 200
    html = fragment.content.decode()
    assert "<html" not in html and "Rp 8,000" in html and "Rp 3,500" not in html
    assert 'value="special" checked' in html  # the only operator it has


def test_ordering_holds_the_price_and_shows_the_number(
    buyer_client: Client, buyer_account: Account, whatsapp: Application, online_modem: Modem
) -> None:
    response = buyer_client.post(
        reverse("dashboard"), _order_form(buyer_client, whatsapp), follow=True
    )
    order = Order.objects.get()
    assert (order.buyer, order.status, order.price) == (buyer_account.user, "pending", 3500)
    assert wallet_balance(buyer_account.user) == 6500
    html = response.content.decode()
    assert f"Order #{order.pk}: your number is 628111234567" in html
    assert f'id="order-{order.pk}"' in html and "Waiting for the SMS" in html


def test_a_double_submitted_order_form_orders_once(
    buyer_client: Client, buyer_account: Account, whatsapp: Application, online_modem: Modem
) -> None:
    ModemFactory(reseller=online_modem.reseller)
    form = _order_form(buyer_client, whatsapp)
    buyer_client.post(reverse("dashboard"), form)
    buyer_client.post(reverse("dashboard"), form)
    assert Order.objects.count() == 1 and wallet_balance(buyer_account.user) == 6500


def test_out_of_stock_is_refused_with_the_services_message(
    buyer_client: Client, buyer_account: Account, whatsapp: Application
) -> None:
    response = buyer_client.post(reverse("dashboard"), _order_form(buyer_client, whatsapp))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Out of stock." in html and "No normal number is available for WhatsApp" in html
    assert not Order.objects.exists() and wallet_balance(buyer_account.user) == 10_000


def test_a_short_balance_is_refused_with_both_amounts(
    whatsapp: Application, online_modem: Modem
) -> None:
    poor = logged_in(make_account("poor@example.com", balance=1000))
    response = poor.post(reverse("dashboard"), _order_form(poor, whatsapp))
    html = response.content.decode()
    assert "Not enough balance: top up first." in html
    assert "Your balance is Rp 1,000; the price is Rp 3,500." in html
    assert not Order.objects.exists()


def test_the_order_form_shows_field_errors(buyer_client: Client, whatsapp: Application) -> None:
    response = buyer_client.post(
        reverse("dashboard"), {"application": "999", "operator": "gold", "token": "x"}
    )
    errors = response.context["form"].errors
    assert set(errors) == {"application", "operator", "token"}
    assert b"Select a valid choice" in response.content


def test_the_active_orders_fragment_shows_the_code_and_the_balance(
    buyer_client: Client, buyer_account: Account, whatsapp: Application, online_modem: Modem
) -> None:
    created = order_create(buyer=buyer_account.user, application_id=whatsapp.pk)
    sms_receive(
        reseller=online_modem.reseller,
        uid=online_modem.uid,
        sender="WhatsApp",
        text="Your WhatsApp code is 123-456",
    )
    fragment = buyer_client.get(reverse("active-orders"), headers={"HX-Request": "true"})
    html = fragment.content.decode()
    assert "<html" not in html
    assert 'hx-trigger="every 2s"' in html
    assert f'id="order-{created.order.pk}"' in html
    assert "data-otp>123456</span>" in html and "Your WhatsApp code is 123-456" in html
    assert 'id="balance" hx-swap-oob="true">Rp 6,500<' in html
    assert "Cancel and refund" not in html and ">Finish<" in html  # the API's rules


def test_cancel_refunds_and_repeating_it_is_harmless(
    buyer_client: Client, buyer_account: Account, whatsapp: Application, online_modem: Modem
) -> None:
    order_id = order_create(buyer=buyer_account.user, application_id=whatsapp.pk).order.pk
    url = reverse("order-cancel", args=[order_id])
    response = buyer_client.post(url, follow=True)
    assert (
        f"Order #{order_id} cancelled: Rp 3,500 is back in your balance."
        in response.content.decode()
    )
    buyer_client.post(url)
    assert wallet_balance(buyer_account.user) == 10_000
    assert Order.objects.get().status == OrderStatus.CANCELLED


def test_cancel_after_the_sms_is_refused_with_the_services_message(
    buyer_client: Client, buyer_account: Account, whatsapp: Application, online_modem: Modem
) -> None:
    order_id = order_create(buyer=buyer_account.user, application_id=whatsapp.pk).order.pk
    sms_receive(
        reseller=online_modem.reseller, uid=online_modem.uid, sender="WhatsApp", text="Code 123456"
    )
    response = buyer_client.post(reverse("order-cancel", args=[order_id]), follow=True)
    assert "An SMS has already arrived for this order" in response.content.decode()
    finished = buyer_client.post(reverse("order-finish", args=[order_id]), follow=True)
    assert f"Order #{order_id} finished." in finished.content.decode()
    assert Order.objects.get().status == OrderStatus.FINISHED


def test_another_buyers_order_is_not_found(
    buyer_client: Client, whatsapp: Application, online_modem: Modem
) -> None:
    other = make_account("other@example.com", balance=5000)
    order_id = order_create(buyer=other.user, application_id=whatsapp.pk).order.pk
    response = buyer_client.post(reverse("order-cancel", args=[order_id]), follow=True)
    assert f"There is no order {order_id}." in response.content.decode()
    assert Order.objects.get().status == OrderStatus.PENDING


def test_cancel_goes_back_to_a_safe_next_page_only(
    buyer_client: Client, buyer_account: Account, whatsapp: Application, online_modem: Modem
) -> None:
    order_id = order_create(buyer=buyer_account.user, application_id=whatsapp.pk).order.pk
    url = reverse("order-cancel", args=[order_id])
    assert buyer_client.post(url, {"next": "https://evil.example/"})["Location"] == reverse(
        "dashboard"
    )
    assert buyer_client.post(url, {"next": "/orders/"})["Location"] == "/orders/"


def test_history_filters_by_status_and_pages(
    buyer_client: Client, buyer_account: Account, whatsapp: Application
) -> None:
    topup(user=buyer_account.user, amount=10_000)
    agent = make_agent()
    for _ in range(3):
        ModemFactory(reseller=agent.user)
    ids = [
        order_create(buyer=buyer_account.user, application_id=whatsapp.pk).order.pk
        for _ in range(3)
    ]
    buyer_client.post(reverse("order-cancel", args=[ids[0]]))
    cancelled = buyer_client.get(reverse("order-history"), {"status": "cancelled"})
    assert [o.pk for o in cancelled.context["page"].object_list] == [ids[0]]
    waiting = buyer_client.get(reverse("order-history"), {"status": "pending"})
    assert [o.pk for o in waiting.context["page"].object_list] == [ids[2], ids[1]]
    everything = buyer_client.get(reverse("order-history"), {"status": "nonsense"})
    assert len(everything.context["page"].object_list) == 3
    assert b"Waiting for SMS" in waiting.content


def test_history_pages_by_twenty(
    buyer_client: Client, buyer_account: Account, whatsapp: Application, settings: object
) -> None:
    settings.SCAN_GUARD = False  # 21 orders without an SMS would look like number scanning
    topup(user=buyer_account.user, amount=100_000)
    agent = make_agent()
    for _ in range(21):
        ModemFactory(reseller=agent.user)
        order_create(buyer=buyer_account.user, application_id=whatsapp.pk)
        Order.objects.filter(status="pending").update(status="cancelled")  # free the modem
    first = buyer_client.get(reverse("order-history"))
    assert len(first.context["page"].object_list) == 20 and b'rel="next"' in first.content
    second = buyer_client.get(reverse("order-history"), {"page": 2})
    assert len(second.context["page"].object_list) == 1


def test_transactions_list_the_wallets_entries_with_the_balance_after_each(
    buyer_client: Client, buyer_account: Account, whatsapp: Application, online_modem: Modem
) -> None:
    order_id = order_create(buyer=buyer_account.user, application_id=whatsapp.pk).order.pk
    buyer_client.post(reverse("order-cancel", args=[order_id]))
    response = buyer_client.get(reverse("transactions"))
    lines = response.context["lines"]
    assert [(line.kind, line.amount, line.balance_after) for line in lines] == [
        ("release", 3500, 10_000),
        ("hold", -3500, 6500),
        ("topup", 10_000, 10_000),
    ]
    assert lines[0].order_id == order_id
    html = response.content.decode()
    assert "+Rp 3,500" in html and "-Rp 3,500" in html and "Refund" in html


# --- API & Callback ------------------------------------------------------------------------------


def test_the_api_page_shows_the_key_masked_and_a_quickstart_with_this_servers_address(
    buyer_client: Client, buyer_account: Account
) -> None:
    html = buyer_client.get(reverse("account-api")).content.decode()
    record = ApiKey.objects.get(user=buyer_account.user, kind="api")
    assert record.masked in html and buyer_account.api_key not in html
    assert "BASE=http://testserver" in html and reverse("api-docs") in html


def test_the_api_page_gives_the_url_to_paste_into_an_sms_activate_client(
    buyer_client: Client, buyer_account: Account
) -> None:
    ApplicationFactory(name="WhatsApp", code="whatsapp", service_code="wa")
    ApplicationFactory(name="Off", code="off", service_code="of", enabled=False)
    html = buyer_client.get(reverse("account-api")).content.decode()
    assert ">http://testserver/stubs/handler_api.php</code>" in html
    assert "<li><code>wa</code> WhatsApp</li>" in html and "Off" not in html
    indonesian = buyer_client.get(reverse("account-api"), HTTP_ACCEPT_LANGUAGE="id")
    assert "Sudah punya bot sms-activate?" in indonesian.content.decode()


def test_regenerating_the_api_key_needs_the_tick_box(
    buyer_client: Client, buyer_account: Account
) -> None:
    response = buyer_client.post(reverse("account-api-key"))
    assert b"Tick the box to confirm." in response.content
    assert ApiKey.objects.filter(user=buyer_account.user).count() == 1


def test_regenerating_the_api_key_shows_the_new_one_once(
    buyer_client: Client, buyer_account: Account
) -> None:
    response = buyer_client.post(reverse("account-api-key"), {"confirm": "on"})
    new_key = response.context["new_key"]
    assert new_key.startswith("ztp_live_") and new_key in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    api = Client()
    assert api.get("/api/v1/balance", headers={"X-API-KEY": new_key}).status_code == 200
    assert (
        api.get("/api/v1/balance", headers={"X-API-KEY": buyer_account.api_key}).status_code == 401
    )
    again = buyer_client.get(reverse("account-api")).content.decode()
    assert new_key not in again and new_key[-4:] in again


def test_callback_settings_save(
    buyer_client: Client, buyer_account: Account, settings: object
) -> None:
    settings.CALLBACK_ALLOW_PRIVATE = True
    response = buyer_client.post(
        reverse("account-callback"),
        {"callback_url": "http://127.0.0.1:9/otp", "callback_enabled": "on"},
    )
    assert response.status_code == 302
    buyer_account.user.refresh_from_db()
    assert buyer_account.user.callback_url == "http://127.0.0.1:9/otp"
    assert buyer_account.user.callback_enabled


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:9/otp", "resolves to a private, loopback or reserved address"),
        ("ftp://example.com/otp", "must start with http:// or https://"),
        ("x" * 2001, "at most 2000 characters"),
    ],
)
def test_a_refused_callback_url_is_a_field_error_and_changes_nothing(
    buyer_client: Client, buyer_account: Account, url: str, message: str
) -> None:
    response = buyer_client.post(
        reverse("account-callback"), {"callback_url": url, "callback_enabled": "on"}
    )
    assert response.status_code == 200
    assert message in " ".join(response.context["callback_form"].errors["callback_url"])
    buyer_account.user.refresh_from_db()
    assert buyer_account.user.callback_url == ""


def test_rotating_the_secret_keeps_the_old_one_for_a_day(
    buyer_client: Client, buyer_account: Account
) -> None:
    old = buyer_account.user.callback_secret
    response = buyer_client.post(reverse("account-callback-secret"), follow=True)
    buyer_account.user.refresh_from_db()
    assert buyer_account.user.callback_secret != old
    assert buyer_account.user.callback_secret_previous == old
    assert b"The previous secret also signs until" in response.content


def test_the_test_callback_without_a_url_says_what_to_do(buyer_client: Client) -> None:
    fragment = buyer_client.post(reverse("account-callback-test"), headers={"HX-Request": "true"})
    assert b"Set a callback URL first." in fragment.content and b"<html" not in fragment.content
    page = buyer_client.post(reverse("account-callback-test"), follow=True)
    assert b"Set a callback URL first." in page.content


def test_resend_of_an_unknown_delivery_is_not_found(buyer_client: Client) -> None:
    response = buyer_client.post(reverse("account-callback-resend", args=[12345]), follow=True)
    assert b"There is no callback 12345." in response.content


# --- Reseller ------------------------------------------------------------------------------------


def test_becoming_a_reseller_needs_the_tick_box_then_shows_the_agent_key_once(
    buyer_client: Client, buyer_account: Account
) -> None:
    refused = buyer_client.post(reverse("reseller-enable"))
    assert b"Tick the box to confirm." in refused.content
    response = buyer_client.post(reverse("reseller-enable"), {"confirm": "on"})
    key = response.context["new_key"]
    assert key.startswith("ztp_agent_") and key in response.content.decode()
    buyer_account.user.refresh_from_db()
    assert buyer_account.user.is_reseller
    again = buyer_client.get(reverse("reseller")).content.decode()
    assert key not in again and key[-4:] in again
    sync = Client().post(
        "/api/modem/sync",
        {"modems": []},
        content_type="application/json",
        headers={"X-AGENT-KEY": key},
    )
    assert sync.status_code == 200


def test_regenerating_the_agent_key_replaces_it(
    reseller_client: Client, reseller_account: Account
) -> None:
    response = reseller_client.post(reverse("reseller-key"), {"confirm": "on"})
    key = response.context["new_key"]
    assert key != reseller_account.agent_key and key in response.content.decode()
    headers = {"X-AGENT-KEY": reseller_account.agent_key}
    old = Client().post(
        "/api/modem/sync", {"modems": []}, content_type="application/json", headers=headers
    )
    assert old.status_code == 401


def test_the_modems_fragment_shows_each_modem_with_its_orders_and_earnings(
    reseller_client: Client, reseller_account: Account, whatsapp: Application
) -> None:
    modem = ModemFactory(reseller=reseller_account.user, uid="COM7", signal=64)
    ModemFactory(reseller=reseller_account.user, uid="COM8", last_heartbeat_at=None)
    buyer = make_account("b@example.com", balance=10_000)
    order_create(buyer=buyer.user, application_id=whatsapp.pk)
    sms_receive(
        reseller=reseller_account.user, uid=modem.uid, sender="WhatsApp", text="Code 123456"
    )
    fragment = reseller_client.get(reverse("reseller-modems"), headers={"HX-Request": "true"})
    html = fragment.content.decode()
    assert "<html" not in html and 'hx-trigger="every 3s"' in html
    modems = {m.uid: m for m in fragment.context["modems"]}
    assert (modems["COM7"].orders_served, modems["COM7"].earned) == (1, 2450)
    assert (modems["COM8"].orders_served, modems["COM8"].earned) == (0, None)
    assert "Rp 2,450" in html and "64%" in html
    assert html.count('data-online="true"') == 1 and html.count('data-online="false"') == 1


def test_earnings_count_captures_of_today_7_and_30_days(
    reseller_client: Client, reseller_account: Account, whatsapp: Application
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from billing.models import LedgerTransaction

    modem = ModemFactory(reseller=reseller_account.user)
    buyer = make_account("b@example.com", balance=20_000)
    for text, days_ago in (("Code 111111", 0), ("Code 222222", 10)):
        order_create(buyer=buyer.user, application_id=whatsapp.pk)
        sms_receive(reseller=reseller_account.user, uid=modem.uid, sender="WhatsApp", text=text)
        Order.objects.filter(status="completed").update(status="finished")
        captured = LedgerTransaction.objects.filter(kind="capture").order_by("-id").first()
        LedgerTransaction.objects.filter(pk=captured.pk).update(
            created_at=timezone.now() - timedelta(days=days_ago)
        )
        # The used number may not serve WhatsApp twice: give the modem a fresh one.
        Modem.objects.filter(pk=modem.pk).update(phone_number=f"62899{days_ago:07d}")
    earnings = reseller_client.get(reverse("reseller")).context["earnings"]
    assert (earnings.today, earnings.last_7_days, earnings.last_30_days) == (2450, 2450, 4900)
    assert len(earnings.days) == 30 and earnings.days[-1].percent == 100


def test_the_sms_log_filters_matched_and_unmatched(
    reseller_client: Client, reseller_account: Account, whatsapp: Application
) -> None:
    modem = ModemFactory(reseller=reseller_account.user)
    buyer = make_account("b@example.com", balance=10_000)
    order_create(buyer=buyer.user, application_id=whatsapp.pk)
    sms_receive(
        reseller=reseller_account.user, uid=modem.uid, sender="WhatsApp", text="Code 123456"
    )
    sms_receive(
        reseller=reseller_account.user, uid=modem.uid, sender="Telkomsel", text="Kuota habis"
    )
    matched = reseller_client.get(reverse("reseller-sms"), {"matched": "yes"})
    unmatched = reseller_client.get(reverse("reseller-sms"), {"matched": "no"})
    everything = reseller_client.get(reverse("reseller-sms"))
    assert [s.sender for s in matched.context["page"].object_list] == ["WhatsApp"]
    assert [s.sender for s in unmatched.context["page"].object_list] == ["Telkomsel"]
    assert everything.context["page"].paginator.count == InboundSms.objects.count() == 2


# --- The agent download --------------------------------------------------------------------------


@pytest.fixture
def built_agent(tmp_path: Path, settings: object) -> bytes:
    """A stand-in for dist/zerotp-agent.pyz (`make agent`), wherever AGENT_PYZ points."""
    content = b"#!/usr/bin/env python3\nPK\x03\x04 not really an agent"
    settings.AGENT_PYZ = tmp_path / "zerotp-agent.pyz"
    settings.AGENT_PYZ.write_bytes(content)
    return content


@pytest.fixture
def no_agent(tmp_path: Path, settings: object) -> None:
    settings.AGENT_PYZ = tmp_path / "missing" / "zerotp-agent.pyz"


def test_a_reseller_sees_the_download_and_the_command_with_this_servers_address(
    reseller_client: Client, built_agent: bytes
) -> None:
    html = reseller_client.get(reverse("reseller")).content.decode()
    assert f'href="{reverse("agent-download")}"' in html
    assert "python zerotp-agent.pyz run --server http://testserver --agent-key ztp_agent_…" in html
    assert "python zerotp-agent.pyz status" in html and "Python 3.10" in html
    assert "--port COM3,phone=628...,mapping=normal" in html
    assert "make agent" not in html
    # The three endpoints stay below, folded, for people writing their own agent.
    details = html[html.index("<details>") : html.index("</details>")]
    assert "POST /api/modem/sync" in details and "BASE=http://testserver" in details


def test_the_command_carries_the_new_agent_key_while_it_is_shown(
    reseller_client: Client, built_agent: bytes
) -> None:
    response = reseller_client.post(reverse("reseller-key"), {"confirm": "on"})
    key = response.context["new_key"]
    html = response.content.decode()
    assert f"python zerotp-agent.pyz run --server http://testserver --agent-key {key}" in html
    assert "no-store" in response["Cache-Control"]


def test_the_download_serves_the_built_file(reseller_client: Client, built_agent: bytes) -> None:
    response = reseller_client.get(reverse("agent-download"))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == built_agent
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == 'attachment; filename="zerotp-agent.pyz"'
    assert reverse("agent-download") == "/reseller/agent/zerotp-agent.pyz"


def test_the_download_needs_a_log_in(built_agent: bytes) -> None:
    url = reverse("agent-download")
    response = Client().get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


def test_without_a_built_agent_the_page_and_the_download_say_to_run_make_agent(
    reseller_client: Client, no_agent: None
) -> None:
    html = reseller_client.get(reverse("reseller")).content.decode()
    assert f'href="{reverse("agent-download")}"' not in html
    assert "<code>make agent</code>" in html
    assert "--server http://testserver" in html  # the command is still there to read

    response = reseller_client.get(reverse("agent-download"))
    assert response.status_code == 404
    assert b"<code>make agent</code>" in response.content


def test_the_agent_guide_is_in_indonesian_too(reseller_client: Client, built_agent: bytes) -> None:
    reseller_client.post(reverse("set_language"), {"language": "id", "next": "/reseller/"})
    html = reseller_client.get(reverse("reseller")).content.decode()
    assert "Unduh zerotp-agent.pyz" in html and "Lihat modem Anda:" in html
    assert "--server http://testserver" in html


# --- Language and money ------------------------------------------------------------------------


def test_rupiah_is_written_the_way_of_the_active_language() -> None:
    with translation.override("id"):
        assert rupiah(3500) == "Rp 3.500"
        assert rupiah(1_250_000) == "Rp 1.250.000"
        assert rupiah(-3500) == "-Rp 3.500"
        assert (rupiah_signed(3500), rupiah_signed(-3500)) == ("+Rp 3.500", "-Rp 3.500")
    with translation.override("en"):
        assert rupiah(6500) == "Rp 6,500"
        assert rupiah(1_250_000) == "Rp 1,250,000"
        assert rupiah(-3500) == "-Rp 3,500"
        assert rupiah_signed(3500) == "+Rp 3,500"
    assert rupiah(0) == "Rp 0"
    assert rupiah(None) == "–"


def test_the_language_switcher_turns_the_pages_indonesian(buyer_client: Client) -> None:
    switched = buyer_client.post(reverse("set_language"), {"language": "id", "next": "/dashboard/"})
    assert switched.status_code == 302 and switched["Location"] == "/dashboard/"
    html = buyer_client.get(reverse("dashboard")).content.decode()
    assert '<html lang="id">' in html
    assert "Saldo Anda" in html and "Pesan nomor" in html and "Rp 10.000" in html


def test_an_indonesian_browser_gets_indonesian_pages(db: None) -> None:
    html = Client(headers={"Accept-Language": "id-ID,id;q=0.9"}).get(reverse("landing")).content
    assert b"Cara kerjanya" in html


def test_every_message_has_an_indonesian_translation() -> None:
    """The compiled catalogue is in the tree, matches its .po file and leaves nothing out."""
    po = Path(settings.BASE_DIR) / "locale" / "id" / "LC_MESSAGES" / "django.po"
    mo = po.with_suffix(".mo")
    assert mo.exists(), "run: .venv/bin/python manage.py compilemessages -l id"
    text = po.read_text()
    assert "#, fuzzy\nmsgid" not in text, "fuzzy entries are not used: translate them"
    untranslated = re.findall(r'\nmsgid "(.+)"\nmsgstr ""\n', text)
    assert not untranslated, f"untranslated: {untranslated[:5]}"
    if shutil.which("msgfmt"):
        compiled = subprocess.run(
            ["msgfmt", "--check", "-o", "-", str(po)], capture_output=True, check=True
        ).stdout
        assert compiled == mo.read_bytes(), "the .mo is stale: run compilemessages -l id"
