"""/metrics: off unless configured (404), then the business gauges exactly as the database
holds them, in a fixed number of queries however many rows there are."""

from datetime import timedelta
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from django_q.tasks import async_task
from prometheus_client.parser import text_string_to_metric_families

from modems.models import Modem
from orders.models import CallbackAttempt, CallbackDelivery, JobRun, Order, OrderStatus
from orders.services import order_cancel, order_create, sms_receive
from orders.tasks import expire_orders
from tests.factories import ApplicationFactory, Buyer, ModemFactory, make_agent, offline_since
from zerotp import metrics as metrics_module

pytestmark = pytest.mark.django_db

TOKEN = "s3cret-metrics-token-0123"
QUERIES_PER_SCRAPE = 8


@pytest.fixture
def scrape(settings: Any) -> Any:
    settings.METRICS_TOKEN = TOKEN

    def scrape() -> dict[tuple[str, tuple], float]:
        response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert response.status_code == 200, response.content
        assert response["Content-Type"].startswith("text/plain")
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.content.decode())
            for sample in family.samples
        }

    return scrape


def value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_metrics_are_off_unless_configured() -> None:
    assert Client().get("/metrics").status_code == 404
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer anything").status_code == 404


def test_a_token_opens_them_and_a_wrong_one_does_not(settings: Any) -> None:
    settings.METRICS_TOKEN = TOKEN

    assert Client().get("/metrics").status_code == 404
    assert Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}x").status_code == 404
    assert Client().get("/metrics", HTTP_AUTHORIZATION=TOKEN).status_code == 404
    assert Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


def test_an_allowed_network_opens_them_by_the_connecting_address_only(settings: Any) -> None:
    settings.METRICS_ALLOW = ["10.20.0.0/16", "2001:db8::/32"]

    assert Client(REMOTE_ADDR="10.20.3.4").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="2001:db8::7").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="::ffff:10.20.3.4").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="10.21.0.1").get("/metrics").status_code == 404
    # A header a client writes itself proves nothing.
    spoofed = Client(REMOTE_ADDR="203.0.113.9").get("/metrics", HTTP_X_FORWARDED_FOR="10.20.3.4")
    assert spoofed.status_code == 404


def test_with_both_set_a_scrape_needs_both(settings: Any) -> None:
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOW = ["10.20.0.0/16"]
    auth = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}

    assert Client(REMOTE_ADDR="10.20.3.4").get("/metrics", **auth).status_code == 200
    assert Client(REMOTE_ADDR="10.20.3.4").get("/metrics").status_code == 404
    assert Client(REMOTE_ADDR="192.0.2.1").get("/metrics", **auth).status_code == 404


def test_prometheus_asking_for_openmetrics_gets_it(settings: Any) -> None:
    settings.METRICS_TOKEN = TOKEN
    response = Client().get(
        "/metrics",
        HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
        HTTP_ACCEPT="application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
    )

    assert response["Content-Type"].startswith("application/openmetrics-text")
    text = response.content.decode()
    assert "# TYPE zerotp_time_to_otp_seconds gaugehistogram" in text
    assert text.endswith("# EOF\n")


@pytest.fixture
def marketplace(subscribed: Buyer) -> dict[str, Any]:
    """Orders in every state, modems on and off line, callbacks delivered, due and failed."""
    buyer = subscribed
    app = ApplicationFactory(prices={"normal": 3000, "promo": 2000})
    reseller = make_agent()
    for _ in range(3):
        ModemFactory(reseller=reseller.user)
    ModemFactory(reseller=reseller.user, mapping="promo")
    ModemFactory(reseller=reseller.user, last_heartbeat_at=offline_since(3600))
    now = timezone.now()

    def place() -> Order:
        created = order_create(buyer=buyer.user, application_id=app.pk)
        return Order.objects.get(pk=created.order.pk)

    answered = place()
    sms_receive(
        reseller=reseller.user,
        uid=answered.modem.uid,
        sender="WhatsApp",
        text="Your code is 123-456",
    )
    Order.objects.filter(pk=answered.pk).update(
        created_at=now - timedelta(seconds=100), completed_at=now - timedelta(seconds=88)
    )
    cancelled = place()
    order_cancel(buyer=buyer.user, order_id=cancelled.pk)
    # Placed before the window: counted as open or not, never as "last hour".
    Order.objects.filter(pk=cancelled.pk).update(created_at=now - timedelta(hours=2))
    expired = place()
    Order.objects.filter(pk=expired.pk).update(expires_at=now - timedelta(seconds=1))
    expire_orders()
    overdue = place()
    Order.objects.filter(pk=overdue.pk).update(expires_at=now - timedelta(seconds=30))
    place()  # waiting

    def delivery(webhook_id: str, **fields: Any) -> CallbackDelivery:
        return CallbackDelivery.objects.create(
            buyer=buyer.user, event="test", webhook_id=webhook_id, body="{}", **fields
        )

    failed = delivery("msg_failed", status=CallbackDelivery.Status.FAILED)
    CallbackAttempt.objects.create(delivery=failed, status_code=500)
    CallbackAttempt.objects.create(delivery=failed, error="connection refused")
    delivered = delivery("msg_ok", status=CallbackDelivery.Status.DELIVERED)
    CallbackAttempt.objects.create(delivery=delivered, status_code=204)
    delivery("msg_later", next_attempt_at=now + timedelta(minutes=5))
    async_task("orders.tasks.sweep_callbacks")
    return {"answered": answered}


def test_the_gauges_equal_what_the_database_holds(marketplace: dict[str, Any], scrape: Any) -> None:
    samples = scrape()
    now = timezone.now()

    for status in (OrderStatus.PENDING, OrderStatus.COMPLETED):
        count = Order.objects.filter(status=status).count()
        assert value(samples, "zerotp_orders_open", status=status) == count
    assert value(samples, "zerotp_orders_open", status="pending") == 2
    assert value(samples, "zerotp_orders_open", status="completed") == 1
    assert value(samples, "zerotp_orders_overdue") == 1

    hour_ago = now - timedelta(hours=1)
    for status in OrderStatus.values:
        count = Order.objects.filter(status=status, created_at__gte=hour_ago).count()
        assert value(samples, "zerotp_orders_last_hour", status=status) == count
    assert value(samples, "zerotp_orders_last_hour", status="cancelled") == 0  # 2 h old
    assert value(samples, "zerotp_orders_last_hour", status="expired") == 1

    # One order got its SMS 12 s after it was placed.
    assert value(samples, "zerotp_time_to_otp_seconds_bucket", le="10.0") == 0
    assert value(samples, "zerotp_time_to_otp_seconds_bucket", le="20.0") == 1
    assert value(samples, "zerotp_time_to_otp_seconds_bucket", le="+Inf") == 1
    assert value(samples, "zerotp_time_to_otp_seconds_gsum") == pytest.approx(12.0)

    for operator in ("normal", "promo", "special"):
        count = Modem.objects.online().filter(mapping=operator).count()
        assert value(samples, "zerotp_modems_online", operator=operator) == count
    assert value(samples, "zerotp_modems_online", operator="normal") == 3

    pending = CallbackDelivery.objects.filter(status="pending")
    assert value(samples, "zerotp_callbacks_pending") == pending.count() == 2
    due = pending.filter(next_attempt_at__lte=now)
    assert value(samples, "zerotp_callbacks_due") == due.count() == 1
    assert 0 <= value(samples, "zerotp_callbacks_oldest_due_seconds") < 60
    assert value(samples, "zerotp_callbacks_failed_last_hour") == 1
    assert value(samples, "zerotp_callback_attempts_last_hour", outcome="delivered") == 1
    assert value(samples, "zerotp_callback_attempts_last_hour", outcome="failed") == 2

    assert value(samples, "zerotp_job_queue_due") == 1  # the sweep queued above
    assert value(samples, "zerotp_expiry_sweep_age_seconds") < 60
    assert value(samples, "zerotp_ledger_check_age_seconds") == float("inf")  # never ran


def test_the_ledger_check_age_is_when_it_last_found_the_books_sound(
    marketplace: dict[str, Any], scrape: Any
) -> None:
    call_command("ledger_check")
    assert value(scrape(), "zerotp_ledger_check_age_seconds") < 60

    JobRun.objects.filter(name=JobRun.Job.LEDGER_CHECK).update(
        succeeded_at=timezone.now() - timedelta(days=2)
    )
    answered = marketplace["answered"]
    Order.objects.filter(pk=answered.pk).update(status=OrderStatus.PENDING)  # escrow now off
    with pytest.raises(CommandError):
        call_command("ledger_check")
    Order.objects.filter(pk=answered.pk).update(status=OrderStatus.COMPLETED)

    assert value(scrape(), "zerotp_ledger_check_age_seconds") > 2 * 86400 - 60


def test_a_scrape_costs_the_same_queries_with_more_rows(
    marketplace: dict[str, Any], scrape: Any, django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(QUERIES_PER_SCRAPE):
        scrape()
    ModemFactory.create_batch(20, reseller=make_agent().user)
    with django_assert_num_queries(QUERIES_PER_SCRAPE):
        scrape()


def test_the_last_hour_looks_only_at_the_newest_ids(
    marketplace: dict[str, Any], scrape: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bound that keeps a scrape cheap on a long history: rows below newest id minus
    WINDOW_ROWS are not read, whatever their time."""
    placed = Order.objects.filter(created_at__gte=timezone.now() - timedelta(hours=1))
    newest = Order.objects.order_by("-pk").first()
    assert placed.count() > 2
    monkeypatch.setattr(metrics_module, "WINDOW_ROWS", 2)

    samples = scrape()

    counted = sum(value(samples, "zerotp_orders_last_hour", status=s) for s in OrderStatus.values)
    assert counted == placed.filter(pk__gt=newest.pk - 2).count()
