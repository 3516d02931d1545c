"""Callbacks: written with the match, signed, retried on schedule, logged, replayable.

Every delivery goes over real HTTP to a receiver on 127.0.0.1 that verifies signatures
with the `standardwebhooks` package, exactly as a buyer's code would. The clock is driven
through `now=`, never slept."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from accounts.services import callback_settings_update
from modems.models import Modem
from orders import callbacks
from orders.callbacks import BACKOFF, LEASE, MAX_ATTEMPTS, callback_send, callbacks_send_due
from orders.models import CallbackDelivery, Order
from orders.services import order_create, sms_receive
from tests.factories import Agent, ApplicationFactory, Buyer, ModemFactory
from tests.receiver import Answer, Receiver, running_receiver

pytestmark = pytest.mark.django_db

Status = CallbackDelivery.Status


@pytest.fixture
def modem(agent: Agent) -> Modem:
    return ModemFactory(reseller=agent.user)


def match(buyer: Buyer, agent: Agent, modem: Modem, text: str = "Your code is 123-456") -> Order:
    """Order a new application and deliver its SMS (the same text twice within ten minutes
    would be a duplicate, so repeated calls should pass their own text)."""
    app = ApplicationFactory(prices={"normal": 3500})
    created = order_create(buyer=buyer.user, application_id=app.pk, custom_user_id="user-7")
    order = Order.objects.select_related("modem").get(pk=created.order.pk)
    # Each call orders a new application, so the first free modem serves it.
    result = sms_receive(reseller=agent.user, uid=order.modem.uid, sender="WhatsApp", text=text)
    assert result.matched
    return order


def verify(secret: str, received: object) -> dict:
    return Webhook(secret).verify(received.body, received.headers)


def test_a_matched_sms_reaches_the_receiver_signed_with_the_seed_fields(
    subscribed: Buyer, agent: Agent, modem: Modem, receiver: Receiver
) -> None:
    order = match(subscribed, agent, modem)
    delivery = CallbackDelivery.objects.get(order=order)
    assert delivery.status == Status.PENDING  # written with the match, sent after it

    assert callbacks_send_due() == 1

    [received] = receiver.requests
    payload = verify(subscribed.user.callback_secret, received)
    assert payload == {
        "order_id": order.pk,
        "phone_number": modem.phone_number,
        "otp_code": "123456",
        "sms_text": "Your code is 123-456",
        "status": "completed",
        "custom_user_id": "user-7",
        "application_id": order.application_id,
        "received_at": payload["received_at"],
    }
    assert payload["received_at"].endswith("Z")
    assert received.headers["webhook-id"] == delivery.webhook_id
    assert received.headers["content-type"] == "application/json"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (
        Status.DELIVERED,
        1,
        None,
    )


def test_tampered_bodies_wrong_secrets_and_old_timestamps_fail_verification(
    subscribed: Buyer, agent: Agent, modem: Modem, receiver: Receiver
) -> None:
    match(subscribed, agent, modem)
    callbacks_send_due()
    [received] = receiver.requests
    secret = subscribed.user.callback_secret
    verify(secret, received)

    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(received.body.replace(b"123456", b"654321"), received.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "QUJD" * 8).verify(received.body, received.headers)
    old = {**received.headers, "webhook-timestamp": str(int(timezone.now().timestamp()) - 3600)}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(received.body, old)


def test_indonesian_and_emoji_text_arrives_byte_identical_to_what_was_signed(
    subscribed: Buyer, agent: Agent, modem: Modem, receiver: Receiver
) -> None:
    text = "Kode verifikasi Anda 482913 🔐 — jangan berikan ke siapa pun 🙏 «ok»"
    match(subscribed, agent, modem, text=text)
    callbacks_send_due()

    [received] = receiver.requests
    delivery = CallbackDelivery.objects.get()
    assert received.body == delivery.body.encode("utf-8")
    assert "🔐".encode() in received.body  # raw UTF-8, not \\u escapes
    assert verify(subscribed.user.callback_secret, received)["sms_text"] == text


def test_a_receiver_that_fails_twice_gets_it_on_the_third_attempt_on_schedule(
    subscribed: Buyer, agent: Agent, modem: Modem, receiver: Receiver
) -> None:
    receiver.fail_first(2)
    match(subscribed, agent, modem)
    t0 = timezone.now()

    assert callbacks_send_due(now=t0) == 1
    delivery = CallbackDelivery.objects.get()
    assert delivery.next_attempt_at == t0 + timedelta(seconds=BACKOFF[1])
    assert callbacks_send_due(now=t0 + timedelta(seconds=BACKOFF[1] - 1)) == 0  # not yet due

    t1 = t0 + timedelta(seconds=BACKOFF[1])
    assert callbacks_send_due(now=t1) == 1
    delivery.refresh_from_db()
    assert delivery.next_attempt_at == t1 + timedelta(seconds=BACKOFF[2])

    assert callbacks_send_due(now=t1 + timedelta(seconds=BACKOFF[2])) == 1

    assert [r.headers["webhook-id"] for r in receiver.requests] == [delivery.webhook_id] * 3
    assert len({r.body for r in receiver.requests}) == 1
    for received in receiver.requests:
        verify(subscribed.user.callback_secret, received)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (Status.DELIVERED, 3)


def test_eight_failed_attempts_over_a_day_mark_the_delivery_failed_and_keep_it_visible(
    subscribed: Buyer, agent: Agent, modem: Modem, receiver: Receiver, client: APIClient
) -> None:
    receiver.fail_first(100, status=502)
    order = match(subscribed, agent, modem)
    moment = timezone.now()
    started = moment
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert callback_send(delivery_id=CallbackDelivery.objects.get().pk, now=moment)
        delivery = CallbackDelivery.objects.get()
        assert delivery.attempts == attempt
        if attempt < MAX_ATTEMPTS:
            assert delivery.next_attempt_at == moment + timedelta(seconds=BACKOFF[attempt])
            moment = delivery.next_attempt_at

    assert moment - started >= timedelta(hours=24)
    assert (delivery.status, delivery.next_attempt_at) == (Status.FAILED, None)
    assert callbacks_send_due(now=moment + timedelta(days=2)) == 0
    assert len(receiver.requests) == MAX_ATTEMPTS

    log = client.get(f"/api/v1/callbacks?order_id={order.pk}", **subscribed.headers).json()
    [entry] = log["results"]
    assert (entry["status"], entry["attempts"], entry["event"]) == ("failed", 8, "otp.received")
    assert entry["last_attempt"]["status_code"] == 502
    assert entry["last_attempt"]["error"] == "HTTP 502"
    assert entry["last_attempt"]["response_body"] == "not now"


@pytest.mark.parametrize(
    ("header", "expected"), [("120", timedelta(seconds=120)), ("1", timedelta(seconds=10))]
)
def test_retry_after_is_honoured_when_it_asks_for_longer(
    subscribed: Buyer,
    agent: Agent,
    modem: Modem,
    receiver: Receiver,
    header: str,
    expected: timedelta,
) -> None:
    receiver.script = [Answer(503, {"Retry-After": header}, b"busy")]
    match(subscribed, agent, modem)
    now = timezone.now()

    callbacks_send_due(now=now)

    assert CallbackDelivery.objects.get().next_attempt_at == now + expected


def test_retry_after_as_an_http_date_is_understood(
    subscribed: Buyer, agent: Agent, modem: Modem, receiver: Receiver
) -> None:
    later = timezone.now() + timedelta(minutes=30)
    receiver.script = [Answer(429, {"Retry-After": later.strftime("%a, %d %b %Y %H:%M:%S GMT")})]
    match(subscribed, agent, modem)

    callbacks_send_due()

    wait = CallbackDelivery.objects.get().next_attempt_at - timezone.now()
    assert timedelta(minutes=29) <= wait <= timedelta(minutes=31)


def test_a_redirect_counts_as_a_failure_and_is_not_followed(
    subscribed: Buyer, agent: Agent, modem: Modem, receiver: Receiver
) -> None:
    receiver.script = [Answer(302, {"Location": receiver.url + "/elsewhere"}, b"")]
    match(subscribed, agent, modem)

    callbacks_send_due()

    assert [r.path for r in receiver.requests] == ["/hooks/otp"]
    delivery = CallbackDelivery.objects.get()
    attempt = delivery.attempt_log.get()
    assert (delivery.status, attempt.status_code, attempt.error) == (
        Status.PENDING,
        302,
        "HTTP 302",
    )


def test_only_the_first_kilobyte_of_the_answer_is_kept(
    subscribed: Buyer, agent: Agent, modem: Modem, receiver: Receiver
) -> None:
    receiver.script = [Answer(500, {}, b"x" * 5000 + b"\x00")]
    match(subscribed, agent, modem)
    callbacks_send_due()
    assert CallbackDelivery.objects.get().attempt_log.get().response_body == "x" * 1024


def test_a_receiver_that_does_not_answer_in_time_is_a_timeout(
    subscribed: Buyer, agent: Agent, modem: Modem, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts the connection, never answers
    monkeypatch.setattr(callbacks, "TIMEOUT_SECONDS", 0.3)
    callback_settings_update(
        user=subscribed.user,
        callback_url=f"http://127.0.0.1:{silent.getsockname()[1]}/",
        set_url=True,
    )
    try:
        match(subscribed, agent, modem)
        callbacks_send_due()
    finally:
        silent.close()
    attempt = CallbackDelivery.objects.get().attempt_log.get()
    assert attempt.error == "timeout after 0.3 s"
    assert attempt.status_code is None


def test_a_closed_port_is_a_connection_error_and_is_retried(
    subscribed: Buyer, agent: Agent, modem: Modem
) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    callback_settings_update(
        user=subscribed.user, callback_url=f"http://127.0.0.1:{port}/", set_url=True
    )
    match(subscribed, agent, modem)
    callbacks_send_due()
    delivery = CallbackDelivery.objects.get()
    assert delivery.status == Status.PENDING
    assert delivery.attempt_log.get().error.startswith("connection error: ConnectionError")


def test_nothing_is_written_when_callbacks_are_off(
    buyer: Buyer, agent: Agent, modem: Modem, receiver: Receiver
) -> None:
    match(buyer, agent, modem)  # no URL
    callback_settings_update(
        user=buyer.user, callback_url=receiver.url, set_url=True, callback_enabled=False
    )
    match(buyer, agent, modem, text="Your code is 777-888")  # URL but disabled
    assert CallbackDelivery.objects.count() == 0


def test_a_delivery_goes_to_the_url_configured_when_it_is_sent(
    subscribed: Buyer, agent: Agent, modem: Modem, receiver: Receiver
) -> None:
    match(subscribed, agent, modem)
    with running_receiver() as moved:
        callback_settings_update(user=subscribed.user, callback_url=moved.url, set_url=True)
        callbacks_send_due()
        assert len(moved.requests) == 1
    assert receiver.requests == []


def test_disabling_callbacks_stops_pending_deliveries(
    subscribed: Buyer, agent: Agent, modem: Modem, receiver: Receiver
) -> None:
    match(subscribed, agent, modem)
    callback_settings_update(user=subscribed.user, callback_enabled=False)
    callbacks_send_due()
    delivery = CallbackDelivery.objects.get()
    assert receiver.requests == []
    assert delivery.status == Status.FAILED
    assert "callbacks are off" in delivery.attempt_log.get().error


def test_during_a_rotation_both_secrets_sign_then_only_the_new_one(
    subscribed: Buyer, agent: Agent, modem: Modem, receiver: Receiver
) -> None:
    old = subscribed.user.callback_secret
    user = callback_settings_update(user=subscribed.user, rotate_secret=True)
    match(subscribed, agent, modem)
    callbacks_send_due()

    received = receiver.requests[-1]
    assert len(received.headers["webhook-signature"].split(" ")) == 2
    verify(old, received)
    verify(user.callback_secret, received)

    type(user).objects.filter(pk=user.pk).update(
        callback_secret_previous_until=timezone.now() - timedelta(seconds=1)
    )
    match(subscribed, agent, modem, text="Your code is 777-888")
    callbacks_send_due()
    assert len(receiver.requests) == 2
    received = receiver.requests[-1]
    verify(user.callback_secret, received)
    with pytest.raises(WebhookVerificationError):
        verify(old, received)


def test_resend_sends_the_same_body_under_the_same_webhook_id(
    subscribed: Buyer, agent: Agent, modem: Modem, receiver: Receiver, client: APIClient
) -> None:
    match(subscribed, agent, modem)
    callbacks_send_due()
    delivery = CallbackDelivery.objects.get()

    answer = client.post(f"/api/v1/callbacks/{delivery.pk}/resend", **subscribed.headers)

    assert answer.status_code == 202
    assert answer.json()["status"] == "pending"
    assert callbacks_send_due() == 1
    first, again = receiver.requests
    assert (again.headers["webhook-id"], again.body) == (first.headers["webhook-id"], first.body)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (Status.DELIVERED, 2)


def test_the_test_button_sends_a_signed_test_event_and_answers_with_the_attempt(
    subscribed: Buyer, receiver: Receiver, client: APIClient
) -> None:
    answer = client.post("/api/v1/callbacks/test", **subscribed.headers)

    assert answer.status_code == 200
    body = answer.json()
    assert (body["delivered"], body["status_code"], body["error"]) == (True, 200, None)
    assert isinstance(body["duration_ms"], int)
    [received] = receiver.requests
    assert verify(subscribed.user.callback_secret, received)["status"] == "test"
    log = client.get("/api/v1/callbacks", **subscribed.headers).json()["results"]
    assert [(e["event"], e["status"]) for e in log] == [("test", "delivered")]


def test_a_failing_test_callback_says_why_and_is_not_retried(
    subscribed: Buyer, receiver: Receiver, client: APIClient
) -> None:
    receiver.fail_first(1, status=401)
    body = client.post("/api/v1/callbacks/test", **subscribed.headers).json()
    assert (body["delivered"], body["status_code"], body["error"]) == (False, 401, "HTTP 401")
    assert CallbackDelivery.objects.get().status == Status.FAILED
    assert callbacks_send_due(now=timezone.now() + timedelta(days=1)) == 0


def test_the_test_button_needs_a_url(buyer: Buyer, client: APIClient) -> None:
    answer = client.post("/api/v1/callbacks/test", **buyer.headers)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_request"


def test_the_log_is_private_newest_first_and_filtered(
    subscribed: Buyer, agent: Agent, modem: Modem, receiver: Receiver, client: APIClient
) -> None:
    from tests.factories import make_buyer

    receiver.fail_first(1)
    first = match(subscribed, agent, modem)
    second = match(subscribed, agent, modem, text="Your code is 555-666")
    callbacks_send_due()
    other = make_buyer()

    log = client.get("/api/v1/callbacks", **subscribed.headers).json()
    assert [e["order_id"] for e in log["results"]] == [second.pk, first.pk]
    assert log["next"] is None
    pending = client.get("/api/v1/callbacks?status=pending", **subscribed.headers).json()
    assert [e["order_id"] for e in pending["results"]] == [first.pk]
    assert client.get("/api/v1/callbacks", **other.headers).json()["results"] == []
    mine = CallbackDelivery.objects.filter(order=first).get()
    stranger = client.post(f"/api/v1/callbacks/{mine.pk}/resend", **other.headers)
    assert stranger.status_code == 404
    assert client.get("/api/v1/callbacks?status=lost", **subscribed.headers).status_code == 400
    assert client.get("/api/v1/callbacks?order_id=x", **subscribed.headers).status_code == 400


def test_a_worker_killed_between_sending_and_recording_leads_to_a_resend_not_a_loss(
    subscribed: Buyer,
    agent: Agent,
    modem: Modem,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    match(subscribed, agent, modem)
    t0 = timezone.now()

    class WorkerKilled(BaseException):
        pass

    def die(*args: object, **kwargs: object) -> None:
        raise WorkerKilled

    with monkeypatch.context() as patched:
        patched.setattr(callbacks, "_record", die)
        with pytest.raises(WorkerKilled):
            callbacks_send_due(now=t0)
    assert len(receiver.requests) == 1  # it was sent, but nothing was recorded

    delivery = CallbackDelivery.objects.get()
    assert delivery.status == Status.PENDING
    assert callbacks_send_due(now=t0 + LEASE - timedelta(seconds=1)) == 0  # still leased

    assert callbacks_send_due(now=t0 + LEASE) == 1
    assert receiver.webhook_ids == [delivery.webhook_id] * 2
    delivery.refresh_from_db()
    assert delivery.status == Status.DELIVERED


def test_the_sweep_schedule_exists() -> None:
    from django_q.models import Schedule

    schedule = Schedule.objects.get(func="orders.tasks.sweep_callbacks")
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == ("I", 1, -1)


def test_the_sweep_task_queues_every_due_delivery(
    subscribed: Buyer, agent: Agent, modem: Modem, receiver: Receiver
) -> None:
    from django_q.models import OrmQ

    from orders.tasks import sweep_callbacks

    match(subscribed, agent, modem)
    before = OrmQ.objects.count()
    assert sweep_callbacks() == 1
    assert OrmQ.objects.count() == before + 1
