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
                    _("%(line)s is not a valid regular expression: %(error)s"),
                    params={"line": repr(line.strip()), "error": exc},
                ) from None


class Application(models.Model):
    """A service buyers order numbers for (WhatsApp, Telegram, ...)."""

    name = models.CharField(max_length=100, verbose_name=_("name"))
    code = models.SlugField(max_length=50, unique=True, verbose_name=_("code"))
    service_code = models.CharField(
        max_length=16,
        validators=[RegexValidator(r"^[a-z0-9]+$", _("Lower-case letters and digits only."))],
        unique=True,
        null=True,
        blank=True,
        help_text=_(
            "The sms-activate protocol's short code for this service (wa, tg, go, ...), "
            "which existing bots send; docs/SMS-ACTIVATE.md lists them. Blank: reachable "
            "there by its code above only."
        ),
        verbose_name=_("service code"),
    )
    enabled = models.BooleanField(default=True, verbose_name=_("enabled"))
    sender_patterns = models.TextField(
        blank=True,
        default="",
        validators=[validate_patterns],
        help_text=_(
            "One case-insensitive regular expression per line, looked for in the SMS sender "
            "and text (use word boundaries: \\bwa\\b). No patterns: the application takes "
            "any SMS."
        ),
        verbose_name=_("sender patterns"),
    )
    otp_pattern = models.CharField(
        max_length=255,
        blank=True,
        default="",
        validators=[validate_patterns],
        help_text=_(
            "Optional regular expression for this application's code; its first group wins."
        ),
        verbose_name=_("OTP pattern"),
    )
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))

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
    application = models.ForeignKey(
        Application, on_delete=models.CASCADE, related_name="prices", verbose_name=_("application")
    )
    operator = models.CharField(max_length=8, choices=Operator.choices, verbose_name=_("operator"))
    price = models.PositiveIntegerField(help_text=_("In rupiah."), verbose_name=_("price"))

    class Meta:
        verbose_name = _("application price")
        verbose_name_plural = _("application prices")
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
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="orders",
        db_index=False,
        verbose_name=_("buyer"),
    )
    application = models.ForeignKey(
        Application,
        on_delete=models.PROTECT,
        related_name="orders",
        db_index=False,
        verbose_name=_("application"),
    )
    operator = models.CharField(max_length=8, choices=Operator.choices, verbose_name=_("operator"))
    modem = models.ForeignKey(
        Modem, on_delete=models.PROTECT, related_name="orders", verbose_name=_("modem")
    )
    # No index either: what a reseller served is read through their modems.
    reseller = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="served_orders",
        db_index=False,
        verbose_name=_("reseller"),
    )
    phone_number = models.CharField(max_length=15, verbose_name=_("phone number"))
    price = models.PositiveIntegerField(verbose_name=_("price"))
    reseller_share = models.PositiveIntegerField(
        null=True, blank=True, verbose_name=_("reseller share")
    )
    custom_user_id = models.CharField(
        max_length=64, null=True, blank=True, verbose_name=_("custom user ID")
    )
    status = models.CharField(
        max_length=10,
        choices=OrderStatus.choices,
        default=OrderStatus.PENDING,
        verbose_name=_("status"),
    )
    otp_code = models.CharField(max_length=32, null=True, blank=True, verbose_name=_("OTP code"))
    sms_text = models.TextField(null=True, blank=True, verbose_name=_("SMS text"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))
    expires_at = models.DateTimeField(verbose_name=_("expires at"))
    completed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("completed at"))
    closed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("closed at"))
    # The sms-activate dialect's "another SMS" (setStatus 3): the last message the buyer had
    # then; its getStatus waits for a newer one. Null: never asked.
    another_sms_after = models.PositiveBigIntegerField(
        null=True, blank=True, verbose_name=_("another SMS after")
    )

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

    application_id = models.PositiveIntegerField(
        verbose_name=_("application ID")
    )  # no foreign key: 0 is "every modem"
    operator = models.CharField(max_length=8, choices=Operator.choices, verbose_name=_("operator"))
    carrier = models.CharField(max_length=CARRIER_MAX_LENGTH, blank=True, verbose_name=_("carrier"))
    modems = models.IntegerField(default=0, verbose_name=_("modems"))

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

    application_id = models.PositiveIntegerField(verbose_name=_("application ID"))
    operator = models.CharField(max_length=8, choices=Operator.choices, verbose_name=_("operator"))
    carrier = models.CharField(max_length=CARRIER_MAX_LENGTH, blank=True, verbose_name=_("carrier"))
    modems = models.IntegerField(verbose_name=_("modems"))

    def __str__(self) -> str:
        return f"{self.application_id} {self.operator} {self.carrier}: {self.modems:+}"


class DeliveryCount(models.Model):
    """How the orders of one application and pool placed in one hour ended: per bucket of
    seconds from the order to its first SMS (`bucket` -1: none came, the order was
    cancelled or expired), how many. Kept by a trigger as orders end
    (orders/statements/deliverability.py); the services list reads the last day and week
    from here, never from the orders."""

    application_id = models.PositiveIntegerField(
        verbose_name=_("application ID")
    )  # no foreign key: kept by SQL
    operator = models.CharField(max_length=8, choices=Operator.choices, verbose_name=_("operator"))
    hour = models.DateTimeField(verbose_name=_("hour"))
    bucket = models.SmallIntegerField(verbose_name=_("bucket"))
    orders = models.IntegerField(default=0, verbose_name=_("orders"))

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

    application_id = models.PositiveIntegerField(verbose_name=_("application ID"))
    operator = models.CharField(max_length=8, choices=Operator.choices, verbose_name=_("operator"))
    hour = models.DateTimeField(verbose_name=_("hour"))
    bucket = models.SmallIntegerField(verbose_name=_("bucket"))
    orders = models.IntegerField(verbose_name=_("orders"))

    def __str__(self) -> str:
        return f"{self.application_id} {self.operator} {self.hour:%Y-%m-%d %H}h: {self.orders:+}"


class NumberRecord(models.Model):
    """How one number has served one application: its decided orders, delivered or not,
    and how many failed in a row since its last code.
    Kept by the deliverability trigger (orders/statements/deliverability.py) as orders
    leave pending: what resting a number that keeps failing, and preferring numbers that
    deliver, read (orders/statements/free_modems.py)."""

    phone_number = models.CharField(max_length=15, verbose_name=_("phone number"))
    application_id = models.PositiveIntegerField(
        verbose_name=_("application ID")
    )  # no foreign key: kept by SQL
    delivered = models.IntegerField(default=0, verbose_name=_("delivered"))
    failed = models.IntegerField(default=0, verbose_name=_("failed"))
    failed_in_a_row = models.IntegerField(default=0, verbose_name=_("failed in a row"))
    last_failed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("last failed at"))
    # Resting from the application now, as the expiry job last wrote it (the stock follows
    # it; the pick reads the rest's condition itself).
    resting = models.BooleanField(db_default=False, verbose_name=_("resting"))

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

    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, related_name="messages", verbose_name=_("order")
    )
    sms = models.OneToOneField(
        InboundSms, on_delete=models.PROTECT, related_name="match", verbose_name=_("SMS")
    )
    otp_code = models.CharField(max_length=32, verbose_name=_("OTP code"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("order message")
        verbose_name_plural = _("order messages")
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.otp_code}"


class IdempotencyKey(models.Model):
    """A remembered `Idempotency-Key` of an order creation: the order, and the first answer
    as it was sent (text, so that a retry gets it back byte for byte)."""

    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, verbose_name=_("buyer")
    )
    key = models.CharField(max_length=255, verbose_name=_("key"))
    fingerprint = models.CharField(max_length=64, verbose_name=_("fingerprint"))
    order = models.ForeignKey(
        "Order",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("order"),
    )
    response = models.TextField(null=True, blank=True, verbose_name=_("response"))
    created_at = models.DateTimeField(
        default=timezone.now, db_index=True, verbose_name=_("created at")
    )

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
        PENDING = "pending", _("Pending")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")

    class Event(models.TextChoices):
        OTP_RECEIVED = "otp.received", _("OTP received")
        TEST = "test", _("Test")

    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="callback_deliveries",
        verbose_name=_("buyer"),
    )
    order = models.ForeignKey(
        Order,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="callbacks",
        verbose_name=_("order"),
    )
    event = models.CharField(max_length=16, choices=Event.choices, verbose_name=_("event"))
    webhook_id = models.CharField(max_length=40, unique=True, verbose_name=_("webhook ID"))
    body = models.TextField(
        help_text=_("The JSON body exactly as signed and sent."), verbose_name=_("body")
    )
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING, verbose_name=_("status")
    )
    attempts = models.PositiveSmallIntegerField(default=0, verbose_name=_("attempts"))
    next_attempt_at = models.DateTimeField(null=True, blank=True, verbose_name=_("next attempt at"))
    # A worker that claims the delivery holds it until then; if it dies, the sweep takes
    # the delivery again after this moment (and sends the same webhook-id again).
    leased_until = models.DateTimeField(null=True, blank=True, verbose_name=_("leased until"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))
    delivered_at = models.DateTimeField(null=True, blank=True, verbose_name=_("delivered at"))

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
        CallbackDelivery,
        on_delete=models.CASCADE,
        related_name="attempt_log",
        verbose_name=_("delivery"),
    )
    at = models.DateTimeField(default=timezone.now, verbose_name=_("time"))
    url = models.CharField(max_length=2000, blank=True, default="", verbose_name=_("URL"))
    status_code = models.PositiveSmallIntegerField(
        null=True, blank=True, verbose_name=_("status code")
    )
    error = models.CharField(max_length=500, null=True, blank=True, verbose_name=_("error"))
    duration_ms = models.PositiveIntegerField(default=0, verbose_name=_("duration (ms)"))
    response_body = models.TextField(
        blank=True, default="", help_text=_("The first 1 KB."), verbose_name=_("response body")
    )

    class Meta:
        verbose_name = _("callback attempt")
        verbose_name_plural = _("callback attempts")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.delivery.webhook_id} at {self.at}: {self.status_code or self.error}"


class JobRun(models.Model):
    """When a periodic job last finished cleanly (the expiry sweep, `manage.py
    ledger_check`): one row per job, overwritten each time. `/readyz` and `/metrics` read
    it; a table rather than the cache, which may evict or cull the row."""

    class Job(models.TextChoices):
        EXPIRY_SWEEP = "expiry_sweep", _("Expiry sweep")
        LEDGER_CHECK = "ledger_check", _("Ledger check")

    name = models.CharField(
        max_length=64, primary_key=True, choices=Job.choices, verbose_name=_("name")
    )
    succeeded_at = models.DateTimeField(verbose_name=_("succeeded at"))

    def __str__(self) -> str:
        return f"{self.name} at {self.succeeded_at}"
