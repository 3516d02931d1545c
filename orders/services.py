"""Writes on orders: create, cancel, finish, expire, and the inbound SMS that completes them.

Every state change puts its precondition in the UPDATE (`status='pending'`) and treats
"0 rows" as "someone else won", so a cancel racing an SMS ends one way only. Money moves
through billing with the references `order:<id>:hold|capture|release`; their uniqueness
is the last guard against paying or refunding twice (cancel and expiry share `release`).
Locks, where taken, follow one order: buyer wallet, modem, order, ledger accounts.
"""

import contextlib
import functools
import hashlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from billing import services as billing
from modems.models import InboundSms, Operator
from orders import matching
from orders.callbacks import callback_enqueue
from orders.models import (
    Application,
    IdempotencyKey,
    JobRun,
    Order,
    OrderMessage,
    OrderStatus,
)
from orders.statements import cancelling, free_modems, inbound, placing
from orders.statements.common import as_stored
from zerotp import errors
from zerotp.db import writes_in_one_statement

IDEMPOTENCY_WINDOW = timedelta(hours=24)
SCAN_GUARD_WINDOW = timedelta(hours=24)
SCAN_GUARD_RETRY_AFTER = 15 * 60
DUPLICATE_SMS_WINDOW = timedelta(minutes=10)
# When every free modem an order picks is held by another transaction (a heartbeat holds
# its whole batch until it commits, tens of milliseconds), the order's transaction picks
# twice and then gives up its locks and waits these pauses in turn before trying again
# (0.5 s in all): pausing rather than answering out_of_stock while the catalogue shows
# stock, and never while holding the buyer's wallet, which the buyer's other orders and
# cancels queue on.
MODEM_PICKS = 2
MODEM_RETRY_PAUSES = (0.05, 0.1, 0.15, 0.2)


@dataclass(frozen=True)
class Idempotency:
    """An `Idempotency-Key` and how the caller words the answer to remember: a retry with
    the key gets that answer back byte for byte (`OrderCreated.answer`)."""

    key: str
    render: Callable[[Order], str]


@dataclass(frozen=True)
class OrderCreated:
    order: Order
    answer: str | None = None  # the remembered answer, when the order has an Idempotency
    replayed: bool = False  # a retry: the order and answer are the first request's


def _fingerprint(**request: Any) -> str:
    return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()


def _idempotency_claim(buyer: User, key: str, fingerprint: str) -> IdempotencyKey | None:
    """Claim the key for this request, or return the row remembering its first answer.

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
        row.fingerprint, row.response, row.order = fingerprint, None, None
        row.created_at = timezone.now()
        row.save(update_fields=["fingerprint", "response", "order", "created_at"])
        return None
    if row.fingerprint != fingerprint:
        raise errors.IdempotencyConflict(
            "This Idempotency-Key was already used with a different request body."
        )
    return row


def order_create(
    *,
    buyer: User,
    application_id: int,
    operator: str = "normal",
    custom_user_id: str | None = None,
    idempotency: Idempotency | None = None,
    carrier: str | None = None,
    max_price: int | None = None,
) -> OrderCreated:
    """Hand the buyer a free number (of the mobile `carrier`, if given) and hold the price
    in escrow.

    Errors in the contract's order: invalid_request (no price for the operator),
    not_found, too_many_active_orders, rate_limited (scan guard), price_above_max (only
    with `max_price`), insufficient_balance, out_of_stock."""
    now = timezone.now()
    wanted = placing.OrderWanted(
        buyer_id=buyer.pk,
        application_id=application_id,
        operator=operator,
        custom_user_id=custom_user_id,
        now=now,
        expires_at=now + timedelta(seconds=settings.ORDER_TTL_SECONDS),
        online_since=now - timedelta(seconds=settings.MODEM_ONLINE_SECONDS),
        rest_since=now - timedelta(seconds=settings.NUMBER_REST_SECONDS),
        carrier=carrier,
        max_price=max_price,
        start=placing.next_start(),
        explore=random.random() * 100 < settings.ROUTING_EXPLORATION_PERCENT,
    )
    if writes_in_one_statement() and idempotency is None:
        # The usual order, in one statement; anything it cannot decide alone (an error,
        # a race) goes on to the transaction below, which writes nothing twice.
        order = placing.order_at_once(wanted, since=now - SCAN_GUARD_WINDOW)
        if order is not None:
            return OrderCreated(order)
    for pause in (0, *MODEM_RETRY_PAUSES):
        time.sleep(pause)
        try:
            return _order_in_transaction(wanted, buyer, idempotency)
        except _ModemsTaken as taken:
            busy = taken
    raise _out_of_stock(operator, busy.name)


class _ModemsTaken(Exception):
    """Free modems exist, but other transactions held every one the order picked."""

    def __init__(self, name: str) -> None:
        self.name = name  # the application's


def _out_of_stock(operator: str, name: str) -> errors.OutOfStock:
    return errors.OutOfStock(
        _(
            "No %(operator)s number is available for %(application)s right now; try again "
            "shortly or another operator."
        )
        % {"operator": _operator_label(operator), "application": name}
    )


def _operator_label(operator: str) -> str:
    return str(Operator(operator).label).lower() if operator in Operator.values else operator


def _order_in_transaction(
    wanted: placing.OrderWanted, buyer: User, idempotency: Idempotency | None
) -> OrderCreated:
    """`order_create` as one transaction: the checks with the buyer's wallet locked, then the
    order and its hold (and the idempotency key's answer)."""
    application_id, operator, custom_user_id = (
        wanted.application_id,
        wanted.operator,
        wanted.custom_user_id,
    )
    with transaction.atomic():
        context = _order_context(wanted)
        _refuse_unless(context, wanted, ("priced", "enabled"))
        if idempotency is not None:
            fingerprint = _fingerprint(
                application_id=application_id, operator=operator, custom_user_id=custom_user_id
            )
            remembered = _idempotency_claim(buyer, idempotency.key, fingerprint)
            if remembered is not None:
                assert remembered.order is not None  # saved with the response it answered
                return OrderCreated(remembered.order, remembered.response, replayed=True)
        _refuse_unless(
            context, wanted, ("under_limit", "not_scanning", "within_max_price", "affordable")
        )
        assert context.price is not None  # "priced" passed
        order = _order_on_free_modem(wanted, name=context.name, price=context.price)
        if idempotency is None:
            return OrderCreated(order)
        answer = idempotency.render(order)
        IdempotencyKey.objects.filter(buyer=buyer, key=idempotency.key).update(
            response=answer, order=order
        )
    return OrderCreated(order, answer)


def _order_context(wanted: placing.OrderWanted) -> placing.OrderContext:
    """What deciding the order reads, its wallet locked. A buyer who never topped up has
    no wallet yet: an empty one is made, so that the same checks decide."""
    read = functools.partial(
        placing.order_context,
        buyer_id=wanted.buyer_id,
        application_id=wanted.application_id,
        operator=wanted.operator,
        now=wanted.now,
        since=wanted.now - SCAN_GUARD_WINDOW,
        max_price=wanted.max_price,
    )
    context = read()
    if context is None:
        if not Application.objects.filter(pk=wanted.application_id).exists():
            raise errors.NotFound(
                _("There is no application %(id)s.") % {"id": wanted.application_id}
            )
        billing.wallet_of(wanted.buyer_id)
        context = read()
        assert context is not None  # the application and the wallet exist
    return context


def _refuse_unless(
    context: placing.OrderContext,
    wanted: placing.OrderWanted,
    checks: tuple[str, ...],
) -> None:
    """The error of the first of `checks` (placing.CHECKS) the order fails."""
    failed = next((name for name in checks if not context.passed[name]), None)
    if failed == "priced":
        message = _("%(application)s has no price for the %(operator)s operator.") % {
            "application": context.name,
            "operator": wanted.operator,
        }
        raise errors.InvalidRequest(message, fields={"operator": [message]})
    if failed == "enabled":
        raise errors.NotFound(
            _("%(application)s is not available right now.") % {"application": context.name}
        )
    if failed == "under_limit":
        raise errors.TooManyActiveOrders(
            _(
                "You already have %(pending)s pending orders (the limit is %(limit)s); "
                "finish or cancel one first."
            )
            % {"pending": context.pending, "limit": settings.MAX_ACTIVE_ORDERS}
        )
    if failed == "not_scanning":
        raise errors.RateLimited(
            _(
                "%(unanswered)s of your last %(closed)s orders received no SMS: ordering is "
                "paused for this account to stop number scanning. It resumes as those orders "
                "age; contact support if this is a mistake."
            )
            % {
                "unanswered": context.recent_closed - context.recent_answered,
                "closed": context.recent_closed,
            },
            retry_after=SCAN_GUARD_RETRY_AFTER,
        )
    if failed == "within_max_price":
        assert context.price is not None  # "priced" comes first
        raise errors.PriceAboveMax(
            _("The price %(price)s is above the highest price asked, %(max)s.")
            % {"price": context.price, "max": wanted.max_price},
            price=context.price,
        )
    if failed == "affordable":
        raise errors.InsufficientBalance(
            _("Balance %(balance)s is below the price %(price)s.")
            % {"balance": context.balance, "price": context.price},
            balance=context.balance,
            price=context.price,
        )


def _order_on_free_modem(wanted: placing.OrderWanted, *, name: str, price: int) -> Order:
    """Insert the order on a free modem, skipping modems other transactions hold, and
    hold its price in escrow.

    The partial unique constraint on open (application, modem) orders catches what the
    skip-locked read cannot see: under READ COMMITTED, a modem whose order another
    transaction has just committed. Then the pick runs again, and sees that order."""
    hold_in_same_statement = writes_in_one_statement()
    for _attempt in range(MODEM_PICKS):
        placed = placing.order_on_free_modem(
            wanted, price=price, hold_in_same_statement=hold_in_same_statement
        )
        if placed is None:
            raise _out_of_stock(wanted.operator, name)
        if placed.order is not None:
            if not placed.price_held:
                billing.hold(
                    reference=f"order:{placed.order.pk}:hold", buyer=wanted.buyer_id, amount=price
                )
            return placed.order
    raise _ModemsTaken(name)


def _own_order(buyer: User, order_id: int) -> Order:
    order = Order.objects.filter(pk=order_id, buyer=buyer).first()
    if order is None:
        raise errors.NotFound(_("There is no order %(id)s.") % {"id": order_id})
    return order


def order_cancel(*, buyer: User, order_id: int) -> Order:
    """Cancel a pending order and refund its price. Safe to repeat."""
    now = timezone.now()
    # On PostgreSQL the cancel and its refund are one statement that undoes itself if the
    # refund cannot be booked: no transaction around it, so the escrow row it updates is
    # locked for that statement only, not for a round trip more until COMMIT.
    in_one = writes_in_one_statement()
    with contextlib.nullcontext() if in_one else transaction.atomic():
        cancelled = cancelling.cancel_pending(
            order_id=order_id, buyer_id=buyer.pk, now=now, release_in_same_statement=in_one
        )
        if cancelled is not None:
            if not cancelled.price_released:
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
        message = _(
            "An SMS has already arrived for this order: there is nothing to refund. Finish it."
        )
    else:
        message = _("The order can no longer be cancelled (%(status)s).") % {
            "status": OrderStatus(state).label
        }
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
        message = _("No SMS has arrived yet: cancel the order instead to get a refund.")
    else:
        message = _("The order cannot be finished (%(status)s).") % {
            "status": OrderStatus(state).label
        }
    raise errors.InvalidState(message)


def order_another_sms(*, buyer: User, order_id: int) -> Order:
    """The buyer wants another SMS on a completed order (the sms-activate dialect's
    setStatus 3): remember the last message they have, and wait for a newer one. A pending
    order waits anyway. Safe to repeat."""
    latest = OrderMessage.objects.filter(order=OuterRef("pk")).order_by("-id").values("id")[:1]
    Order.objects.filter(
        pk=order_id, buyer=buyer, status=OrderStatus.COMPLETED, expires_at__gt=timezone.now()
    ).update(another_sms_after=Subquery(latest))
    order = _own_order(buyer, order_id)
    state = order.effective_status
    if state in (OrderStatus.PENDING, OrderStatus.COMPLETED):
        return order
    raise errors.InvalidState(
        _("No other SMS will come for this order (%(status)s).")
        % {"status": OrderStatus(state).label}
    )


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


def numbers_rest(*, now: datetime | None = None) -> tuple[int, int]:
    """Write which numbers rest from which application (`NumberRecord.resting`, what the
    stock follows) from the rule the pick reads (free_modems.resting): after the expiry,
    every minute. (started, ended)."""
    now = now or timezone.now()
    since = as_stored(now - timedelta(seconds=settings.NUMBER_REST_SECONDS))
    starts, ends = free_modems.rest_updates(settings.NUMBER_REST_AFTER_FAILURES)
    with connection.cursor() as cursor:
        cursor.execute(starts, {"since": since})
        started = cursor.rowcount
        cursor.execute(ends, {"since": since})
        return started, cursor.rowcount


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
        modem = inbound.lock_modem(reseller_id=reseller.pk, uid=uid)
        if modem is None:
            raise errors.NotFound(f"There is no modem {uid}; sync it first.")
        modem_id, line_number = modem
        duplicate = inbound.duplicate_sms(
            modem_id=modem_id,
            reseller_id=reseller.pk,
            sender=sender,
            text=text,
            message_id=message_id,
            since=now - DUPLICATE_SMS_WINDOW,
        )
        if duplicate is not None:
            return _result_of(duplicate)
        candidates = inbound.open_orders_on_line(
            modem_id=modem_id, phone_number=line_number, now=now, received_at=received_at
        )
        # Each candidate with the code found for it, best first. The SMS row is stored with
        # the first one's code, which is the code of the match unless that order closes
        # under us (then the next candidate's code is written instead).
        coded = matching.coded(candidates, sender, text)
        expected_otp = matching.expected_code(coded, sender, text)
        sms = inbound.insert_sms(
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
    won: int  # whether the statement completed it, or how many rows the update changed
    if order.status == OrderStatus.PENDING:
        share = billing.reseller_share(order.price)
        won = inbound.complete_pending(
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
