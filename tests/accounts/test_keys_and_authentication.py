"""API keys and agent keys: their shape, how they are stored, issuing and revoking them,
and how the two key headers authenticate (docs/API.md, "Errors": 401 / 403)."""

import hashlib
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.forms.models import model_to_dict
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiKey, User
from accounts.services import NewAccount, account_create, key_issue, key_revoke, reseller_enable
from billing.models import LedgerAccount
from modems.models import Modem
from tests.factories import Agent, Buyer, ModemFactory, make_buyer

BALANCE = "/api/v1/balance"
HEARTBEAT = "/api/modem/heartbeat"


@dataclass(frozen=True)
class Endpoint:
    """A protected endpoint and the key header and 401 code it answers with."""

    name: str
    method: str
    path: str
    header: str  # the Django META name of the key header
    header_name: str  # the header as sent on the wire
    code: str

    def call(self, client: APIClient, **headers: str):
        if self.method == "get":
            return client.get(self.path, **headers)
        return client.post(self.path, data={"modems": []}, format="json", **headers)


BUYER_ENDPOINT = Endpoint("buyer", "get", BALANCE, "HTTP_X_API_KEY", "X-API-KEY", "invalid_api_key")
AGENT_ENDPOINT = Endpoint(
    "agent", "post", HEARTBEAT, "HTTP_X_AGENT_KEY", "X-AGENT-KEY", "invalid_agent_key"
)
ENDPOINTS = [pytest.param(BUYER_ENDPOINT, id="buyer"), pytest.param(AGENT_ENDPOINT, id="agent")]


def reseller_with_both_keys(email: str = "both@example.com") -> NewAccount:
    account = account_create(email=email, is_reseller=True, with_api_key=True)
    assert account.agent_key
    return account


def key_for(endpoint: Endpoint, account: NewAccount) -> str:
    key = account.api_key if endpoint is BUYER_ENDPOINT else account.agent_key
    assert key
    return key


def assert_unauthorized(response, endpoint: Endpoint) -> None:
    assert response.status_code == 401, response.content
    error = response.json()["error"]
    assert error["code"] == endpoint.code
    assert error["message"]
    assert endpoint.header_name in response["WWW-Authenticate"]


def assert_forbidden(response) -> None:
    assert response.status_code == 403, response.content
    assert response.json()["error"]["code"] == "forbidden"
    assert response.json()["error"]["message"]


# --- Keys ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_api_keys_start_with_ztp_live():
    account = account_create(email="shape@example.com", with_api_key=True)

    assert account.api_key.startswith("ztp_live_")
    assert len(account.api_key) > len("ztp_live_") + 30
    assert account.agent_key is None


@pytest.mark.django_db
def test_agent_keys_start_with_ztp_agent():
    account = account_create(email="agent-shape@example.com", is_reseller=True, with_api_key=True)

    assert account.agent_key is not None
    assert account.agent_key.startswith("ztp_agent_")
    assert len(account.agent_key) > len("ztp_agent_") + 30
    assert account.api_key.startswith("ztp_live_")


@pytest.mark.django_db
def test_every_issued_key_is_different():
    first = account_create(email="one@example.com", is_reseller=True, with_api_key=True)
    second = account_create(email="two@example.com", is_reseller=True, with_api_key=True)

    keys = {first.api_key, first.agent_key, second.api_key, second.agent_key}
    assert len(keys) == 4


@pytest.mark.django_db
@pytest.mark.parametrize("kind", [ApiKey.Kind.API, ApiKey.Kind.AGENT])
def test_only_the_sha256_digest_of_a_key_is_stored(kind):
    account = reseller_with_both_keys()
    key = account.api_key if kind == ApiKey.Kind.API else account.agent_key
    assert key

    record = ApiKey.objects.get(user=account.user, kind=kind, revoked_at__isnull=True)

    assert record.digest == hashlib.sha256(key.encode()).hexdigest()
    secret_part = key.split("_", 2)[2]
    for field, value in model_to_dict(record).items():
        assert key not in str(value), f"the full key is stored in ApiKey.{field}"
        assert secret_part not in str(value), f"the key's secret is stored in ApiKey.{field}"
    # Nor anywhere on the user row.
    for field, value in model_to_dict(User.objects.get(pk=account.user.pk)).items():
        assert secret_part not in str(value), f"the key's secret is stored in User.{field}"


@pytest.mark.django_db
def test_regenerating_an_api_key_revokes_the_old_one_at_once(client):
    buyer = make_buyer(balance=100)
    assert client.get(BALANCE, HTTP_X_API_KEY=buyer.key).status_code == 200

    issued = key_issue(user=buyer.user, kind=ApiKey.Kind.API)

    assert issued.key.startswith("ztp_live_")
    assert issued.key != buyer.key
    assert_unauthorized(client.get(BALANCE, HTTP_X_API_KEY=buyer.key), BUYER_ENDPOINT)
    response = client.get(BALANCE, HTTP_X_API_KEY=issued.key)
    assert response.status_code == 200
    assert response.json() == {"balance": 100, "currency": "IDR"}
    live = ApiKey.objects.filter(user=buyer.user, kind=ApiKey.Kind.API, revoked_at__isnull=True)
    assert list(live) == [issued.record]
    assert ApiKey.objects.filter(user=buyer.user, kind=ApiKey.Kind.API).count() == 2


@pytest.mark.django_db
def test_regenerating_an_agent_key_revokes_the_old_one_at_once(client, agent: Agent):
    assert client.post(HEARTBEAT, {"modems": []}, format="json", **agent.headers).status_code == 200

    issued = key_issue(user=agent.user, kind=ApiKey.Kind.AGENT)

    assert issued.key.startswith("ztp_agent_")
    old = client.post(HEARTBEAT, {"modems": []}, format="json", **agent.headers)
    assert_unauthorized(old, AGENT_ENDPOINT)
    new = client.post(HEARTBEAT, {"modems": []}, format="json", HTTP_X_AGENT_KEY=issued.key)
    assert new.status_code == 200
    assert new.json() == {"updated": 0, "unknown": []}


@pytest.mark.django_db
def test_regenerating_one_kind_leaves_the_other_kind_working(client):
    account = reseller_with_both_keys()

    key_issue(user=account.user, kind=ApiKey.Kind.AGENT)

    assert client.get(BALANCE, HTTP_X_API_KEY=account.api_key).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_revoked_key_is_refused(client, endpoint: Endpoint):
    account = reseller_with_both_keys()
    key = key_for(endpoint, account)
    assert endpoint.call(client, **{endpoint.header: key}).status_code == 200

    kind = ApiKey.Kind.API if endpoint is BUYER_ENDPOINT else ApiKey.Kind.AGENT
    assert key_revoke(user=account.user, kind=kind) == 1

    assert_unauthorized(endpoint.call(client, **{endpoint.header: key}), endpoint)
    assert key_revoke(user=account.user, kind=kind) == 0


@pytest.mark.django_db
def test_becoming_a_reseller_hands_out_a_working_agent_key(client, buyer: Buyer):
    assert not ApiKey.objects.filter(user=buyer.user, kind=ApiKey.Kind.AGENT).exists()

    issued = reseller_enable(user=buyer.user)

    assert issued.key.startswith("ztp_agent_")
    response = client.post(HEARTBEAT, {"modems": []}, format="json", HTTP_X_AGENT_KEY=issued.key)
    assert response.status_code == 200
    assert User.objects.get(pk=buyer.user.pk).is_reseller is True


# --- Authentication ------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_missing_key_header_is_401_with_www_authenticate(client, endpoint: Endpoint):
    assert_unauthorized(endpoint.call(client), endpoint)


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("value", ["", "   "], ids=["empty", "blank"])
def test_an_empty_key_header_is_401(client, endpoint: Endpoint, value: str):
    assert_unauthorized(endpoint.call(client, **{endpoint.header: value}), endpoint)


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize(
    "key",
    [
        "ztp_live_" + "A" * 43,
        "ztp_agent_" + "A" * 43,
        "garbage",
        "ztp_live_" + "x" * 500,
        "ztp_agent_' OR '1'='1",
    ],
    ids=["unknown-api", "unknown-agent", "garbage", "too-long", "injection"],
)
def test_an_unknown_key_is_401(client, endpoint: Endpoint, key: str):
    reseller_with_both_keys()  # keys exist, just not this one

    assert_unauthorized(endpoint.call(client, **{endpoint.header: key}), endpoint)


@pytest.mark.django_db
def test_an_agent_key_in_the_api_key_header_is_401(client):
    account = reseller_with_both_keys()

    response = client.get(BALANCE, HTTP_X_API_KEY=account.agent_key)

    assert_unauthorized(response, BUYER_ENDPOINT)


@pytest.mark.django_db
def test_an_api_key_in_the_agent_key_header_is_401(client):
    account = reseller_with_both_keys()

    response = client.post(
        HEARTBEAT, {"modems": []}, format="json", HTTP_X_AGENT_KEY=account.api_key
    )

    assert_unauthorized(response, AGENT_ENDPOINT)


@pytest.mark.django_db
def test_a_key_sent_in_the_other_header_does_not_count(client):
    account = reseller_with_both_keys()

    # The right key in the wrong header, the endpoint's own header missing.
    buyer_call = client.get(BALANCE, HTTP_X_AGENT_KEY=account.api_key)
    agent_call = client.post(
        HEARTBEAT, {"modems": []}, format="json", HTTP_X_API_KEY=account.agent_key
    )

    assert_unauthorized(buyer_call, BUYER_ENDPOINT)
    assert_unauthorized(agent_call, AGENT_ENDPOINT)


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_disabled_account_is_403_forbidden(client, endpoint: Endpoint):
    account = reseller_with_both_keys()
    User.objects.filter(pk=account.user.pk).update(is_active=False)

    assert_forbidden(endpoint.call(client, **{endpoint.header: key_for(endpoint, account)}))


@pytest.mark.django_db
def test_a_disabled_agent_heartbeat_changes_nothing(client, agent: Agent):
    seen = timezone.now() - timedelta(hours=1)
    modem = ModemFactory(reseller=agent.user, uid="COM1", last_heartbeat_at=seen)
    User.objects.filter(pk=agent.user.pk).update(is_active=False)

    response = client.post(
        HEARTBEAT,
        {"modems": [{"uid": "COM1", "signal": 10, "can_order": True}]},
        format="json",
        **agent.headers,
    )

    assert_forbidden(response)
    modem = Modem.objects.get(pk=modem.pk)
    assert modem.last_heartbeat_at == seen
    assert modem.signal == 80


@pytest.mark.django_db
def test_an_agent_key_of_a_user_no_longer_a_reseller_is_403_forbidden(client):
    account = reseller_with_both_keys()
    User.objects.filter(pk=account.user.pk).update(is_reseller=False)

    response = client.post(
        HEARTBEAT, {"modems": []}, format="json", HTTP_X_AGENT_KEY=account.agent_key
    )

    assert_forbidden(response)


@pytest.mark.django_db
def test_a_former_reseller_keeps_buying_with_the_api_key(client):
    account = reseller_with_both_keys()
    User.objects.filter(pk=account.user.pk).update(is_reseller=False)

    response = client.get(BALANCE, HTTP_X_API_KEY=account.api_key)

    assert response.status_code == 200
    assert response.json() == {"balance": 0, "currency": "IDR"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_X_API_KEY": "bogus"},
        {"HTTP_X_API_KEY": "ztp_live_" + "A" * 43},
        {"HTTP_X_AGENT_KEY": "bogus"},
    ],
    ids=["garbage-api-key", "unknown-api-key", "garbage-agent-key"],
)
def test_the_public_catalogue_ignores_a_bogus_key_header(client, headers: dict[str, str]):
    without = client.get("/api/v1/services")

    response = client.get("/api/v1/services", **headers)

    assert response.status_code == 200
    assert response.json() == without.json()


@pytest.mark.django_db
def test_the_public_catalogue_ignores_the_key_of_a_disabled_account(client, buyer: Buyer):
    User.objects.filter(pk=buyer.user.pk).update(is_active=False)

    response = client.get("/api/v1/services", **buyer.headers)

    assert response.status_code == 200


# --- Balance -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_balance_answers_the_amount_and_currency(client, buyer: Buyer):
    response = client.get(BALANCE, **buyer.headers)

    assert response.status_code == 200
    assert response.json() == {"balance": 100000, "currency": "IDR"}


@pytest.mark.django_db
def test_a_new_account_without_a_wallet_has_balance_zero(client):
    account = account_create(email="fresh@example.com", with_api_key=True)
    assert not LedgerAccount.objects.filter(user=account.user).exists()

    response = client.get(BALANCE, HTTP_X_API_KEY=account.api_key)

    assert response.status_code == 200
    assert response.json() == {"balance": 0, "currency": "IDR"}


@pytest.mark.django_db
def test_balance_is_per_account(client, buyer: Buyer):
    other = make_buyer(balance=700)

    assert client.get(BALANCE, **other.headers).json() == {"balance": 700, "currency": "IDR"}
    assert client.get(BALANCE, **buyer.headers).json() == {"balance": 100000, "currency": "IDR"}
