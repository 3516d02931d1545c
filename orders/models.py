import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from modems.carriers import CARRIER_MAX_LENGTH
from modems.models import InboundSms, Modem, Operator


def validate_patterns(value: str) -> None:
    for line in value.splitlines():
        if line.strip():
            try:
                re.compile(line.strip())
            except re.error as exc:
                raise ValidationError(
                    f"{line.strip()!r} is not a valid regular expression: {exc}"
                ) from None


class Application(models.Model):
    """A service buyers order numbers for (WhatsApp, Telegram, ...)."""

    name = models.CharField(max_length=100)
    code = models.SlugField(max_length=50, unique=True)
    service_code = models.CharField(
        max_length=16,
        validators=[RegexValidator(r"^[a-z0-9]+$", "Lower-case letters and digits only.")],
        unique=True,
        null=True,
        blank=True,
        help_text=(
            "The sms-activate protocol's short code for this service (wa, tg, go, ...), "
            "which existing bots send; docs/SMS-ACTIVATE.md lists them. Blank: reachable "
            "there by its code above only."
        ),
    )
    enabled = models.BooleanField(default=True)
    sender_patterns = models.TextField(
        blank=True,
        default="",
        validators=[validate_patterns],
        help_text=(
            "One case-insensitive regular expression per line, looked for in the SMS sender "
            "and text (use word boundaries: \\bwa\\b). No patterns: the application takes "
            "any SMS."
        ),
    )
    otp_pattern = models.CharField(
        max_length=255,
        blank=True,
        default="",
        validators=[validate_patterns],
        help_text="Optional regular expression for this application's code; its first group wins.",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("application")
        verbose_name_plural = _("applications")
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name

    @property
    def patterns(self) -> list[str]:
        return [line.strip() for line in self.sender_patterns.splitlines() if line.strip()]


class ApplicationPrice(models.Model):
    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="prices")
    operator = models.CharField(max_length=8, choices=Operator.choices)
    price = models.PositiveIntegerField(help_text="In rupiah.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["application", "operator"], name="orders_one_price_per_operator"
            ),
            models.CheckConstraint(condition=models.Q(price__gt=0), name="orders_price_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.application} {self.operator}: {self.price}"


class OrderStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    COMPLETED = "completed", _("Completed")
    FINISHED = "finished", _("Finished")
    CANCELLED = "cancelled", _("Cancelled")
    EXPIRED = "expired", _("Expired")


OPEN_STATUSES = (OrderStatus.PENDING, OrderStatus.COMPLETED)
# A number that reached these for an application is never offered for it again.
USED_STATUSES = (OrderStatus.COMPLETED, OrderStatus.FINISHED)


class Order(models.Model):
    # No index of their own: orders_buyer_idx starts with the buyer, and an application's
    # orders are only ever looked up with the number or the modem (indexes below). Every
    # index is one more entry to write on each order insert and status change.
    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders", db_index=False
    )
    application = models.ForeignKey(
        Application, on_delete=models.PROTECT, related_name="orders", db_index=False
    )
    operator = models.CharField(max_length=8, choices=Operator.choices)
    modem = models.ForeignKey(Modem, on_delete=models.PROTECT, related_name="orders")
    # No index either: what a reseller served is read through their modems.
    reseller = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="served_orders",
        db_index=False,
    )
    phone_number = models.CharField(max_length=15)
    price = models.PositiveIntegerField()
    reseller_share = models.PositiveIntegerField(null=True, blank=True)
    custom_user_id = models.CharField(max_length=64, null=True, blank=True)
    status = models.CharField(
        max_length=10, choices=OrderStatus.choices, default=OrderStatus.PENDING
    )
    otp_code = models.CharField(max_length=32, null=True, blank=True)
    sms_text = models.TextField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # The sms-activate dialect's "another SMS" (setStatus 3): the last message the buyer had
    # then; its getStatus waits for a newer one. Null: never asked.
    another_sms_after = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        constraints = [
            # One modem never holds two open orders for one application, whatever the race.
            # Application first: picking a free modem looks up one application's open
            # orders, modem by modem.
            models.UniqueConstraint(
                fields=["application", "modem"],
                condition=models.Q(status__in=["pending", "completed"]),
                name="orders_one_open_order_per_modem_app",
            ),
            # Nor does a number, wherever it is now: its open order follows it from modem to
            # modem. Looked up by number (an SMS on the line) and by number and
            # application (handing out a modem, the catalogue's stock).
            models.UniqueConstraint(
                fields=["phone_number", "application"],
                condition=models.Q(status__in=["pending", "completed"]),
                name="orders_one_open_order_per_number_app",
            ),
            # A number serves an application once, ever: the free-modem rule, which the
            # pick and the catalogue's stock count on (orders/statements/free_modems.py).
            models.UniqueConstraint(
                fields=["phone_number", "application"],
                condition=models.Q(status__in=["completed", "finished"]),
                name="orders_number_serves_app_once",
            ),
            models.CheckConstraint(
                condition=models.Q(price__gt=0), name="orders_price_positive_order"
            ),
        ]
        indexes = [
            models.Index(fields=["buyer", "-id"], name="orders_buyer_idx"),
            models.Index(fields=["buyer", "status", "-id"], name="orders_buyer_status_idx"),
            models.Index(
                fields=["expires_at"],
                condition=models.Q(status__in=["pending", "completed"]),
                name="orders_open_expiry_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"order {self.pk} ({self.application_id}, {self.status})"

    @property
    def effective_status(self) -> str:
        """The status as the clock sees it: the expiry job may not have run yet."""
        if self.status in OPEN_STATUSES and timezone.now() >= self.expires_at:
            return (
                OrderStatus.EXPIRED if self.status == OrderStatus.PENDING else OrderStatus.FINISHED
            )
        return self.status


class StockCount(models.Model):
    """The catalogue's stock, kept up to date by database triggers on modems and orders
    (orders/statements/stock_counts.py), so that reading it costs the same whatever the
    history: per operator and carrier, `application_id` 0 counts the orderable modems and
    any other the orderable modems an order of that application blocks."""

    application_id = models.PositiveIntegerField()  # no foreign key: 0 is "every modem"
    operator = models.CharField(max_length=8, choices=Operator.choices)
    carrier = models.CharField(max_length=CARRIER_MAX_LENGTH, blank=True)
    modems = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["application_id", "operator", "carrier"], name="orders_stock_count_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.application_id} {self.operator} {self.carrier}: {self.modems}"


class StockCountChange(models.Model):
    """A change to a `StockCount` not added in yet (PostgreSQL): the triggers only insert
    these, so concurrent orders never wait for each other on a count row, and never hold
    one while they wait for the escrow row; reading the stock adds them in."""

    application_id = models.PositiveIntegerField()
    operator = models.CharField(max_length=8, choices=Operator.choices)
    carrier = models.CharField(max_length=CARRIER_MAX_LENGTH, blank=True)
    modems = models.IntegerField()

    def __str__(self) -> str:
        return f"{self.application_id} {self.operator} {self.carrier}: {self.modems:+}"


class DeliveryCount(models.Model):
    """How the orders of one application and pool placed in one hour ended: per bucket of
    seconds from the order to its first SMS (`bucket` -1: none came, the order was
    cancelled or expired), how many. Kept by a trigger as orders end
    (orders/statements/deliverability.py); the services list reads the last day and week
    from here, never from the orders."""

    application_id = models.PositiveIntegerField()  # no foreign key: kept by SQL
    operator = models.CharField(max_length=8, choices=Operator.choices)
    hour = models.DateTimeField()
    bucket = models.SmallIntegerField()
    orders = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "application_id", "operator", "bucket"],
                name="orders_delivery_count_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.application_id} {self.operator} {self.hour:%Y-%m-%d %H}h: {self.orders}"


class DeliveryCountChange(models.Model):
    """A `DeliveryCount` change not added in yet (PostgreSQL), as for the stock: the
    trigger only inserts, so orders ending at once never wait on a count row."""

    application_id = models.PositiveIntegerField()
    operator = models.CharField(max_length=8, choices=Operator.choices)
    hour = models.DateTimeField()
    bucket = models.SmallIntegerField()
    orders = models.IntegerField()

    def __str__(self) -> str:
        return f"{self.application_id} {self.operator} {self.hour:%Y-%m-%d %H}h: {self.orders:+}"


class NumberRecord(models.Model):
    """How one number has served one application: its decided orders, delivered or not,
    and how many failed in a row since its last code.
    Kept by the deliverability trigger (orders/statements/deliverability.py) as orders
    leave pending: what resting a number that keeps failing, and preferring numbers that
    deliver, read (orders/statements/free_modems.py)."""

    phone_number = models.CharField(max_length=15)
    application_id = models.PositiveIntegerField()  # no foreign key: kept by SQL
    delivered = models.IntegerField(default=0)
    failed = models.IntegerField(default=0)
    failed_in_a_row = models.IntegerField(default=0)
    last_failed_at = models.DateTimeField(null=True, blank=True)
    # Resting from the application now, as the expiry job last wrote it (the stock follows
    # it; the pick reads the rest's condition itself).
    resting = models.BooleanField(db_default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["phone_number", "application_id"], name="orders_number_record_key"
            ),
        ]
        indexes = [
            # The resting ones, for the job that ends rests. Nothing indexes the counts or
            # the last failure: every decided order updates them, which then stays a HOT
            # update (no index entry to add); the job finds rests that start by a scan,
            # once a minute.
            models.Index(
                fields=["id"], condition=models.Q(resting=True), name="orders_number_resting_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.phone_number} for {self.application_id}: {self.delivered}/{self.failed}"


class OrderMessage(models.Model):
    """An inbound SMS matched to an order."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="messages")
    sms = models.OneToOneField(InboundSms, on_delete=models.PROTECT, related_name="match")
    otp_code = models.CharField(max_length=32)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.otp_code}"


class IdempotencyKey(models.Model):
    """A remembered `Idempotency-Key` of an order creation: the order, and the first answer
    as it was sent (text, so that a retry gets it back byte for byte)."""

    buyer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    order = models.ForeignKey(
        "Order", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    response = models.TextField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("idempotency key")
        verbose_name_plural = _("idempotency keys")
        constraints = [
            models.UniqueConstraint(fields=["buyer", "key"], name="orders_idempotency_key_unique"),
        ]

    def __str__(self) -> str:
        return self.key


class CallbackDelivery(models.Model):
    """One callback to a buyer's URL (an outbox row): written in the transaction that
    matched the SMS, sent after commit by the job queue, retried until delivered or failed.

    The body is frozen at that moment, byte for byte, so that every retry and resend
    carries the same signed content under the same `webhook_id`."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    class Event(models.TextChoices):
        OTP_RECEIVED = "otp.received", "OTP received"
        TEST = "test", "Test"

    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="callback_deliveries"
    )
    order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.CASCADE, related_name="callbacks"
    )
    event = models.CharField(max_length=16, choices=Event.choices)
    webhook_id = models.CharField(max_length=40, unique=True)
    body = models.TextField(help_text="The JSON body exactly as signed and sent.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # A worker that claims the delivery holds it until then; if it dies, the sweep takes
    # the delivery again after this moment (and sends the same webhook-id again).
    leased_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("callback delivery")
        verbose_name_plural = _("callback deliveries")
        indexes = [
            models.Index(fields=["buyer", "-id"], name="orders_callback_buyer_idx"),
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status="pending"),
                name="orders_callback_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.webhook_id} ({self.status})"


class CallbackAttempt(models.Model):
    delivery = models.ForeignKey(
        CallbackDelivery, on_delete=models.CASCADE, related_name="attempt_log"
    )
    at = models.DateTimeField(default=timezone.now)
    url = models.CharField(max_length=2000, blank=True, default="")
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    response_body = models.TextField(blank=True, default="", help_text="The first 1 KB.")

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.delivery.webhook_id} at {self.at}: {self.status_code or self.error}"


class JobRun(models.Model):
    """When a periodic job last finished cleanly (the expiry sweep, `manage.py
    ledger_check`): one row per job, overwritten each time. `/readyz` and `/metrics` read
    it; a table rather than the cache, which may evict or cull the row."""

    class Job(models.TextChoices):
        EXPIRY_SWEEP = "expiry_sweep", "Expiry sweep"
        LEDGER_CHECK = "ledger_check", "Ledger check"

    name = models.CharField(max_length=64, primary_key=True, choices=Job.choices)
    succeeded_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.succeeded_at}"
