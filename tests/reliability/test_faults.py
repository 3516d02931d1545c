"""Faults: a worker killed in the middle of a money movement or a callback delivery, a
callback receiver down for an hour, and (opt-in) the database restarted under load.

A killed worker is simulated by raising a BaseException at the exact point of death:
nothing after it runs, and the transaction it was in is rolled back, which is what
PostgreSQL does with the transaction of a process that died. The callback cases extend
tests/orders/test_callbacks.py (which kills the worker between sending and recording)."""

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from django.utils import timezone

from accounts.services import callback_settings_update
from billing import services as billing
from billing.models import LedgerTransaction
from billing.services import reseller_share, wallet_balance
from modems.models import InboundSms, Modem
from orders import callbacks
from orders import services as order_services
from orders.callbacks import LEASE, callbacks_send_due
from orders.models import CallbackAttempt, CallbackDelivery, IdempotencyKey, Order, OrderStatus
from orders.representation import new_order_json
from orders.services import Idempotency, order_create, orders_expire, sms_receive
from tests.factories import Agent, ApplicationFactory, Buyer, ModemFactory, make_agent, make_buyer
from tests.orders.test_callbacks import match, verify
from tests.receiver import Receiver
from tests.reliability.conftest import assert_books_sound

PRICE = 4000
Status = CallbackDelivery.Status


class WorkerKilled(BaseException):
    """The process dies here: no handler runs, the open transaction is rolled back."""


def killed_after(real: Any, *, on_call: int = 1) -> Any:
    """`real`, except that its `on_call`-th call does its work and then the worker dies
    (before anything around it can commit)."""
    calls = 0

    def call(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        result = real(*args, **kwargs)
        if calls == on_call:
            raise WorkerKilled
        return result

    return call


def references(kind: str) -> list[str]:
    return sorted(LedgerTransaction.objects.filter(kind=kind).values_list("reference", flat=True))


# --- (a) killed in the middle of expiry, of an SMS match, of an order -----------------------


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_inside_a_refund_rolls_back_and_the_next_sweep_refunds_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = ApplicationFactory(prices={"normal": PRICE})
    agent = make_agent()
    ModemFactory.create_batch(5, reseller=agent.user)
    buyer = make_buyer(balance=5 * PRICE)
    ids = [order_create(buyer=buyer.user, application_id=app.pk).order.pk for _ in range(5)]
    for age, order_id in enumerate(reversed(ids), start=1):  # the sweep takes the oldest first
        Order.objects.filter(pk=order_id).update(expires_at=timezone.now() - timedelta(seconds=age))

    # The third refund books its ledger rows, then the worker dies before the commit.
    with monkeypatch.context() as patched:
        patched.setattr(billing, "release", killed_after(billing.release, on_call=3))
        with pytest.raises(WorkerKilled):
            orders_expire()

    statuses = dict(Order.objects.values_list("pk", "status"))
    assert [statuses[i] for i in ids] == ["expired", "expired", "pending", "pending", "pending"]
    assert references("release") == sorted(f"order:{i}:release" for i in ids[:2])
    assert wallet_balance(buyer.user) == 2 * PRICE  # two refunds committed, nothing else
    assert_books_sound()

    assert orders_expire() == 3  # the schedule runs again
    assert orders_expire() == 0

    assert set(Order.objects.values_list("status", flat=True)) == {OrderStatus.EXPIRED}
    assert references("release") == sorted(f"order:{i}:release" for i in ids)
    assert wallet_balance(buyer.user) == 5 * PRICE
    assert_books_sound()


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_after_the_capture_of_an_sms_leaves_no_trace_and_the_retry_pays_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = ApplicationFactory(prices={"normal": PRICE})
    agent = make_agent()
    modem = ModemFactory(reseller=agent.user)
    buyer = make_buyer(balance=PRICE)
    order_id = order_create(buyer=buyer.user, application_id=app.pk).order.pk
    sms = {"reseller": agent.user, "uid": modem.uid, "sender": "WhatsApp"}
    sms |= {"text": "Your code is 771-204", "message_id": "agent-42"}

    # The order is completed and the reseller paid, then the request dies.
    with monkeypatch.context() as patched:
        patched.setattr(
            order_services, "callback_enqueue", killed_after(order_services.callback_enqueue)
        )
        with pytest.raises(WorkerKilled):
            sms_receive(**sms)

    assert Order.objects.get(pk=order_id).status == OrderStatus.PENDING
    assert not InboundSms.objects.exists()
    assert references("capture") == []
    assert wallet_balance(agent.user) == 0
    assert_books_sound()

    # The agent got no answer, so it sends the SMS again (twice, for good measure).
    first, again = sms_receive(**sms), sms_receive(**sms)

    assert first == again
    assert first.as_dict() == {"matched": True, "order_id": order_id, "otp": "771204"}
    assert references("capture") == [f"order:{order_id}:capture"]
    assert wallet_balance(agent.user) == reseller_share(PRICE)
    assert InboundSms.objects.count() == 1
    assert_books_sound()


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_after_the_hold_leaves_no_trace_and_the_retry_charges_once() -> None:
    app = ApplicationFactory(prices={"normal": PRICE})
    agent = make_agent()
    ModemFactory(reseller=agent.user)
    buyer = make_buyer(balance=PRICE)
    create = {"buyer": buyer.user, "application_id": app.pk}
    dying = Idempotency("retry-7", killed_after(new_order_json))
    retried = Idempotency("retry-7", new_order_json)

    # The order row and its hold are written, then the request dies before the answer.
    with pytest.raises(WorkerKilled):
        order_create(**create, idempotency=dying)

    assert not Order.objects.exists()
    assert not IdempotencyKey.objects.exists()
    assert references("hold") == []
    assert wallet_balance(buyer.user) == PRICE

    first, replay = (order_create(**create, idempotency=retried) for _ in range(2))

    assert (first.replayed, replay.replayed) == (False, True)
    assert first.answer == replay.answer
    assert references("hold") == [f"order:{first.order.pk}:hold"]
    assert wallet_balance(buyer.user) == 0
    assert_books_sound()


# --- (b) killed in the middle of a callback delivery -------------------------------------------


@pytest.fixture
def modem(agent: Agent) -> Modem:
    return ModemFactory(reseller=agent.user)


@pytest.mark.django_db
def test_a_worker_killed_after_claiming_before_sending_sends_once_when_the_lease_ends(
    subscribed: Buyer,
    agent: Agent,
    modem: Modem,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    match(subscribed, agent, modem)
    t0 = timezone.now()

    with monkeypatch.context() as patched:
        patched.setattr(callbacks, "post_signed", killed_after(lambda **kwargs: None))
        with pytest.raises(WorkerKilled):
            callbacks_send_due(now=t0)

    assert receiver.requests == []
    delivery = CallbackDelivery.objects.get()
    assert (delivery.status, delivery.attempt_log.count()) == (Status.PENDING, 0)
    assert callbacks_send_due(now=t0 + LEASE - timedelta(seconds=1)) == 0  # still leased

    assert callbacks_send_due(now=t0 + LEASE) == 1
    assert callbacks_send_due(now=t0 + timedelta(days=2)) == 0

    assert receiver.webhook_ids == [delivery.webhook_id]
    verify(subscribed.user.callback_secret, receiver.requests[0])
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempt_log.count()) == (Status.DELIVERED, 1)


@pytest.mark.django_db
def test_a_worker_killed_while_recording_the_attempt_leaves_no_half_written_log(
    subscribed: Buyer,
    agent: Agent,
    modem: Modem,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    match(subscribed, agent, modem)
    t0 = timezone.now()

    # The attempt row is inserted, then the worker dies before the delivery is updated.
    with monkeypatch.context() as patched:
        patched.setattr(
            CallbackAttempt.objects, "create", killed_after(CallbackAttempt.objects.create)
        )
        with pytest.raises(WorkerKilled):
            callbacks_send_due(now=t0)

    delivery = CallbackDelivery.objects.get()
    assert (delivery.status, delivery.attempt_log.count()) == (Status.PENDING, 0)
    assert len(receiver.requests) == 1

    assert callbacks_send_due(now=t0 + LEASE) == 1
    assert callbacks_send_due(now=t0 + timedelta(days=2)) == 0

    # At least once, never lost: the receiver drops the repeat by its webhook-id.
    assert receiver.webhook_ids == [delivery.webhook_id] * 2
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempt_log.count()) == (Status.DELIVERED, 1)


# --- (c) the receiver down for an hour ---------------------------------------------------------


@dataclass
class Outage:
    """A receiver whose port refuses connections until `restore()` serves on it again."""

    receiver: Receiver
    thread: threading.Thread | None = None
    port: int = field(init=False)

    def __post_init__(self) -> None:
        self.port = self.receiver.server.server_address[1]
        self.receiver.server.server_close()  # down: connection refused

    def restore(self) -> None:
        handler = self.receiver.server.RequestHandlerClass
        self.receiver.server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self.thread = threading.Thread(
            target=self.receiver.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        if self.thread is not None:
            self.receiver.server.shutdown()
        self.receiver.server.server_close()


@pytest.fixture
def outage(settings: Any, buyer: Buyer) -> Iterator[Outage]:
    settings.CALLBACK_ALLOW_PRIVATE = True
    outage = Outage(Receiver())
    callback_settings_update(user=buyer.user, callback_url=outage.receiver.url, set_url=True)
    try:
        yield outage
    finally:
        outage.close()


@pytest.mark.django_db
@pytest.mark.parametrize("recovery", ["schedule", "resend"])
def test_a_receiver_down_for_an_hour_gets_every_callback_once_when_it_is_back(
    buyer: Buyer, agent: Agent, modem: Modem, outage: Outage, client: Any, recovery: str
) -> None:
    orders = [match(buyer, agent, modem, text=f"Your code is 40{n}-118") for n in range(5)]
    deliveries = {d.order_id: d for d in CallbackDelivery.objects.all()}
    assert set(deliveries) == {o.pk for o in orders}
    # The SMS were matched an hour ago; the sweep has run every minute since.
    t0 = timezone.now() - timedelta(minutes=61)
    CallbackDelivery.objects.update(created_at=t0, next_attempt_at=t0)

    # An hour of the every-minute sweep against a closed port.
    for minute in range(61):
        callbacks_send_due(now=t0 + timedelta(minutes=minute))
    log = CallbackAttempt.objects.all()
    assert outage.receiver.requests == []
    assert {a.error.split(":")[0] for a in log} == {"connection error"}
    assert set(CallbackDelivery.objects.values_list("status", flat=True)) == {Status.PENDING}
    assert {d.attempts for d in CallbackDelivery.objects.all()} == {5}  # 0 s, 10 s, 1, 5, 30 min

    outage.restore()
    if recovery == "resend":  # the buyer presses "resend" on each one in the log
        for delivery in deliveries.values():
            response = client.post(f"/api/v1/callbacks/{delivery.pk}/resend", **buyer.headers)
            assert response.status_code == 202
    # The sweep keeps running every 10 minutes for a day after the outage.
    for step in range(6 * 24):
        callbacks_send_due(now=t0 + timedelta(minutes=61 + 10 * step))

    received = outage.receiver.requests
    assert sorted(r.headers["webhook-id"] for r in received) == sorted(
        d.webhook_id for d in deliveries.values()
    )
    for request in received:
        payload = verify(buyer.user.callback_secret, request)
        assert deliveries[payload["order_id"]].webhook_id == request.headers["webhook-id"]
    assert set(CallbackDelivery.objects.values_list("status", flat=True)) == {Status.DELIVERED}


# --- (d) the database restarted under load (opt-in: ZEROTP_FAULT_TESTS=1) ----------------------

ROOT = Path(__file__).resolve().parents[2]
CLUSTER, CLUSTER_PORT, DATABASE = "faults", 5433, "zerotp_faults"
LOAD_SECONDS, RESTART_AT = 10.0, 3.0
# After the restart, a request may still fail while its worker notices the dead connection.
GRACE_SECONDS = 3.0


def pg_version() -> str | None:
    versions = Path("/etc/postgresql")
    if not versions.is_dir() or shutil.which("pg_createcluster") is None:
        return None
    found = sorted((p.name for p in versions.iterdir() if p.name.isdigit()), key=int)
    return found[-1] if found else None


def run(*args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
    done = subprocess.run(
        list(args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if check and done.returncode:
        raise AssertionError(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def private_cluster() -> Iterator[str]:
    version = pg_version()
    if version is None:
        pytest.skip("needs Debian's PostgreSQL cluster tools (pg_createcluster)")
    if port_in_use(CLUSTER_PORT) and CLUSTER not in run("pg_lsclusters", check=False):
        pytest.skip(f"port {CLUSTER_PORT} is taken by something else")
    run("pg_dropcluster", "--stop", version, CLUSTER, check=False)  # left by an aborted run
    run("pg_createcluster", version, CLUSTER, "-p", str(CLUSTER_PORT), "--", "--auth=trust")
    try:
        run("pg_ctlcluster", version, CLUSTER, "start")
        for _ in range(50):
            ready = ["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(CLUSTER_PORT)]
            if subprocess.run(ready, check=False).returncode == 0:
                break
            time.sleep(0.1)
        run("createdb", "-h", "127.0.0.1", "-p", str(CLUSTER_PORT), "-U", "postgres", DATABASE)
        yield version
    finally:
        run("pg_dropcluster", "--stop", version, CLUSTER, check=False)


@dataclass
class Call:
    at: float
    op: str
    status: int | None  # None: no HTTP answer (connection refused, reset, timeout)
    body: Any = None
    key: str | None = None
    replayed: bool = False


class Load:
    """Client threads that order a number and cancel it, over and over, as fast as the
    server answers; every call is recorded with its time."""

    def __init__(self, base: str, api_key: str, application_id: int, threads: int = 4) -> None:
        self.base, self.application_id = base, application_id
        self.headers = {"X-API-KEY": api_key}
        self.calls: list[Call] = []
        self.unanswered_keys: list[str] = []  # creates with no definite answer
        self.open_orders: list[int] = []  # created, not (yet) cancelled
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.loop) for _ in range(threads)]

    def call(self, session: requests.Session, op: str, method: str, path: str, **kw: Any) -> Call:
        try:
            response = session.request(
                method,
                self.base + path,
                headers={**self.headers, **kw.pop("headers", {})},
                timeout=5,
                **kw,
            )
            try:
                body = response.json()
            except ValueError:
                body = response.text[:200]
            call = Call(time.monotonic(), op, response.status_code, body)
            call.replayed = response.headers.get("Idempotent-Replayed") == "true"
        except requests.RequestException as exc:
            call = Call(time.monotonic(), op, None, repr(exc)[:200])
        with self.lock:
            self.calls.append(call)
        return call

    def create(self, session: requests.Session, key: str) -> Call:
        body = {"application_id": self.application_id, "operator": "normal"}
        call = self.call(
            session, "create", "POST", "/api/v1/orders", json=body, headers={"Idempotency-Key": key}
        )
        call.key = key
        return call

    def loop(self) -> None:
        session = requests.Session()
        while not self.stop.is_set():
            key = str(uuid.uuid4())
            created = self.create(session, key)
            if created.status is None or created.status >= 500:
                with self.lock:
                    self.unanswered_keys.append(key)
                time.sleep(0.05)  # a client backs off a little
                continue
            if created.status != 201:
                continue
            order_id = created.body["order_id"]
            cancelled = self.call(session, "cancel", "POST", f"/api/v1/orders/{order_id}/cancel")
            if cancelled.status != 200:
                with self.lock:
                    self.open_orders.append(order_id)

    def __enter__(self) -> "Load":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)


VERIFY = """
import json
from django.db.models import Sum
from billing.models import LedgerAccount, LedgerTransaction
from billing.services import ledger_differences
from orders.models import IdempotencyKey, Order
refs = {}
for reference in LedgerTransaction.objects.filter(reference__startswith="order:").values_list(
    "reference", flat=True
):
    _, order_id, kind = reference.split(":")
    refs.setdefault(order_id, []).append(kind)
escrow = LedgerAccount.objects.filter(kind="escrow").values_list("balance", flat=True).first()
print(json.dumps({
    "differences": ledger_differences(),
    "escrow": escrow or 0,
    "pending": Order.objects.filter(status="pending").aggregate(s=Sum("price"))["s"] or 0,
    "orders": dict(Order.objects.values_list("pk", "status")),
    "references": refs,
    "keys": IdempotencyKey.objects.exclude(response=None).count(),
    "wallets": dict(
        LedgerAccount.objects.filter(kind="wallet").values_list("user__email", "balance")
    ),
}))
"""


@pytest.mark.faults
@pytest.mark.skipif(
    os.environ.get("ZEROTP_FAULT_TESTS") != "1",
    reason="restarts a private PostgreSQL cluster on port 5433 (about 30 s); "
    "run with ZEROTP_FAULT_TESTS=1",
)
def test_the_database_restarted_under_load_fails_requests_cleanly_and_loses_nothing(
    private_cluster: str,
) -> None:
    version = private_cluster
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{CLUSTER_PORT}/{DATABASE}",
        "API_RATE_LIMIT": "0",
        "SCAN_GUARD": "false",
        "MAX_ACTIVE_ORDERS": "100000",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
    }
    manage = [sys.executable, "manage.py"]
    run(*manage, "migrate", "--noinput", env=env)
    run(*manage, "seed_demo", env=env)
    balance = 10**9
    buyer = json.loads(
        run(
            *manage,
            "create_account",
            "load@faults.example",
            "--balance",
            str(balance),
            "--json",
            env=env,
        )
    )
    pool = json.loads(
        run(*manage, "create_account", "pool@faults.example", "--reseller", "--json", env=env)
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "zerotp.wsgi", "-w", "2", "-k", "gthread",
         "--threads", "4", "-b", f"127.0.0.1:{port}", "--timeout", "30"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        services = None
        for _ in range(100):
            try:
                services = requests.get(f"{base}/api/v1/services", timeout=1)
                if services.status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.1)
        assert services is not None and services.status_code == 200, "gunicorn did not start"
        app = next(s for s in services.json() if s["code"] == "whatsapp")
        agent = {"X-AGENT-KEY": pool["agent_key"]}
        modems = [
            {"uid": f"COM{i}", "phone_number": f"62812{i:07d}", "mapping": "normal"}
            for i in range(100)
        ]
        beats = [{"uid": m["uid"], "signal": 80, "can_order": True} for m in modems]
        for path, items in (("sync", modems), ("heartbeat", beats)):
            answer = requests.post(
                f"{base}/api/modem/{path}", json={"modems": items}, headers=agent, timeout=10
            )
            assert answer.ok, answer.text

        with Load(base, buyer["api_key"], app["id"]) as load:
            time.sleep(RESTART_AT)
            restart_started = time.monotonic()
            run("pg_ctlcluster", version, CLUSTER, "restart", "-m", "fast")
            restart_ended = time.monotonic()
            time.sleep(max(0.0, LOAD_SECONDS - RESTART_AT - (restart_ended - restart_started)))

        # Afterwards, a client retries what got no answer (same Idempotency-Key) and cancels
        # what is still open.
        session = requests.Session()
        replays = 0
        for key in load.unanswered_keys:
            again = load.create(session, key)
            assert again.status in (201, 409), again
            if again.status == 201:
                replays += again.replayed
                load.open_orders.append(again.body["order_id"])
        for order_id in load.open_orders:
            cancelled = load.call(session, "cancel", "POST", f"/api/v1/orders/{order_id}/cancel")
            assert cancelled.status in (200, 409), cancelled
        listing = session.get(
            f"{base}/api/v1/orders?status=pending&limit=200", headers=load.headers, timeout=5
        ).json()
        assert listing["results"] == []
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=15)

    books = json.loads(run(*manage, "shell", "-c", VERIFY, env=env).strip().splitlines()[-1])
    window = (restart_started - 0.5, restart_ended + GRACE_SECONDS)
    failures = [c for c in load.calls if c.status is None or c.status >= 500]
    outside = [c for c in failures if not window[0] <= c.at <= window[1]]
    answered = [c for c in load.calls if c.status is not None and c.status < 500]
    created = {c.body["order_id"] for c in answered if c.op == "create" and c.status == 201}
    kinds = Counter(
        "no answer"
        if c.status is None
        else f"{c.status} {'JSON' if isinstance(c.body, dict) else 'HTML'}"
        for c in failures
    )
    print(
        f"db restart: {len(load.calls)} calls, {len(failures)} failed ({dict(kinds)}) around a "
        f"{restart_ended - restart_started:.1f} s restart; {len(load.unanswered_keys)} creates "
        f"retried with their key, {replays} of them replayed; {len(books['orders'])} orders"
    )

    assert len(load.calls) > 200  # it really was under load
    assert failures, "the restart should have failed some requests"
    assert outside == [], outside[:5]
    assert {c.status for c in answered} <= {200, 201, 409}
    assert books["differences"] == []
    assert books["escrow"] == books["pending"] == 0
    assert set(books["orders"].values()) == {"cancelled"}
    assert {str(i) for i in created} <= set(books["orders"])
    for order_id, booked in books["references"].items():
        assert sorted(booked) == ["hold", "release"], (order_id, booked)
    assert set(books["references"]) == set(books["orders"])
    assert books["keys"] == len(books["orders"])  # one order per Idempotency-Key, never two
    assert books["wallets"]["load@faults.example"] == balance
