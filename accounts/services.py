"""Writes on accounts: creation, keys, reseller status and callback settings."""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.callback_url import CallbackUrlError, check_callback_url
from accounts.keys import (
    AGENT_KEY_PREFIX,
    API_KEY_PREFIX,
    key_digest,
    new_callback_secret,
    new_key,
)
from accounts.models import ApiKey, User
from zerotp import errors

# How long a rotated-out callback secret keeps signing beside the new one.
CALLBACK_SECRET_GRACE = timedelta(hours=24)

_PREFIXES = {ApiKey.Kind.API: API_KEY_PREFIX, ApiKey.Kind.AGENT: AGENT_KEY_PREFIX}


@dataclass(frozen=True)
class IssuedKey:
    """A key as shown once: the full secret is never stored, only its digest."""

    record: ApiKey
    key: str


def key_issue(*, user: User, kind: str) -> IssuedKey:
    """A new key of that kind for the user; the previous one stops working at once."""
    prefix = _PREFIXES[ApiKey.Kind(kind)]
    key = new_key(prefix)
    with transaction.atomic():
        # Two regenerations at once (a double click) queue on the user's row instead of
        # both inserting a live key and one hitting the one-live-key constraint.
        list(User.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True))
        now = timezone.now()
        ApiKey.objects.filter(user=user, kind=kind, revoked_at__isnull=True).update(revoked_at=now)
        record = ApiKey.objects.create(
            user=user, kind=kind, prefix=prefix, last4=key[-4:], digest=key_digest(key)
        )
    return IssuedKey(record=record, key=key)


def key_revoke(*, user: User, kind: str) -> int:
    return ApiKey.objects.filter(user=user, kind=kind, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )


def key_authenticate(*, key: str, kind: str) -> ApiKey | None:
    """The live key (with its user), or None. One indexed query on the digest."""
    if not key or len(key) > 200 or not key.startswith(_PREFIXES[ApiKey.Kind(kind)]):
        return None
    record = (
        ApiKey.objects.select_related("user")
        .filter(digest=key_digest(key), kind=kind, revoked_at__isnull=True)
        .first()
    )
    return record


@dataclass(frozen=True)
class NewAccount:
    user: User
    api_key: str | None
    agent_key: str | None


def account_create(
    *,
    email: str,
    password: str | None = None,
    is_reseller: bool = False,
    is_staff: bool = False,
    with_api_key: bool = False,
) -> NewAccount:
    """A new account, with an agent key for a reseller. An API key only when the caller
    shows it to the person (a command's output, a test): one never seen is only a risk, and
    the API page creates the first one."""
    email = User.objects.normalize_email(email.strip()).lower()
    with transaction.atomic():
        if User.objects.filter(email__iexact=email).exists():
            raise errors.InvalidRequest(
                _("An account for %(email)s already exists.") % {"email": email}
            )
        try:
            with transaction.atomic():
                user = User.objects.create_user(
                    email, password, is_reseller=is_reseller, is_staff=is_staff
                )
        except IntegrityError:
            raise errors.InvalidRequest(
                _("An account for %(email)s already exists.") % {"email": email}
            ) from None
        api_key = key_issue(user=user, kind=ApiKey.Kind.API).key if with_api_key else None
        agent_key = key_issue(user=user, kind=ApiKey.Kind.AGENT).key if is_reseller else None
    return NewAccount(user=user, api_key=api_key, agent_key=agent_key)


def reseller_enable(*, user: User) -> IssuedKey:
    """Make the user a reseller and hand out a fresh agent key."""
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(is_reseller=True)
        user.is_reseller = True
        return key_issue(user=user, kind=ApiKey.Kind.AGENT)


def callback_settings_update(
    *,
    user: User,
    callback_url: str | None = None,
    set_url: bool = False,
    callback_enabled: bool | None = None,
    rotate_secret: bool = False,
) -> User:
    """Change the "API & Callback" settings; a refused URL changes nothing."""
    fields: list[str] = []
    if set_url:
        if callback_url:
            try:
                callback_url = check_callback_url(
                    callback_url, allow_private=settings.CALLBACK_ALLOW_PRIVATE
                )
            except CallbackUrlError as exc:
                raise errors.InvalidRequest(str(exc), fields={"callback_url": [str(exc)]}) from None
        user.callback_url = callback_url or ""
        fields.append("callback_url")
    if callback_enabled is not None:
        user.callback_enabled = callback_enabled
        fields.append("callback_enabled")
    if rotate_secret:
        user.callback_secret_previous = user.callback_secret
        user.callback_secret_previous_until = timezone.now() + CALLBACK_SECRET_GRACE
        user.callback_secret = new_callback_secret()
        fields += ["callback_secret", "callback_secret_previous", "callback_secret_previous_until"]
    if fields:
        user.save(update_fields=fields)
    return user
