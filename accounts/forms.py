"""Forms of the account pages: sign-up, throttled log-in, callback settings, confirmations."""

import hashlib
import zoneinfo
from typing import TYPE_CHECKING, Any

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from zerotp.client_address import client_address
from zerotp.throttling import cache_count


class SignupForm(forms.Form):
    email = forms.EmailField(
        label=_("Email"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )
    password1 = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_("At least 8 characters; not only digits, not a common password."),
    )
    password2 = forms.CharField(
        label=_("Password again"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean_email(self) -> str:
        return self.cleaned_data["email"].strip().lower()

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        assert data is not None  # forms.Form.clean returns cleaned_data
        first, second = data.get("password1"), data.get("password2")
        if first and second and first != second:
            self.add_error("password2", _("The two passwords differ."))
        elif first:
            try:
                password_validation.validate_password(first, User(email=data.get("email") or ""))
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        return data


def _failures_key(email: str, ip: str) -> str:
    digest = hashlib.sha256(f"{email.strip().lower()}|{ip}".encode()).hexdigest()
    return f"login-failures:{digest}"


# The mixin's own base for the type checker only: at run time it is a plain mixin, put
# before an AuthenticationForm (whose cleaned_data, request and clean() it uses).
if TYPE_CHECKING:
    _AuthenticationFormMixin = AuthenticationForm
else:
    _AuthenticationFormMixin = object


class ThrottledLogin(_AuthenticationFormMixin):
    """Refuse a log-in for a while after LOGIN_FAILURES_MAX failures for the same email from
    the same address within LOGIN_FAILURES_WINDOW_SECONDS. Counted in the shared cache so
    that every worker sees the same count. Mixed into an AuthenticationForm."""

    throttled_message = _(
        "Too many failed log-ins for this email. Wait %(minutes)s minutes, or reset your password."
    )

    def clean(self) -> dict[str, Any]:
        email = self.cleaned_data.get("username")
        if not email:
            return super().clean()
        key = _failures_key(email, client_address(self.request) if self.request else "unknown")
        window = settings.LOGIN_FAILURES_WINDOW_SECONDS
        if cache.get(key, 0) >= settings.LOGIN_FAILURES_MAX:
            raise forms.ValidationError(
                self.throttled_message, code="throttled", params={"minutes": -(-window // 60)}
            )
        try:
            data = super().clean()
        except forms.ValidationError:
            cache_count(key, window_seconds=window)  # the window starts at the first failure
            raise
        cache.delete(key)
        return data


class LoginForm(ThrottledLogin, AuthenticationForm):
    username = forms.EmailField(
        label=_("Email"),
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": _("That email and password do not match an account."),
    }

    def clean_username(self) -> str:
        return self.cleaned_data["username"].strip().lower()


class AdminLoginForm(ThrottledLogin, AdminAuthenticationForm):
    """The admin's own log-in form with the same throttle (`admin.site.login_form`)."""

    def clean_username(self) -> str:
        return self.cleaned_data["username"].strip().lower()


class CallbackSettingsForm(forms.Form):
    callback_url = forms.CharField(
        label=_("Callback URL"),
        required=False,
        max_length=2000,
        widget=forms.URLInput(attrs={"placeholder": "https://your-app.example/otp"}),
        help_text=_("We POST every OTP to this address. Leave empty to turn callbacks off."),
    )
    callback_enabled = forms.BooleanField(
        label=_("Send callbacks"),
        required=False,
        help_text=_("Switch off to pause callbacks without forgetting the URL."),
    )


class ConfirmForm(forms.Form):
    """A required tick box: the no-JavaScript confirmation of an action that can't be undone."""

    confirm = forms.BooleanField(
        required=True,
        error_messages={"required": _("Tick the box to confirm.")},
    )

    def __init__(self, *args: Any, label: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["confirm"].label = label


# Indonesia's three zones first, then every zone the zone database knows.
_INDONESIA = [
    ("Asia/Jakarta", _("Western Indonesia (WIB, Jakarta)")),
    ("Asia/Makassar", _("Central Indonesia (WITA, Makassar)")),
    ("Asia/Jayapura", _("Eastern Indonesia (WIT, Jayapura)")),
]


def _time_zone_choices() -> list[tuple[Any, Any]]:
    others = sorted(zoneinfo.available_timezones() - {name for name, _label in _INDONESIA})
    return [(_("Indonesia"), _INDONESIA), (_("All zones"), [(name, name) for name in others])]


class TimeZoneForm(forms.ModelForm):
    time_zone = forms.ChoiceField(label=_("Time zone"), choices=_time_zone_choices)

    class Meta:
        model = User
        fields = ["time_zone"]
