"""GET and PATCH /api/v1/account: the account and its "API & Callback" settings
(docs/API.md, "GET /api/v1/account and PATCH /api/v1/account" and "Callbacks")."""

import json
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from accounts import callback_url
from accounts.models import User
from accounts.services import account_create
from tests.factories import Agent, Buyer

ACCOUNT = "/api/v1/account"

REFUSED_ADDRESSES = [
    "http://127.0.0.1/x",
    "http://10.0.0.1/",
    "http://[::1]/",
    "http://169.254.169.254/",
    "http://0.0.0.0/",
    "http://2130706433/",
    "http://100.64.0.1/",
]
MALFORMED_URLS = ["ftp://example.com", "not a url", "http://"]


def settings_of(user: User) -> dict:
    user = User.objects.get(pk=user.pk)
    return {
        "callback_url": user.callback_url,
        "callback_enabled": user.callback_enabled,
        "callback_secret": user.callback_secret,
        "callback_secret_previous": user.callback_secret_previous,
        "callback_secret_previous_until": user.callback_secret_previous_until,
    }


def patch(client, buyer: Buyer, body):
    return client.patch(
        ACCOUNT, data=json.dumps(body), content_type="application/json", **buyer.headers
    )


def assert_invalid(response, field: str) -> None:
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert field in error["fields"]
    assert error["fields"][field]


@pytest.fixture
def public_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Public DNS answers, which cannot exist here, faked at the resolver seam."""
    answers: dict[str, list[str]] = {}
    real = callback_url.resolve

    def resolve(host: str, port: int) -> list[str]:
        return answers[host] if host in answers else real(host, port)

    monkeypatch.setattr(callback_url, "resolve", resolve)
    return answers


# --- GET -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_account_shows_exactly_the_contract_fields(client, buyer: Buyer):
    response = client.get(ACCOUNT, **buyer.headers)

    assert response.status_code == 200
    user = User.objects.get(pk=buyer.user.pk)
    assert response.json() == {
        "email": user.email,
        "balance": 100000,
        "currency": "IDR",
        "is_reseller": False,
        "callback_url": None,
        "callback_enabled": True,
        "callback_secret": user.callback_secret,
    }
    assert response.json()["callback_secret"].startswith("whsec_")


@pytest.mark.django_db
def test_account_of_a_reseller_says_so(client):
    account = account_create(email="seller@example.com", is_reseller=True, with_api_key=True)

    response = client.get(ACCOUNT, HTTP_X_API_KEY=account.api_key)

    assert response.status_code == 200
    assert response.json()["is_reseller"] is True
    assert response.json()["balance"] == 0


@pytest.mark.django_db
def test_account_shows_a_set_callback_url(client, buyer: Buyer):
    User.objects.filter(pk=buyer.user.pk).update(
        callback_url="https://example.com/otp", callback_enabled=False
    )

    body = client.get(ACCOUNT, **buyer.headers).json()

    assert body["callback_url"] == "https://example.com/otp"
    assert body["callback_enabled"] is False


@pytest.mark.django_db
def test_every_account_has_its_own_callback_secret(client, buyer: Buyer):
    other = account_create(email="other@example.com", with_api_key=True)

    mine = client.get(ACCOUNT, **buyer.headers).json()["callback_secret"]
    theirs = client.get(ACCOUNT, HTTP_X_API_KEY=other.api_key).json()["callback_secret"]

    assert mine.startswith("whsec_")
    assert theirs.startswith("whsec_")
    assert mine != theirs


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "patch"])
def test_account_needs_an_api_key(client, agent: Agent, method: str):
    response = getattr(client, method)(ACCOUNT, **agent.headers)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


# --- PATCH callback_url ----------------------------------------------------------------------


@pytest.mark.django_db
@override_settings(CALLBACK_ALLOW_PRIVATE=True)
def test_patch_sets_a_loopback_callback_url_when_private_addresses_are_allowed(client, buyer):
    response = patch(client, buyer, {"callback_url": "http://127.0.0.1:8765/otp"})

    assert response.status_code == 200
    assert response.json()["callback_url"] == "http://127.0.0.1:8765/otp"
    assert settings_of(buyer.user)["callback_url"] == "http://127.0.0.1:8765/otp"
    assert client.get(ACCOUNT, **buyer.headers).json()["callback_url"] == (
        "http://127.0.0.1:8765/otp"
    )


@pytest.mark.django_db
@override_settings(CALLBACK_ALLOW_PRIVATE=False)
def test_patch_sets_a_callback_url_on_a_public_address(client, buyer, public_dns):
    public_dns["hooks.example.com"] = ["93.184.216.34"]

    response = patch(client, buyer, {"callback_url": "https://hooks.example.com/otp"})

    assert response.status_code == 200, response.content
    assert response.json()["callback_url"] == "https://hooks.example.com/otp"
    assert settings_of(buyer.user)["callback_url"] == "https://hooks.example.com/otp"


@pytest.mark.django_db
@override_settings(CALLBACK_ALLOW_PRIVATE=False)
@pytest.mark.parametrize("url", REFUSED_ADDRESSES)
def test_patch_refuses_a_callback_url_on_a_private_address(client, buyer, url: str):
    User.objects.filter(pk=buyer.user.pk).update(callback_url="https://example.com/before")
    before = settings_of(buyer.user)

    response = patch(client, buyer, {"callback_url": url, "callback_enabled": False})

    assert_invalid(response, "callback_url")
    assert settings_of(buyer.user) == before


@pytest.mark.django_db
@override_settings(CALLBACK_ALLOW_PRIVATE=False)
@pytest.mark.parametrize("address", ["10.1.2.3", "127.0.0.1", "169.254.169.254", "::1"])
def test_patch_refuses_a_host_name_that_resolves_to_a_private_address(
    client, buyer, public_dns, address: str
):
    public_dns["internal.example.com"] = ["93.184.216.34", address]
    before = settings_of(buyer.user)

    response = patch(client, buyer, {"callback_url": "https://internal.example.com/otp"})

    assert_invalid(response, "callback_url")
    assert settings_of(buyer.user) == before


@pytest.mark.django_db
@pytest.mark.parametrize("allow_private", [False, True], ids=["strict", "allow-private"])
@pytest.mark.parametrize("url", MALFORMED_URLS)
def test_patch_refuses_a_malformed_callback_url(client, buyer, url: str, allow_private: bool):
    User.objects.filter(pk=buyer.user.pk).update(callback_url="https://example.com/before")
    before = settings_of(buyer.user)

    with override_settings(CALLBACK_ALLOW_PRIVATE=allow_private):
        response = patch(client, buyer, {"callback_url": url, "rotate_callback_secret": True})

    assert_invalid(response, "callback_url")
    assert settings_of(buyer.user) == before


@pytest.mark.django_db
@pytest.mark.parametrize("value", [123, True, ["http://example.com"], {"url": "x"}])
def test_patch_refuses_a_callback_url_that_is_not_a_string(client, buyer, value):
    before = settings_of(buyer.user)

    response = patch(client, buyer, {"callback_url": value})

    assert_invalid(response, "callback_url")
    assert settings_of(buyer.user) == before


@pytest.mark.django_db
@pytest.mark.parametrize("empty", [None, ""], ids=["null", "empty-string"])
def test_patch_with_an_empty_callback_url_clears_it(client, buyer, empty):
    User.objects.filter(pk=buyer.user.pk).update(callback_url="https://example.com/otp")

    response = patch(client, buyer, {"callback_url": empty})

    assert response.status_code == 200
    assert response.json()["callback_url"] is None
    assert settings_of(buyer.user)["callback_url"] == ""


# --- PATCH callback_enabled ------------------------------------------------------------------


@pytest.mark.django_db
def test_patch_turns_callbacks_off_and_on(client, buyer: Buyer):
    off = patch(client, buyer, {"callback_enabled": False})

    assert off.status_code == 200
    assert off.json()["callback_enabled"] is False
    assert settings_of(buyer.user)["callback_enabled"] is False

    on = patch(client, buyer, {"callback_enabled": True})

    assert on.status_code == 200
    assert on.json()["callback_enabled"] is True
    assert settings_of(buyer.user)["callback_enabled"] is True


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["false", 0, 1, "yes", None, [], {}])
def test_patch_refuses_a_callback_enabled_that_is_not_a_boolean(client, buyer, value):
    before = settings_of(buyer.user)

    response = patch(client, buyer, {"callback_enabled": value})

    assert_invalid(response, "callback_enabled")
    assert settings_of(buyer.user) == before


# --- PATCH rotate_callback_secret -------------------------------------------------------------


@pytest.mark.django_db
def test_rotating_the_secret_answers_a_new_one_and_keeps_the_old_for_24_hours(client, buyer):
    old = settings_of(buyer.user)["callback_secret"]

    response = patch(client, buyer, {"rotate_callback_secret": True})

    assert response.status_code == 200
    new = response.json()["callback_secret"]
    assert new.startswith("whsec_")
    assert new != old
    stored = settings_of(buyer.user)
    assert stored["callback_secret"] == new
    assert stored["callback_secret_previous"] == old
    expected_until = timezone.now() + timedelta(hours=24)
    assert abs(stored["callback_secret_previous_until"] - expected_until) < timedelta(minutes=1)
    assert client.get(ACCOUNT, **buyer.headers).json()["callback_secret"] == new


@pytest.mark.django_db
def test_rotating_twice_keeps_only_the_latest_previous_secret(client, buyer):
    first = patch(client, buyer, {"rotate_callback_secret": True}).json()["callback_secret"]

    second = patch(client, buyer, {"rotate_callback_secret": True}).json()["callback_secret"]

    assert second != first
    stored = settings_of(buyer.user)
    assert stored["callback_secret"] == second
    assert stored["callback_secret_previous"] == first


@pytest.mark.django_db
def test_rotate_false_keeps_the_secret(client, buyer):
    before = settings_of(buyer.user)

    response = patch(client, buyer, {"rotate_callback_secret": False})

    assert response.status_code == 200
    assert response.json()["callback_secret"] == before["callback_secret"]
    assert settings_of(buyer.user) == before


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["true", 1, None])
def test_patch_refuses_a_rotate_callback_secret_that_is_not_a_boolean(client, buyer, value):
    before = settings_of(buyer.user)

    response = patch(client, buyer, {"rotate_callback_secret": value})

    assert_invalid(response, "rotate_callback_secret")
    assert settings_of(buyer.user) == before


@pytest.mark.django_db
@override_settings(CALLBACK_ALLOW_PRIVATE=True)
def test_patch_changes_several_settings_at_once(client, buyer):
    old_secret = settings_of(buyer.user)["callback_secret"]

    response = patch(
        client,
        buyer,
        {
            "callback_url": "http://127.0.0.1:9000/hook",
            "callback_enabled": False,
            "rotate_callback_secret": True,
        },
    )

    assert response.status_code == 200
    body = response.json()
    assert body["callback_url"] == "http://127.0.0.1:9000/hook"
    assert body["callback_enabled"] is False
    assert body["callback_secret"] != old_secret
    assert set(body) == {
        "email",
        "balance",
        "currency",
        "is_reseller",
        "callback_url",
        "callback_enabled",
        "callback_secret",
    }


# --- PATCH with nothing or nonsense ----------------------------------------------------------


@pytest.mark.django_db
def test_patch_with_an_empty_object_changes_nothing(client, buyer):
    User.objects.filter(pk=buyer.user.pk).update(callback_url="https://example.com/otp")
    before = settings_of(buyer.user)
    shown = client.get(ACCOUNT, **buyer.headers).json()

    response = patch(client, buyer, {})

    assert response.status_code == 200
    assert response.json() == shown
    assert settings_of(buyer.user) == before


@pytest.mark.django_db
def test_patch_with_no_body_changes_nothing(client, buyer):
    before = settings_of(buyer.user)
    shown = client.get(ACCOUNT, **buyer.headers).json()

    response = client.patch(ACCOUNT, data=b"", content_type="application/json", **buyer.headers)

    assert response.status_code == 200
    assert response.json() == shown
    assert settings_of(buyer.user) == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"[]", b'"callback_enabled"', b"null", b"\xff\xfe"],
    ids=["malformed", "array", "string", "null", "not-utf8"],
)
def test_patch_with_a_body_that_is_not_an_object_is_400_and_changes_nothing(client, buyer, raw):
    before = settings_of(buyer.user)

    response = client.patch(ACCOUNT, data=raw, content_type="application/json", **buyer.headers)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert settings_of(buyer.user) == before
