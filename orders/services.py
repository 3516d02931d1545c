"""Writes on orders: create, cancel, finish, expire, and the inbound SMS that completes them.

Every state change puts its precondition in the UPDATE (`status='pending'`) and treats
"0 rows" as "someone else won", so a cancel racing an SMS ends one way only. Money moves
through billing with the references `order:<id>:hold|capture|release`; their uniqueness
is the last guard against paying or refunding twice (cancel and expiry share `release`).
Locks, where taken, follow one order: buyer wallet, modem, order, ledger accounts.
"""

import contextlib
import hashlib
import json
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from accounts.models import User
from billing import services as billing
from modems.models import InboundSms
from orders import statements
from orders.callbacks import callback_enqueue
from orders.models import (
    Application,
    ApplicationPrice,
    IdempotencyKey,
    JobRun,
    Order,
    OrderMessage,
    OrderStatus,
)
from orders.otp import extract_otp
from orders.representation import order_data
from zerotp import errors

IDEMPOTENCY_WINDOW = timedelta(hours=24)
SCAN_GUARD_WINDOW = timedelta(hours=24)
SCAN_GUARD_RETRY_AFTER = 15 * 60
DUPLICATE_SMS_WINDOW = timedelta(minutes=10)
# How many modems one order creation tries when others win the race for them, and the
# pause before the third, fourth ... try (0.05, 0.1, 0.15, 0.2 s: 0.5 s in all).
MODEM_ATTEMPTS = 6
MODEM_RETRY_PAUSE = 0.05


@dataclass(frozen=True)
class OrderCreated:
    body: dict[str, Any]
    replayed: bool


def _fingerprint(**request: Any) -> str:
    return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()


def _idempotency_claim(buyer: User, key: str, fingerprint: str) -> dict[str, Any] | None:
    """Claim the key for this request, or return the answer remembered for it.

    The row is inserted first, inside the order's transaction: a concurrent retry of the
    same key blocks on the unique index until the first request commits (then it replays
    the answer) or rolls back (then it goes ahead itself)."""
    try:
        with transaction.atomic():
            IdempotencyKey.objects.create(buyer=buyer, key=key, fingerprint=fingerprint)
        return None
    except IntegrityError:
        pass
    row = IdempotencyKey.objects.select_for_update().get(buyer=buyer, key=key)
    if row.created_at < timezone.now() - IDEMPOTENCY_WINDOW or row.response is None:
        row.fingerprint, row.response, row.created_at = fingerprint, None, timezone.now()
        row.save(update_fields=["fingerprint", "response", "created_at"])
        return None
    if row.fingerprint != fingerprint:
        raise errors.IdempotencyConflict(
            "This Idempotency-Key was already used with a different request body."
        )
    return row.response


def order_create(
    *,
    buyer: User,
    application_id: int,
    operator: str = "normal",
    custom_user_id: str | None = None,
    idempotency_key: str | None = None,
) -> OrderCreated:
    """Hand the buyer a free number and hold the price in escrow.

    Errors in the contract's order: 400 (no price for the operator), 404, 429
    too_many_active_orders, 402, 409 out_of_stock."""
    if statements.MOVES_MONEY_ITSELF and not idempotency_key:
        # The usual order, in one statement; anything it cannot decide alone (an error,
        # a race) goes on to the transaction below, which writes nothing twice.
        now = timezone.now()
        order = statements.order_at_once(
            buyer_id=buyer.pk,
            application_id=application_id,
            operator=operator,
            custom_user_id=custom_user_id,
            now=now,
            expires_at=now + timedelta(seconds=settings.ORDER_TTL_SECONDS),
            online_since=now - timedelta(seconds=settings.MODEM_ONLINE_SECONDS),
            since=now - SCAN_GUARD_WINDOW,
        )
        if order is not None:
            return OrderCreated(body=order_data(order, messages=[]), replayed=False)
    with transaction.atomic():
        now = timezone.now()
        context = statements.order_context(
            buyer_id=buyer.pk,
            application_id=application_id,
            operator=operator,
            now=now,
            since=now - SCAN_GUARD_WINDOW,
        )
        if context is None:
            context = _context_without_wallet(application_id, operator)
        if context.price is None:
            message = f"{context.name} has no price for the {operator} operator."
            raise errors.InvalidRequest(message, fields={"operator": [message]})
        if not context.enabled:
            raise errors.NotFound(f"{context.name} is not available right now.")

        if idempotency_key:
            fingerprint = _fingerprint(
                application_id=application_id, operator=operator, custom_user_id=custom_user_id
            )
            remembered = _idempotency_claim(buyer, idempotency_key, fingerprint)
            if remembered is not None:
                return OrderCreated(body=remembered, replayed=True)

        if context.pending >= settings.MAX_ACTIVE_ORDERS:
            raise errors.TooManyActiveOrders(
                f"You already have {context.pending} pending orders (the limit is "
                f"{settings.MAX_ACTIVE_ORDERS}); finish or cancel one first."
            )
        if _looks_like_scanning(context):
            raise errors.RateLimited(
                f"{context.recent_closed - context.recent_answered} of your last "
                f"{context.recent_closed} orders received no SMS: ordering is paused for this "
                "account to stop number scanning. It resumes as those orders age; contact "
                "support if this is a mistake.",
                retry_after=SCAN_GUARD_RETRY_AFTER,
            )
        if context.balance < context.price:
            raise errors.InsufficientBalance(
                f"Balance {context.balance} is below the price {context.price}."
            )

        order = _order_on_free_modem(
            buyer=buyer,
            application_id=application_id,
            name=context.name,
            price=context.price,
            operator=operator,
            custom_user_id=custom_user_id,
            now=now,
        )
        body = order_data(order, messages=[])
        if idempotency_key:
            IdempotencyKey.objects.filter(buyer=buyer, key=idempotency_key).update(response=body)
    return OrderCreated(body=body, replayed=False)


def _context_without_wallet(application_id: int, operator: str) -> statements.OrderContext:
    """The buyer never topped up (no wallet), or there is no such application: which."""
    app = (
        Application.objects.filter(pk=application_id)
        .annotate(
            price=Subquery(
                ApplicationPrice.objects.filter(
                    application=OuterRef("pk"), operator=operator
                ).values("price")[:1]
            )
        )
        .first()
    )
    if app is None:
        raise errors.NotFound(f"There is no application {application_id}.")
    # No wallet: no order was ever held, so nothing is pending or recent.
    return statements.OrderContext(app.name, app.enabled, app.price, 0, 0, 0, 0)


def _looks_like_scanning(context: statements.OrderContext) -> bool:
    """Many recent orders and almost none received an SMS: someone is ordering numbers
    to probe them, not to receive codes (SCAN_GUARD)."""
    return (
        settings.SCAN_GUARD
        and context.recent_closed >= settings.SCAN_GUARD_ORDERS
        and context.recent_answered * 100
        < context.recent_closed * settings.SCAN_GUARD_MIN_SMS_PERCENT
    )


def _order_on_free_modem(
    *,
    buyer: User,
    application_id: int,
    name: str,
    price: int,
    operator: str,
    custom_user_id: str | None,
    now: datetime,
) -> Order:
    """Insert the order on a free modem, skipping modems other transactions hold, and
    hold its price in escrow.

    The partial unique constraint on open (application, modem) orders catches what the
    skip-locked read cannot see: under READ COMMITTED, a modem whose order another
    transaction has just committed. Then the pick runs again, and sees that order."""
    online_since = now - timedelta(seconds=settings.MODEM_ONLINE_SECONDS)
    for attempt in range(MODEM_ATTEMPTS):
        if attempt > 1:
            # Free modems exist, but every pick found them held by another transaction:
            # a heartbeat holds its whole batch of modems until it commits (tens of
            # milliseconds). Pause rather than answer out_of_stock while the catalogue
            # shows stock; pausing waits on no lock, so it adds no deadlock (only this
            # buyer's other orders queue behind its wallet meanwhile).
            time.sleep(MODEM_RETRY_PAUSE * (attempt - 1))
        placed = statements.order_on_free_modem(
            buyer_id=buyer.pk,
            application_id=application_id,
            operator=operator,
            price=price,
            custom_user_id=custom_user_id,
            now=now,
            expires_at=now + timedelta(seconds=settings.ORDER_TTL_SECONDS),
            online_since=online_since,
        )
        if placed is None:
            break
        if placed.order is not None:
            if not placed.held:
                billing.hold(reference=f"order:{placed.order.pk}:hold", buyer=buyer, amount=price)
            return placed.order
    raise errors.OutOfStock(
        f"No {operator} number is available for {name} right now; try again shortly "
        "or another operator."
    )


def _own_order(buyer: User, order_id: int) -> Order:
    order = Order.objects.filter(pk=order_id, buyer=buyer).first()
    if order is None:
        raise errors.NotFound(f"There is no order {order_id}.")
    return order


def order_cancel(*, buyer: User, order_id: int) -> Order:
    """Cancel a pending order and refund its price. Safe to repeat."""
    now = timezone.now()
    # On PostgreSQL the cancel and its refund are one statement that undoes itself if the
    # refund cannot be booked: no transaction around it, so the escrow row it updates is
    # locked for that statement only, not for a round trip more until COMMIT.
    moves_itself = statements.MOVES_MONEY_ITSELF
    with contextlib.nullcontext() if moves_itself else transaction.atomic():
        cancelled = statements.cancel_pending(order_id=order_id, buyer_id=buyer.pk, now=now)
        if cancelled is not None:
            if not cancelled.released:
                billing.release(
                    reference=f"order:{order_id}:release",
                    buyer=buyer,
                    amount=cancelled.order.price,
                )
            return cancelled.order
        order = _own_order(buyer, order_id)
    if order.status == OrderStatus.CANCELLED:
        return order
    state = order.effective_status
    if state in (OrderStatus.COMPLETED, OrderStatus.FINISHED):
        message = (
            "An SMS has already arrived for this order: there is nothing to refund. Finish it."
        )
    else:
        message = f"The order is {state} and can no longer be cancelled."
    raise errors.InvalidState(message)


def order_finish(*, buyer: User, order_id: int) -> Order:
    """Close a completed order (the buyer is done with the number). Safe to repeat."""
    now = timezone.now()
    finished = Order.objects.filter(pk=order_id, buyer=buyer, status=OrderStatus.COMPLETED).update(
        status=OrderStatus.FINISHED, closed_at=now
    )
    order = _own_order(buyer, order_id)
    if finished or order.status == OrderStatus.FINISHED:
        return order
    state = order.effective_status
    if state == OrderStatus.PENDING:
        message = "No SMS has arrived yet: cancel the order instead to get a refund."
    else:
        message = f"The order is {state} and cannot be finished."
    raise errors.InvalidState(message)


def order_expire(*, order_id: int, now: datetime | None = None) -> bool:
    """Expire one pending order past its time and refund it. True if this call did it."""
    now = now or timezone.now()
    with transaction.atomic():
        expired = Order.objects.filter(
            pk=order_id, status=OrderStatus.PENDING, expires_at__lte=now
        ).update(status=OrderStatus.EXPIRED, closed_at=now)
        if expired:
            order = Order.objects.only("buyer_id", "price").get(pk=order_id)
            billing.release(
                reference=f"order:{order_id}:release", buyer=order.buyer_id, amount=order.price
            )
    return bool(expired)


def orders_expire(*, now: datetime | None = None, batch: int = 500) -> int:
    """Expire and refund every pending order past `expires_at`; close completed ones.
    Each order in its own transaction, so one failure does not hold back the rest."""
    now = now or timezone.now()
    count = 0
    while True:
        due = list(
            Order.objects.filter(status=OrderStatus.PENDING, expires_at__lte=now)
            .order_by("expires_at")
            .values_list("pk", flat=True)[:batch]
        )
        count += sum(order_expire(order_id=pk, now=now) for pk in due)
        if len(due) < batch:
            break
    Order.objects.filter(status=OrderStatus.COMPLETED, expires_at__lte=now).update(
        status=OrderStatus.FINISHED, closed_at=now
    )
    return count


@dataclass(frozen=True)
class SmsResult:
    matched: bool
    order_id: int | None
    otp: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"matched": self.matched, "order_id": self.order_id, "otp": self.otp}


NO_MATCH = SmsResult(matched=False, order_id=None, otp=None)


def _result_of(sms_id: int) -> SmsResult:
    match = OrderMessage.objects.filter(sms_id=sms_id).first()
    if match is None:
        return NO_MATCH
    return SmsResult(matched=True, order_id=match.order_id, otp=match.otp_code)


def _pattern_hit(patterns: list[str], sender: str, text: str) -> bool:
    for pattern in patterns:
        try:
            if re.search(pattern, sender, re.IGNORECASE) or re.search(pattern, text, re.IGNORECASE):
                return True
        except re.error:
            continue
    return False


def _ranked_candidates(orders: list[Order], sender: str, text: str) -> list[Order]:
    """Orders whose application's pattern matched first, then applications without
    patterns (they take any SMS); pending before completed; then the oldest."""
    ranked = []
    for order in orders:
        patterns = order.application.patterns
        if patterns and not _pattern_hit(patterns, sender, text):
            continue
        rank = (
            0 if patterns else 1,
            0 if order.status == OrderStatus.PENDING else 1,
            order.created_at,
            order.pk,
        )
        ranked.append((rank, order))
    return [order for _, order in sorted(ranked, key=lambda pair: pair[0])]


def sms_receive(
    *,
    reseller: User,
    uid: str,
    sender: str,
    text: str,
    phone_number: str = "",
    message_id: str | None = None,
    received_at: datetime | None = None,
) -> SmsResult:
    """Store an inbound SMS, match it to the open order it belongs to, extract the code
    and, for a pending order, pay the reseller their share. A repeated SMS gets the first
    answer back and moves no money."""
    now = timezone.now()
    received_at = min(received_at or now, now)
    with transaction.atomic():
        # The modem lock serialises one modem's SMS, so duplicate detection is exact.
        modem = statements.lock_modem(reseller_id=reseller.pk, uid=uid)
        if modem is None:
            raise errors.NotFound(f"There is no modem {uid}; sync it first.")
        modem_id, line_number = modem
        duplicate = statements.duplicate_sms(
            modem_id=modem_id,
            reseller_id=reseller.pk,
            sender=sender,
            text=text,
            message_id=message_id,
            since=now - DUPLICATE_SMS_WINDOW,
        )
        if duplicate is not None:
            return _result_of(duplicate)
        candidates = statements.open_orders_on_line(
            modem_id=modem_id, phone_number=line_number, now=now, received_at=received_at
        )
        # Each candidate with the code found for it, best first. The SMS row is stored with
        # the first one's code, which is the code of the match unless that order closes
        # under us (then the next candidate's code is written instead).
        coded = [
            (order, extract_otp(text, sender, pattern=order.application.otp_pattern or None))
            for order in _ranked_candidates(candidates, sender, text)
        ]
        coded = [(order, otp) for order, otp in coded if otp is not None]
        expected_otp = coded[0][1] if coded else extract_otp(text, sender)
        sms = statements.insert_sms(
            modem_id=modem_id,
            reseller_id=reseller.pk,
            phone_number=phone_number,
            sender=sender,
            text=text,
            message_id=message_id,
            received_at=received_at,
            created_at=now,
            otp_code=expected_otp,
        )
        if sms is None:
            # The same message_id arrived at the same moment through another modem.
            first = InboundSms.objects.get(reseller=reseller, message_id=message_id)
            return _result_of(first.pk)

        for order, otp in coded:
            if _attach(order=order, sms=sms, otp=otp, now=now):
                if otp != expected_otp:
                    InboundSms.objects.filter(pk=sms.pk).update(otp_code=otp)
                return SmsResult(matched=True, order_id=order.pk, otp=otp)
    return NO_MATCH


def _attach(*, order: Order, sms: InboundSms, otp: str, now: datetime) -> bool:
    """Record the SMS on the order; the first one completes it and pays the reseller.
    False if the order closed meanwhile (a cancel or the clock won)."""
    update = {"otp_code": otp, "sms_text": sms.text}
    if order.status == OrderStatus.PENDING:
        share = billing.reseller_share(order.price)
        won = statements.complete_pending(
            order_id=order.pk, share=share, otp=otp, text=sms.text, now=now
        )
        if won:
            billing.capture(
                reference=f"order:{order.pk}:capture",
                reseller=order.reseller_id,
                amount=order.price,
            )
    else:
        won = Order.objects.filter(
            pk=order.pk, status=OrderStatus.COMPLETED, expires_at__gt=now
        ).update(**update)
    if won:
        OrderMessage.objects.create(order=order, sms=sms, otp_code=otp, created_at=now)
        callback_enqueue(order=order, sms=sms, otp=otp, buyer=order.buyer)
    return bool(won)


def job_run_record(*, name: str, at: datetime | None = None) -> None:
    """Note that a periodic job finished cleanly now (read by /readyz and /metrics)."""
    JobRun.objects.update_or_create(name=name, defaults={"succeeded_at": at or timezone.now()})
