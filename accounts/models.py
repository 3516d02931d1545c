import zoneinfo
from typing import ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.keys import new_callback_secret

# The first users are in Indonesia's western zone (WIB, UTC+7).
DEFAULT_TIME_ZONE = "Asia/Jakarta"


def validate_time_zone(name: str) -> None:
    if name not in zoneinfo.available_timezones():
        raise ValidationError(_("%(name)s is not a time zone."), params={"name": repr(name)})


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: object) -> "User":
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: object) -> "User":
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """An account: a buyer, and also a reseller once `is_reseller` is set."""

    email = models.EmailField(unique=True, verbose_name=_("email"))
    is_active = models.BooleanField(
        default=True,
        help_text=_("Disabled accounts are refused everywhere, API included."),
        verbose_name=_("active"),
    )
    is_staff = models.BooleanField(default=False, verbose_name=_("staff status"))
    is_reseller = models.BooleanField(default=False, verbose_name=_("reseller"))
    date_joined = models.DateTimeField(default=timezone.now, verbose_name=_("date joined"))
    # The zone the pages show times in (accounts.middleware activates it per request).
    # db_default too: rows written by SQL (the bench's COPY) get it as well.
    time_zone = models.CharField(
        max_length=64,
        default=DEFAULT_TIME_ZONE,
        db_default=DEFAULT_TIME_ZONE,
        validators=[validate_time_zone],
        verbose_name=_("time zone"),
    )

    # "API & Callback" settings
    callback_url = models.CharField(
        max_length=2000, blank=True, default="", verbose_name=_("callback URL")
    )
    callback_enabled = models.BooleanField(default=True, verbose_name=_("callback enabled"))
    callback_secret = models.CharField(
        max_length=100, default=new_callback_secret, verbose_name=_("callback secret")
    )
    # After a rotation the previous secret keeps signing until this moment.
    callback_secret_previous = models.CharField(
        max_length=100, blank=True, default="", verbose_name=_("previous callback secret")
    )
    callback_secret_previous_until = models.DateTimeField(
        null=True, blank=True, verbose_name=_("previous callback secret valid until")
    )

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.email


class ApiKey(models.Model):
    """A buyer API key or a reseller agent key. Only the digest is stored."""

    class Kind(models.TextChoices):
        API = "api", _("API key")
        AGENT = "agent", _("Agent key")

    user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="keys", verbose_name=_("user")
    )
    kind = models.CharField(max_length=8, choices=Kind.choices, verbose_name=_("kind"))
    prefix = models.CharField(max_length=16, verbose_name=_("prefix"))
    last4 = models.CharField(max_length=4, verbose_name=_("last 4 characters"))
    digest = models.CharField(max_length=64, unique=True, verbose_name=_("digest"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))
    revoked_at = models.DateTimeField(null=True, blank=True, verbose_name=_("revoked at"))

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "kind"],
                condition=models.Q(revoked_at__isnull=True),
                name="accounts_one_live_key_per_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.prefix}…{self.last4}"

    @property
    def masked(self) -> str:
        return f"{self.prefix}…{self.last4}"
