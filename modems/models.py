from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from modems.carriers import CARRIER_MAX_LENGTH


class Operator(models.TextChoices):
    """The operator pool a modem serves and a buyer orders from."""

    NORMAL = "normal", _("Normal")
    PROMO = "promo", _("Promo")
    SPECIAL = "special", _("Special")


class ModemQuerySet(models.QuerySet["Modem"]):
    def online(self) -> "ModemQuerySet":
        since = timezone.now() - timedelta(seconds=settings.MODEM_ONLINE_SECONDS)
        return self.filter(last_heartbeat_at__gte=since)


class Modem(models.Model):
    reseller = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="modems",
        verbose_name=_("reseller"),
    )
    uid = models.CharField(
        max_length=64,
        help_text=_("The agent's name for the modem, e.g. COM3."),
        verbose_name=_("UID"),
    )
    phone_number = models.CharField(
        max_length=15, null=True, blank=True, verbose_name=_("phone number")
    )
    provider = models.CharField(max_length=64, blank=True, default="", verbose_name=_("provider"))
    carrier = models.CharField(
        max_length=CARRIER_MAX_LENGTH,
        blank=True,
        default="",
        editable=False,
        help_text=_("The provider as the sms-activate protocol names carriers (telkomsel, ...)."),
        verbose_name=_("carrier"),
    )
    signal = models.PositiveSmallIntegerField(null=True, blank=True, verbose_name=_("signal"))
    mapping = models.CharField(
        max_length=8,
        choices=Operator.choices,
        default=Operator.NORMAL,
        verbose_name=_("operator pool"),
    )
    can_order = models.BooleanField(default=True, verbose_name=_("can order"))
    disabled = models.BooleanField(
        default=False, help_text=_("Set by staff: never handed out."), verbose_name=_("disabled")
    )
    last_heartbeat_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("last heartbeat at")
    )
    # Set by every heartbeat, cleared by a job a minute after the heartbeats stop
    # (modems.services.modems_mark_offline): what the order pick's index is kept to, so it
    # never walks modems whose agent went silent. Whether a modem is online right now is
    # still its last heartbeat's age (`is_online`), which the pick checks too.
    online = models.BooleanField(default=False, editable=False, verbose_name=_("online"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))
    updated_at = models.DateTimeField(default=timezone.now, verbose_name=_("updated at"))

    objects = ModemQuerySet.as_manager()

    class Meta:
        verbose_name = _("modem")
        verbose_name_plural = _("modems")
        constraints = [
            models.UniqueConstraint(fields=["reseller", "uid"], name="modems_uid_per_reseller"),
            models.UniqueConstraint(
                fields=["phone_number"],
                condition=models.Q(phone_number__isnull=False),
                name="modems_phone_number_unique",
            ),
            models.CheckConstraint(
                condition=models.Q(signal__isnull=True) | models.Q(signal__lte=100),
                name="modems_signal_percent",
            ),
        ]
        indexes = [
            # Not on last_heartbeat_at: a heartbeat rewrites that column on a thousand rows
            # every few seconds, and a column in no index lets PostgreSQL update the rows
            # in place (HOT: no index entries written; see the migration's fillfactor).
            # `online` is in the condition, but a heartbeat leaves it as it was (true) but
            # for a modem coming back, so its updates stay in place too.
            models.Index(
                fields=["mapping", "id"],
                condition=models.Q(
                    online=True, can_order=True, disabled=False, phone_number__isnull=False
                ),
                name="modems_orderable_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.uid} ({self.phone_number or gettext('no number')})"

    @property
    def is_online(self) -> bool:
        if self.last_heartbeat_at is None:
            return False
        age = timezone.now() - self.last_heartbeat_at
        return age <= timedelta(seconds=settings.MODEM_ONLINE_SECONDS)


class InboundSms(models.Model):
    """Every SMS an agent reports, matched or not (the match lives with the order)."""

    # No index of its own: modems_sms_modem_idx starts with the modem.
    modem = models.ForeignKey(
        Modem,
        on_delete=models.PROTECT,
        related_name="messages",
        db_index=False,
        verbose_name=_("modem"),
    )
    reseller = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="inbound_sms",
        verbose_name=_("reseller"),
    )
    phone_number = models.CharField(
        max_length=15, blank=True, default="", verbose_name=_("phone number")
    )
    sender = models.CharField(max_length=100, blank=True, default="", verbose_name=_("sender"))
    text = models.TextField(verbose_name=_("text"))
    message_id = models.CharField(
        max_length=128, null=True, blank=True, verbose_name=_("message ID")
    )
    received_at = models.DateTimeField(default=timezone.now, verbose_name=_("received at"))
    created_at = models.DateTimeField(
        default=timezone.now, db_index=True, verbose_name=_("created at")
    )
    otp_code = models.CharField(
        max_length=32,
        null=True,
        blank=True,
        help_text=_("The code found in the text, if any."),
        verbose_name=_("OTP code"),
    )

    class Meta:
        verbose_name = _("inbound SMS")
        verbose_name_plural = _("inbound SMS")
        constraints = [
            models.UniqueConstraint(
                fields=["reseller", "message_id"],
                condition=models.Q(message_id__isnull=False),
                name="modems_sms_message_id_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["modem", "-created_at"], name="modems_sms_modem_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.sender}: {self.text[:40]}"
