"""Staff tooling: every model in admin, the ledger read-only, the money and catalogue actions."""

import re
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client
from django.urls import reverse
from django.utils import translation

from accounts.models import User
from billing.models import BalanceAdjustment, LedgerAccount, LedgerEntry, LedgerTransaction
from billing.services import wallet_balance
from modems.models import InboundSms, Modem
from orders.models import Application, CallbackDelivery, IdempotencyKey, Order
from orders.representation import new_order_json
from orders.services import Idempotency, order_create, sms_receive
from tests.factories import ApplicationFactory, ModemFactory, make_agent, make_buyer

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("staff@example.com", "pw"))
    return client


@pytest.fixture
def some_of_everything() -> None:
    app = ApplicationFactory(sender_patterns="\\bwhatsapp\\b")
    agent = make_agent()
    modem = ModemFactory(reseller=agent.user)
    buyer = make_buyer(balance=10_000)
    User.objects.filter(pk=buyer.user.pk).update(callback_url="https://hooks.example.com/otp")
    buyer.user.refresh_from_db()
    order_create(
        buyer=buyer.user, application_id=app.pk, idempotency=Idempotency("k1", new_order_json)
    )
    sms_receive(reseller=agent.user, uid=modem.uid, sender="WhatsApp", text="Code 123456")


MODELS = [
    CallbackDelivery,
    User,
    LedgerAccount,
    LedgerTransaction,
    LedgerEntry,
    Modem,
    InboundSms,
    Application,
    Order,
    IdempotencyKey,
]


@pytest.mark.usefixtures("some_of_everything")
@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_model_has_a_working_list_and_detail_page(staff: Client, model: type) -> None:
    meta = model._meta
    listing = staff.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
    assert listing.status_code == 200
    obj = model.objects.first()
    detail = staff.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk]))
    assert detail.status_code == 200


@pytest.mark.usefixtures("some_of_everything")
@pytest.mark.parametrize("model", [LedgerAccount, LedgerTransaction, LedgerEntry])
def test_the_ledger_is_read_only(staff: Client, model: type) -> None:
    meta = model._meta
    assert staff.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_add")).status_code == 403
    obj = model.objects.first()
    url = reverse(f"admin:{meta.app_label}_{meta.model_name}_delete", args=[obj.pk])
    assert staff.post(url, {"post": "yes"}).status_code == 403
    assert model.objects.filter(pk=obj.pk).exists()


@pytest.fixture
def staff_in_indonesian(staff: Client) -> Iterator[Client]:
    staff.cookies[settings.LANGUAGE_COOKIE_NAME] = "id"
    yield staff
    translation.activate(settings.LANGUAGE_CODE)  # the requests left Indonesian active


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.mark.usefixtures("some_of_everything")
def test_the_admin_lists_and_forms_name_the_fields_in_indonesian(
    staff_in_indonesian: Client,
) -> None:
    orders = staff_in_indonesian.get(reverse("admin:orders_order_changelist")).content.decode()
    table = orders[orders.index('id="result_list"') :]
    headers = text_of(table[: table.index("</thead>")])
    for header in ("Pembeli", "Nomor telepon", "Harga", "Kode OTP", "Dibuat pada"):
        assert header in headers
    for english in ("Buyer", "Phone number", "Price", "Otp code", "Created at", "Expires at"):
        assert english not in text_of(orders)

    accounts = staff_in_indonesian.get(reverse("admin:billing_ledgeraccount_changelist"))
    listed = text_of(accounts.content.decode())
    assert "Jenis" in listed and "Dompet pengguna" in listed and "dompet " in listed
    assert "wallet of" not in listed and "User wallet" not in listed

    modem = Modem.objects.get()
    form = staff_in_indonesian.get(reverse("admin:modems_modem_change", args=[modem.pk]))
    labels = text_of(form.content.decode())
    assert "Nomor telepon" in labels and "Nama modem menurut agen, mis. COM3." in labels
    assert "Phone number" not in labels and "The agent's name" not in labels


def test_the_job_queue_admin_names_its_fields_in_indonesian(staff_in_indonesian: Client) -> None:
    # django-q2 marks its names for translation; locale/id gives them (zerotp/apps.py).
    schedules = staff_in_indonesian.get(reverse("admin:django_q_schedule_changelist"))
    html = schedules.content.decode()
    table = html[html.index('id="result_list"') :]
    headers = text_of(table[: table.index("</thead>")])
    assert "Fungsi" in headers and "Jenis jadwal" in headers and "Jalan berikutnya" in headers
    assert "Function" not in headers and "Schedule Type" not in headers


def test_staff_adjust_a_balance_with_a_note_through_the_ledger(staff: Client) -> None:
    buyer = make_buyer()
    page = staff.get(reverse("admin:accounts_user_change", args=[buyer.user.pk])).content
    url = reverse("admin:billing_user_adjust", args=[buyer.user.pk])
    assert url.encode() in page and b"Rp 0" in page

    without_note = staff.post(url, {"amount": "15000", "note": ""})
    assert without_note.status_code == 200 and wallet_balance(buyer.user) == 0

    done = staff.post(url, {"amount": "15000", "note": "bank transfer 05/12"})
    assert done.status_code == 302
    assert wallet_balance(buyer.user) == 15_000
    adjustment = BalanceAdjustment.objects.get(user=buyer.user)
    booked = LedgerTransaction.objects.get(reference=f"adjustment:{adjustment.pk}")
    assert (booked.kind, booked.memo) == ("adjustment", "bank transfer 05/12")
    assert adjustment.staff is not None and adjustment.staff.email == "staff@example.com"


def test_a_debit_never_takes_a_balance_below_zero(staff: Client) -> None:
    buyer = make_buyer(balance=10_000)
    url = reverse("admin:billing_user_adjust", args=[buyer.user.pk])
    refused = staff.post(url, {"amount": "-15000", "note": "chargeback"})
    assert b"cannot go below zero" in refused.content
    staff.post(url, {"amount": "-4000", "note": "refund by bank"})
    assert wallet_balance(buyer.user) == 6_000
    assert BalanceAdjustment.objects.filter(user=buyer.user).count() == 1


def test_staff_disable_a_modem_and_it_is_no_longer_stock(staff: Client) -> None:
    app = ApplicationFactory()
    modem = ModemFactory(reseller=make_agent().user)
    url = reverse("admin:modems_modem_changelist")

    staff.post(url, {"action": "disable", ACTION_CHECKBOX_NAME: [modem.pk]})

    modem.refresh_from_db()
    assert modem.disabled
    stock = staff.get("/api/v1/services").json()
    assert [s["stock"] for s in stock if s["id"] == app.pk] == [0]


def test_staff_disable_an_application_and_it_leaves_the_catalogue(staff: Client) -> None:
    app = ApplicationFactory()
    url = reverse("admin:orders_application_changelist")

    staff.post(url, {"action": "disable", ACTION_CHECKBOX_NAME: [app.pk]})

    assert not Application.objects.get(pk=app.pk).enabled
    assert app.pk not in [s["id"] for s in staff.get("/api/v1/services").json()]
