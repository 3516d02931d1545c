"""Callbacks to buyers ("API & Callback"): an outbox of deliveries, each signed the
Standard Webhooks way, retried with backoff until a 2xx, every attempt logged.

A delivery row is written in the transaction that matched the SMS; sending happens after
commit, in the job queue. Two workers never send one delivery at once: a worker claims it
with a conditional UPDATE that also leases it for LEASE; a worker that dies mid-send
leaves the lease to run out, and the every-minute sweep sends it again with the same
`webhook-id` (at least once, never lost).
"""

import email.utils
import json
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from requests_hardened import Config, HTTPSession
from requests_hardened.ip_filter import InvalidIPAddress

from accounts.callback_url import CallbackUrlError, allowed_address, check_callback_url
from accounts.models import User
from modems.models import InboundSms
from orders.models import CallbackAttempt, CallbackDelivery, Order
from orders.representation import iso
from orders.signing import webhook_headers
from zerotp import errors

if TYPE_CHECKING:
    # The stubs' names for what build_connection_pool_key_attributes returns.
    from requests.adapters import _HostParams, _PoolKwargs

Status = CallbackDelivery.Status
Event = CallbackDelivery.Event

# Seconds to wait before attempt 1, 2, ... 8: eight attempts over 24.6 hours.
BACKOFF = (0, 10, 60, 5 * 60, 30 * 60, 2 * 3600, 6 * 3600, 16 * 3600)
MAX_ATTEMPTS = len(BACKOFF)
LEASE = timedelta(seconds=60)
TIMEOUT_SECONDS = 5
RESPONSE_LIMIT = 1024
RETRY_AFTER_CAP = timedelta(hours=24)
USER_AGENT = "ZeroTP-Webhooks/1.0 (+https://www.standardwebhooks.com/)"


def _frozen(payload: dict[str, Any]) -> str:
    # ensure_ascii=False: Indonesian and emoji text travel as UTF-8, byte for byte.
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def _new_webhook_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def callback_enqueue(*, order: Order, sms: InboundSms, otp: str, buyer: User) -> None:
    """Write the delivery for a matched SMS (inside the matching transaction) and send it
    once that transaction commits. Nothing is written when callbacks are off."""
    if not (buyer.callback_enabled and buyer.callback_url):
        return
    payload = {
        "order_id": order.pk,
        "phone_number": order.phone_number,
        "otp_code": otp,
        "sms_text": sms.text,
        "status": "completed",
        "custom_user_id": order.custom_user_id,
        "application_id": order.application_id,
        "received_at": iso(sms.received_at),
    }
    delivery = CallbackDelivery.objects.create(
        buyer=buyer,
        order=order,
        event=Event.OTP_RECEIVED,
        webhook_id=_new_webhook_id(),
        body=_frozen(payload),
        next_attempt_at=timezone.now(),
    )
    transaction.on_commit(lambda: _queue(delivery.pk))


def _queue(delivery_id: int) -> None:
    from django_q.tasks import async_task

    try:
        async_task("orders.tasks.send_callback", delivery_id)
    except Exception:  # the broker is down: the sweep sends it within a minute
        import logging

        logging.getLogger(__name__).warning("could not queue callback %s", delivery_id)


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None
    duration_ms: int
    response_body: str = ""
    retry_after: timedelta | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _retry_after(value: str | None) -> timedelta | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        wait = timedelta(seconds=int(value))
    else:
        try:
            moment = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        wait = moment - timezone.now()
    return min(max(wait, timedelta(0)), RETRY_AFTER_CAP)


class PinnedAddressAdapter(HTTPAdapter):
    """Connects to the address the host resolved to, checked by the rule the URL was
    checked by when it was saved (`address_allowed`), so that DNS gets no second answer
    between the check and the connection. requests-hardened's IP-filter adapter, with
    ZeroTP's address rule in place of its own."""

    def __init__(self, *, allow_private: bool) -> None:
        super().__init__()
        self.allow_private = allow_private

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: bool | str, cert: Any = None
    ) -> tuple["_HostParams", "_PoolKwargs"]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        host, port = host_params["host"], host_params["port"]
        default_port = 443 if host_params["scheme"] == "https" else 80
        try:
            address = allowed_address(host, port or default_port, allow_private=self.allow_private)
        except (OSError, UnicodeError) as exc:
            raise requests.ConnectionError(f"{host} does not resolve") from exc
        if address is None:
            raise InvalidIPAddress(host)
        # The request names the host, the socket goes to the checked address, and TLS
        # checks the certificate against the host.
        request.headers = CaseInsensitiveDict(request.headers or {})
        named = f"[{host}]" if ":" in host else host
        request.headers["Host"] = f"{named}:{port}" if port else named
        if host_params["scheme"] == "https":
            # urllib3's pools take both; the stubs' _PoolKwargs lists only requests' own keys.
            pool_kwargs["assert_hostname"] = host  # type: ignore[typeddict-unknown-key]
            pool_kwargs["server_hostname"] = host  # type: ignore[typeddict-unknown-key]
        host_params["host"] = address.split("%", 1)[0]
        return host_params, pool_kwargs


def _http() -> requests.Session:
    session = HTTPSession(
        Config(
            ip_filter_enable=False,  # PinnedAddressAdapter filters with ZeroTP's rule instead
            ip_filter_allow_loopback_ips=False,
            never_redirect=True,
            default_timeout=(TIMEOUT_SECONDS, TIMEOUT_SECONDS),
            user_agent_override=USER_AGENT,
        )
    )
    adapter = PinnedAddressAdapter(allow_private=settings.CALLBACK_ALLOW_PRIVATE)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def post_signed(*, url: str, secrets: list[str], webhook_id: str, body: str) -> Outcome:
    """POST the body to the URL, signed with every given secret: refused before any socket
    is opened if the URL is not allowed, never following redirects, reading at most 1 KB."""
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        check_callback_url(url, allow_private=settings.CALLBACK_ALLOW_PRIVATE)
    except CallbackUrlError as exc:
        return Outcome(None, f"refused: {exc}", elapsed())
    raw = body.encode("utf-8")
    headers = webhook_headers(secrets, webhook_id, int(time.time()), raw)
    try:
        with _http() as session:
            response = session.request(
                "POST", url, data=raw, headers=headers, stream=True, allow_redirects=False
            )
    except InvalidIPAddress:
        return Outcome(None, "refused: the host resolves to a private address", elapsed())
    except requests.Timeout:
        return Outcome(None, f"timeout after {TIMEOUT_SECONDS} s", elapsed())
    except requests.RequestException as exc:
        return Outcome(None, f"connection error: {type(exc).__name__}: {exc}"[:500], elapsed())
    try:
        head = response.raw.read(RESPONSE_LIMIT, decode_content=True) or b""
    except Exception:  # a broken body does not change what the status said
        head = b""
    finally:
        response.close()
    text = head.decode("utf-8", errors="replace").replace("\x00", "")
    return Outcome(
        status_code=response.status_code,
        error=None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}",
        duration_ms=elapsed(),
        response_body=text,
        retry_after=_retry_after(response.headers.get("Retry-After")),
    )


def signing_secrets(buyer: User, now: datetime | None = None) -> list[str]:
    """The current secret, and the previous one while its grace period lasts."""
    now = now or timezone.now()
    secrets = [buyer.callback_secret]
    until = buyer.callback_secret_previous_until
    if buyer.callback_secret_previous and until and until > now:
        secrets.append(buyer.callback_secret_previous)
    return secrets


def callback_send(*, delivery_id: int, now: datetime | None = None) -> bool:
    """Claim the delivery if it is due and nobody holds it, send it, log the attempt and
    schedule the next one. False if another worker has it or it is not due."""
    now = now or timezone.now()
    claimed = (
        CallbackDelivery.objects.filter(
            pk=delivery_id, status=Status.PENDING, next_attempt_at__lte=now
        )
        .filter(Q(leased_until__isnull=True) | Q(leased_until__lte=now))
        .update(leased_until=now + LEASE, attempts=F("attempts") + 1)
    )
    if not claimed:
        return False
    delivery = CallbackDelivery.objects.select_related("buyer").get(pk=delivery_id)
    buyer = delivery.buyer
    off = not (buyer.callback_url and buyer.callback_enabled and buyer.is_active)
    if off:
        outcome = Outcome(None, "not sent: callbacks are off for this account", 0)
    else:
        outcome = post_signed(
            url=buyer.callback_url,
            secrets=signing_secrets(buyer),
            webhook_id=delivery.webhook_id,
            body=delivery.body,
        )
    _record(delivery, outcome, url=buyer.callback_url, now=now, final=off)
    return True


def _record(
    delivery: CallbackDelivery, outcome: Outcome, *, url: str, now: datetime, final: bool = False
) -> None:
    with transaction.atomic():
        CallbackAttempt.objects.create(
            delivery=delivery,
            at=now,
            url=url,
            status_code=outcome.status_code,
            error=outcome.error,
            duration_ms=outcome.duration_ms,
            response_body=outcome.response_body,
        )
        update: dict[str, Any] = {"leased_until": None}
        if outcome.delivered:
            update |= {"status": Status.DELIVERED, "delivered_at": now, "next_attempt_at": None}
        elif final or delivery.event == Event.TEST or delivery.attempts >= MAX_ATTEMPTS:
            update |= {"status": Status.FAILED, "next_attempt_at": None}
        else:
            wait = timedelta(seconds=BACKOFF[delivery.attempts])
            if outcome.retry_after is not None:
                wait = max(wait, outcome.retry_after)
            update["next_attempt_at"] = now + wait
        CallbackDelivery.objects.filter(pk=delivery.pk).update(**update)


def callbacks_due(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Deliveries whose time has come and that no live worker holds."""
    now = now or timezone.now()
    return list(
        CallbackDelivery.objects.filter(status=Status.PENDING, next_attempt_at__lte=now)
        .filter(Q(leased_until__isnull=True) | Q(leased_until__lte=now))
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def callbacks_send_due(*, now: datetime | None = None) -> int:
    """Send every due delivery in this process; the number this worker sent."""
    return sum(callback_send(delivery_id=pk, now=now) for pk in callbacks_due(now=now))


def callback_resend(*, buyer: User, delivery_id: int) -> CallbackDelivery:
    """Send a delivery again now: same body, same webhook-id."""
    delivery = CallbackDelivery.objects.filter(pk=delivery_id, buyer=buyer).first()
    if delivery is None:
        raise errors.NotFound(_("There is no callback %(id)s.") % {"id": delivery_id})
    if not (buyer.callback_url and buyer.callback_enabled):
        raise errors.InvalidRequest(_("Callbacks are off: set a URL and enable them first."))
    now = timezone.now()
    CallbackDelivery.objects.filter(pk=delivery.pk).filter(
        Q(leased_until__isnull=True) | Q(leased_until__lte=now)
    ).update(status=Status.PENDING, next_attempt_at=now, leased_until=None)
    transaction.on_commit(lambda: _queue(delivery.pk))
    delivery.refresh_from_db()
    return delivery


def callback_test(*, buyer: User) -> tuple[CallbackDelivery, Outcome]:
    """Send a signed test event to the configured URL now and log it like any delivery."""
    if not buyer.callback_url:
        raise errors.InvalidRequest(
            "Set a callback URL first.", fields={"callback_url": ["No callback URL is set."]}
        )
    now = timezone.now()
    payload = {
        "order_id": 0,
        "phone_number": "628000000000",
        "otp_code": "123456",
        "sms_text": "ZeroTP test callback: your code is 123456",
        "status": "test",
        "custom_user_id": None,
        "application_id": None,
        "received_at": iso(now),
    }
    delivery = CallbackDelivery.objects.create(
        buyer=buyer,
        event=Event.TEST,
        webhook_id=_new_webhook_id(),
        body=_frozen(payload),
        attempts=1,
        leased_until=now + LEASE,
        next_attempt_at=now,
    )
    outcome = post_signed(
        url=buyer.callback_url,
        secrets=signing_secrets(buyer, now),
        webhook_id=delivery.webhook_id,
        body=delivery.body,
    )
    _record(delivery, outcome, url=buyer.callback_url, now=now)
    delivery.refresh_from_db()
    return delivery, outcome
