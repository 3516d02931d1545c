"""API_RATE_LIMIT: per key, counted in the shared cache, 429 with Retry-After."""

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from tests.factories import Buyer, make_buyer


@pytest.fixture
def three_per_minute(settings: object) -> None:
    settings.API_RATE_LIMIT = "3/m"
    cache.clear()


@pytest.mark.usefixtures("three_per_minute")
def test_the_fourth_request_in_a_minute_is_refused_with_retry_after(
    client: APIClient, buyer: Buyer
) -> None:
    statuses = [client.get("/api/v1/balance", **buyer.headers).status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]
    refused = client.get("/api/v1/balance", **buyer.headers)
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused["Retry-After"]) <= 60


@pytest.mark.usefixtures("three_per_minute")
def test_each_key_has_its_own_budget(client: APIClient, buyer: Buyer) -> None:
    other = make_buyer()
    for _ in range(3):
        client.get("/api/v1/balance", **buyer.headers)

    assert client.get("/api/v1/balance", **buyer.headers).status_code == 429
    assert client.get("/api/v1/balance", **other.headers).status_code == 200


@pytest.mark.usefixtures("three_per_minute")
def test_the_public_catalogue_is_limited_per_client_address(client: APIClient, db: None) -> None:
    statuses = [
        client.get("/api/v1/services", REMOTE_ADDR="203.0.113.9").status_code for _ in range(4)
    ]

    assert statuses == [200, 200, 200, 429]
    assert client.get("/api/v1/services", REMOTE_ADDR="203.0.113.10").status_code == 200


@pytest.fixture
def three_an_hour(settings: object) -> None:
    settings.API_RATE_LIMIT = "3/h"  # no test straddles the start of a new window
    cache.clear()


@pytest.mark.usefixtures("three_an_hour")
@pytest.mark.parametrize(
    ("path", "header"),
    [
        ("/api/v1/balance", {"HTTP_X_API_KEY": "zt_live_guess"}),
        ("/api/v1/balance", {}),
        ("/api/modem/orders", {"HTTP_X_AGENT_KEY": "zt_agent_guess"}),
    ],
    ids=["bad-api-key", "no-key", "bad-agent-key"],
)
def test_requests_with_a_bad_key_are_limited_per_client_address(
    client: APIClient, db: None, path: str, header: dict[str, str]
) -> None:
    statuses = [client.get(path, REMOTE_ADDR="203.0.113.9", **header).status_code for _ in range(5)]

    assert statuses == [401, 401, 401, 429, 429]
    refused = client.get(path, REMOTE_ADDR="203.0.113.9", **header)
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused["Retry-After"]) <= 3600
    assert client.get(path, REMOTE_ADDR="203.0.113.10", **header).status_code == 401


@pytest.mark.usefixtures("three_an_hour")
def test_a_key_guesser_does_not_use_up_the_budget_of_a_real_key(
    client: APIClient, buyer: Buyer
) -> None:
    for _ in range(4):
        client.get("/api/v1/balance", REMOTE_ADDR="203.0.113.9", HTTP_X_API_KEY="zt_live_guess")

    assert (
        client.get("/api/v1/balance", REMOTE_ADDR="203.0.113.9", **buyer.headers).status_code == 200
    )


def test_zero_turns_the_limit_off(client: APIClient, buyer: Buyer, settings: object) -> None:
    settings.API_RATE_LIMIT = "0"
    assert {client.get("/api/v1/balance", **buyer.headers).status_code for _ in range(30)} == {200}


def test_a_bad_rate_is_refused_at_start_up() -> None:
    from zerotp.rates import parse_rate

    assert parse_rate("100/s") == (100, 1)
    assert parse_rate("600/m") == (600, 60)
    assert parse_rate("0") is None
    for bad in ("fast", "100", "0/s", "-1/s", "10/week", ""):
        with pytest.raises(ValueError):
            parse_rate(bad)
