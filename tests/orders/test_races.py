"""Concurrency guarantees, proven with real threads on PostgreSQL (skipped on SQLite,
where `select_for_update` does nothing and writers queue anyway).

Each thread has its own database connection, so every request is its own transaction,
exactly as under gunicorn. The autouse ledger check runs after each test."""

import random
import time
from collections import Counter
from typing import Any

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from billing.models import LedgerAccount, LedgerTransaction
from billing.services import wallet_balance
from modems.models import InboundSms
from orders import services
from orders.models import Order, OrderStatus
from orders.services import sms_receive
from tests.concurrency import run_at_once
from tests.factories import ApplicationFactory, ModemFactory, make_agent, make_buyer

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def post_order(key: str, body: dict, idempotency_key: str | None = None) -> tuple[int, dict]:
    headers = {"HTTP_X_API_KEY": key}
    if idempotency_key:
        headers["HTTP_IDEMPOTENCY_KEY"] = idempotency_key
    response = APIClient().post("/api/v1/orders", body, format="json", **headers)
    return response.status_code, response.json()


@override_settings(MAX_ACTIVE_ORDERS=100)
def test_fifty_concurrent_orders_against_a_balance_for_ten_give_exactly_ten() -> None:
    app = ApplicationFactory(prices={"normal": 1000})
    agent = make_agent()
    ModemFactory.create_batch(60, reseller=agent.user)
    buyer = make_buyer(balance=10_000)

    results = run_at_once([lambda: post_order(buyer.key, {"application_id": app.pk})] * 50)

    statuses = Counter(status for status, _ in results)
    assert statuses == {201: 10, 402: 40}
    assert wallet_balance(buyer.user) == 0
    assert Order.objects.filter(buyer=buyer.user).count() == 10
    modems = [body["phone_number"] for status, body in results if status == 201]
    assert len(set(modems)) == 10


def test_twenty_concurrent_orders_against_five_free_modems_give_five_distinct_modems() -> None:
    app = ApplicationFactory(prices={"normal": 2000})
    agent = make_agent()
    ModemFactory.create_batch(5, reseller=agent.user)
    buyers = [make_buyer(balance=10_000) for _ in range(20)]

    results = run_at_once(
        [lambda b=b: post_order(b.key, {"application_id": app.pk}) for b in buyers]
    )

    statuses = Counter(status for status, _ in results)
    assert statuses == {201: 5, 409: 15}
    assert {body["error"]["code"] for status, body in results if status == 409} == {"out_of_stock"}
    orders = Order.objects.filter(application=app)
    assert orders.count() == 5
    assert orders.values("modem").distinct().count() == 5
    # The losers were charged nothing.
    assert sorted(wallet_balance(b.user) for b in buyers) == [8_000] * 5 + [10_000] * 15


def test_one_buyer_racing_for_five_modems_also_gets_five_distinct_modems() -> None:
    app = ApplicationFactory(prices={"normal": 2000})
    agent = make_agent()
    ModemFactory.create_batch(5, reseller=agent.user)
    buyer = make_buyer(balance=100_000)

    results = run_at_once([lambda: post_order(buyer.key, {"application_id": app.pk})] * 20)

    assert Counter(status for status, _ in results) == {201: 5, 409: 15}
    assert Order.objects.values("modem").distinct().count() == 5
    assert wallet_balance(buyer.user) == 100_000 - 5 * 2000


@override_settings(MAX_ACTIVE_ORDERS=5)
def test_one_key_ordering_on_sixteen_connections_gets_exactly_the_active_order_limit() -> None:
    app = ApplicationFactory(prices={"normal": 1000})
    agent = make_agent()
    ModemFactory.create_batch(40, reseller=agent.user)
    buyer = make_buyer(balance=100_000)

    results = run_at_once([lambda: post_order(buyer.key, {"application_id": app.pk})] * 16)

    assert Counter(status for status, _ in results) == {201: 5, 429: 11}
    assert {body["error"]["code"] for status, body in results if status == 429} == {
        "too_many_active_orders"
    }
    assert wallet_balance(buyer.user) == 100_000 - 5 * 1000


@pytest.mark.one_statement(why="counts the orders the one-statement path left to the transaction")
@override_settings(MAX_ACTIVE_ORDERS=100)
def test_one_keys_concurrent_orders_all_take_the_one_statement_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The orders of one buyer queue on its wallet; each decides once it holds the lock,
    on a snapshot taken after it, so none is left to the slower transaction (which would
    hold the wallet across several round trips: the one-key convoy)."""
    app = ApplicationFactory(prices={"normal": 1000})
    agent = make_agent()
    ModemFactory.create_batch(40, reseller=agent.user)
    buyer = make_buyer(balance=100_000)
    transactions = Counter[str]()
    decide = services._order_context

    def counted(wanted: Any) -> Any:
        transactions["order"] += 1
        return decide(wanted)

    monkeypatch.setattr(services, "_order_context", counted)

    results = run_at_once([lambda: post_order(buyer.key, {"application_id": app.pk})] * 16)

    assert Counter(status for status, _ in results) == {201: 16}
    assert transactions["order"] == 0
    assert wallet_balance(buyer.user) == 100_000 - 16 * 1000


def test_cancel_racing_an_sms_ends_one_way_only_in_fifty_trials() -> None:
    app = ApplicationFactory(prices={"normal": 3000})
    agent = make_agent()
    modem = ModemFactory(reseller=agent.user)
    buyer = make_buyer(balance=50 * 3000)
    outcomes: Counter[str] = Counter()

    for trial in range(50):
        modem.phone_number = f"6281900{trial:05d}"  # a fresh number: used ones are not offered
        modem.save(update_fields=["phone_number"])
        status, body = post_order(buyer.key, {"application_id": app.pk})
        assert status == 201, body
        order_id = body["order_id"]

        # A jittered head start for one side or the other, so that both outcomes (and the
        # true photo finishes in between) occur.
        cancel_delay, sms_delay = (random.uniform(0, 0.006), 0.0)[:: 1 if trial % 2 else -1]

        def cancel(order_id: int = order_id, delay: float = cancel_delay) -> int:
            time.sleep(delay)
            client = APIClient()
            url = f"/api/v1/orders/{order_id}/cancel"
            return client.post(url, **buyer.headers).status_code

        def sms(trial: int = trial, delay: float = sms_delay) -> dict:
            time.sleep(delay)
            return sms_receive(
                reseller=agent.user, uid=modem.uid, sender="INFO", text=f"Your code is {trial:06d}"
            ).as_dict()

        cancel_status, sms_result = run_at_once([cancel, sms])
        order = Order.objects.get(pk=order_id)
        refunds = LedgerTransaction.objects.filter(reference=f"order:{order_id}:release").count()
        captures = LedgerTransaction.objects.filter(reference=f"order:{order_id}:capture").count()
        if order.status == OrderStatus.CANCELLED:
            assert (cancel_status, sms_result["matched"], refunds, captures) == (200, False, 1, 0)
        else:
            assert order.status == OrderStatus.COMPLETED
            assert (cancel_status, sms_result["matched"], refunds, captures) == (409, True, 0, 1)
            Order.objects.filter(pk=order_id).update(status=OrderStatus.FINISHED)
        outcomes[order.status] += 1

    assert sum(outcomes.values()) == 50
    assert set(outcomes) == {OrderStatus.CANCELLED, OrderStatus.COMPLETED}, outcomes
    escrow = LedgerAccount.objects.get(kind=LedgerAccount.Kind.ESCROW)
    assert escrow.balance == 0


def test_the_same_sms_posted_eight_times_at_once_credits_the_reseller_once() -> None:
    app = ApplicationFactory(prices={"normal": 5000})
    agent = make_agent()
    modem = ModemFactory(reseller=agent.user)
    buyer = make_buyer(balance=5000)
    status, body = post_order(buyer.key, {"application_id": app.pk})
    assert status == 201
    sms = {
        "uid": modem.uid,
        "phone_number": modem.phone_number,
        "from": "WhatsApp",
        "text": "Your code is 123-456",
    }

    def post_sms() -> tuple[int, dict]:
        response = APIClient().post("/api/modem/inbound-sms", sms, format="json", **agent.headers)
        return response.status_code, response.json()

    results = run_at_once([post_sms] * 8)

    expected = {"matched": True, "order_id": body["order_id"], "otp": "123456"}
    assert results == [(200, expected)] * 8
    assert InboundSms.objects.count() == 1
    assert wallet_balance(agent.user) == 3500
    assert LedgerTransaction.objects.filter(kind="capture").count() == 1


def test_the_same_message_id_posted_eight_times_at_once_is_stored_once() -> None:
    app = ApplicationFactory(prices={"normal": 5000})
    agent = make_agent()
    modem = ModemFactory(reseller=agent.user)
    buyer = make_buyer(balance=5000)
    post_order(buyer.key, {"application_id": app.pk})

    def post_sms(n: int) -> dict:
        body = {
            "uid": modem.uid,
            "from": "WhatsApp",
            "text": f"Your code is 12345{n}",
            "message_id": "agent-sms-1",
        }
        return (
            APIClient().post("/api/modem/inbound-sms", body, format="json", **agent.headers).json()
        )

    results = run_at_once([lambda n=n: post_sms(n) for n in range(8)])

    assert len({str(r) for r in results}) == 1
    assert InboundSms.objects.count() == 1
    assert LedgerTransaction.objects.filter(kind="capture").count() == 1


def test_concurrent_retries_of_one_idempotency_key_create_one_order() -> None:
    app = ApplicationFactory(prices={"normal": 2500})
    agent = make_agent()
    ModemFactory.create_batch(10, reseller=agent.user)
    buyer = make_buyer(balance=100_000)

    results = run_at_once(
        [lambda: post_order(buyer.key, {"application_id": app.pk}, "retry-me")] * 10
    )

    assert [status for status, _ in results] == [201] * 10
    assert len({body["order_id"] for _, body in results}) == 1
    assert Order.objects.count() == 1
    assert wallet_balance(buyer.user) == 100_000 - 2500


def test_concurrent_expiry_runs_refund_each_order_once() -> None:
    from datetime import timedelta

    from django.utils import timezone

    from orders.services import orders_expire

    app = ApplicationFactory(prices={"normal": 1000})
    agent = make_agent()
    ModemFactory.create_batch(20, reseller=agent.user)
    buyer = make_buyer(balance=20_000)
    for _ in range(20):
        assert post_order(buyer.key, {"application_id": app.pk})[0] == 201
    Order.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    counts = run_at_once([orders_expire] * 4)

    assert sum(counts) == 20
    assert Order.objects.filter(status=OrderStatus.EXPIRED).count() == 20
    assert LedgerTransaction.objects.filter(kind="release").count() == 20
    assert wallet_balance(buyer.user) == 20_000
