"""The client address behind proxies (TRUSTED_PROXIES): REMOTE_ADDR, unless that is a
trusted proxy; then `X-Forwarded-For` read from the right, past the trusted proxies, to the
first address none of them is. Every per-address limit uses it: the API's (the public
catalogue and requests with a bad key), and the log-in throttle."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.cache import cache
from django.test import Client, RequestFactory
from django.urls import reverse
from rest_framework.test import APIClient

from tests.factories import Buyer
from zerotp.client_address import client_address, trusted_proxies

ROOT = Path(__file__).resolve().parent.parent
PROXY = "10.0.0.2"
PROXIES = "10.0.0.2, 10.1.0.0/16, fd00::/8"


@pytest.fixture
def behind_proxies(settings: object) -> None:
    settings.TRUSTED_PROXIES = trusted_proxies(PROXIES)


@pytest.fixture
def three_an_hour(settings: object) -> None:
    # An hour, so that no test straddles the start of a new window.
    settings.API_RATE_LIMIT = "3/h"
    settings.LOGIN_FAILURES_MAX = 3
    cache.clear()


def address(remote: str, forwarded: str | None = None) -> str:
    headers = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded
    return client_address(RequestFactory().get("/", **headers))


# --- The function ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("remote", "forwarded"),
    [("203.0.113.9", None), ("203.0.113.9", "198.51.100.1"), ("10.0.0.2", "198.51.100.1")],
)
def test_without_trusted_proxies_a_forwarded_for_header_is_ignored(
    remote: str, forwarded: str | None, settings: object
) -> None:
    settings.TRUSTED_PROXIES = ()

    assert address(remote, forwarded) == remote


@pytest.mark.usefixtures("behind_proxies")
@pytest.mark.parametrize(
    ("remote", "forwarded", "client"),
    [
        # a client that talks to us directly cannot name someone else
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),
        # one proxy
        (PROXY, "198.51.100.1", "198.51.100.1"),
        (PROXY, " 198.51.100.1 ", "198.51.100.1"),
        # a chain whose left-most entry the client wrote: the proxy appended the real one
        (PROXY, "1.2.3.4, 198.51.100.1", "198.51.100.1"),
        (PROXY, "10.0.0.2, 198.51.100.1", "198.51.100.1"),
        # two trusted hops (an address and a CIDR), then the client
        (PROXY, "6.6.6.6, 198.51.100.1, 10.1.4.5", "198.51.100.1"),
        ("10.1.9.9", "198.51.100.1, 10.0.0.2", "198.51.100.1"),
        # IPv6 clients and proxies, with and without brackets and ports
        (PROXY, "2001:db8:1::7", "2001:db8:1::7"),
        ("fd00::1", "[2001:db8:1::7]:4711", "2001:db8:1::7"),
        (PROXY, "198.51.100.1:4711", "198.51.100.1"),
        ("::ffff:10.0.0.2", "198.51.100.1", "198.51.100.1"),
        # nothing forwarded, or only proxies: the farthest proxy is all we know
        (PROXY, None, PROXY),
        (PROXY, "", PROXY),
        (PROXY, "10.1.0.1", "10.1.0.1"),
        # garbage where an address should be: stop at the last proxy that spoke
        (PROXY, "198.51.100.1, unknown", PROXY),
        (PROXY, "198.51.100.1, 10.1.0.7, not-an-address", PROXY),
    ],
)
def test_behind_trusted_proxies_the_client_is_the_first_untrusted_hop_from_the_right(
    remote: str, forwarded: str | None, client: str
) -> None:
    assert address(remote, forwarded) == client


def test_multiple_forwarded_for_headers_are_read_as_one_list(settings: object) -> None:
    settings.TRUSTED_PROXIES = trusted_proxies(PROXIES)
    request = RequestFactory().get("/", REMOTE_ADDR=PROXY)
    # WSGI servers join repeated headers with a comma.
    request.META["HTTP_X_FORWARDED_FOR"] = "6.6.6.6,198.51.100.1"

    assert client_address(request) == "198.51.100.1"


@pytest.mark.parametrize("value", ["nonsense", "10.0.0.2,", "10.0.0.0/33", "10.0.0.5/8", "*"])
def test_a_bad_trusted_proxies_value_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="not an address or CIDR"):
        trusted_proxies(value)


def start_up(trusted_proxies: str, code: str = "") -> subprocess.CompletedProcess:
    """A fresh process that loads the settings with TRUSTED_PROXIES set, then runs code."""
    env = {
        **os.environ,
        "TRUSTED_PROXIES": trusted_proxies,
        "DJANGO_SETTINGS_MODULE": "zerotp.settings",
    }
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_bad_trusted_proxies_value_stops_start_up_with_its_name() -> None:
    started = start_up("10.0.0.5/8")

    assert started.returncode != 0
    assert "ImproperlyConfigured: Environment variable TRUSTED_PROXIES" in started.stderr
    assert "10.0.0.5/8" in started.stderr


def test_trusted_proxies_are_read_from_the_environment() -> None:
    started = start_up(
        PROXIES, "from django.conf import settings; print(*settings.TRUSTED_PROXIES)"
    )

    assert started.returncode == 0, started.stderr
    assert started.stdout.split() == ["10.0.0.2/32", "10.1.0.0/16", "fd00::/8"]


# --- The public catalogue and requests with a bad key (the API's per-address limit) ---------


@pytest.mark.django_db
@pytest.mark.usefixtures("three_an_hour")
def test_a_client_cannot_escape_the_catalogue_limit_with_its_own_forwarded_for(
    client: APIClient,
) -> None:
    statuses = [
        client.get(
            "/api/v1/services", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}"
        ).status_code
        for n in range(4)
    ]

    assert statuses == [200, 200, 200, 429]


@pytest.mark.django_db
@pytest.mark.usefixtures("three_an_hour")
def test_a_client_cannot_use_up_someone_elses_catalogue_limit(client: APIClient) -> None:
    for _ in range(3):
        client.get("/api/v1/services", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="1.1.1.1")

    assert client.get("/api/v1/services", REMOTE_ADDR="1.1.1.1").status_code == 200


@pytest.mark.django_db
@pytest.mark.usefixtures("three_an_hour", "behind_proxies")
def test_behind_a_trusted_proxy_two_clients_have_their_own_catalogue_limits(
    client: APIClient,
) -> None:
    def get(forwarded: str) -> int:
        return client.get(
            "/api/v1/services", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=forwarded
        ).status_code

    assert [get("198.51.100.1") for _ in range(4)] == [200, 200, 200, 429]
    assert get("198.51.100.2") == 200


@pytest.mark.django_db
@pytest.mark.usefixtures("three_an_hour", "behind_proxies")
def test_behind_a_trusted_proxy_a_spoofed_left_most_entry_is_not_believed(
    client: APIClient,
) -> None:
    statuses = [
        client.get(
            "/api/v1/services", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=f"6.6.6.{n}, 198.51.100.1"
        ).status_code
        for n in range(4)
    ]

    assert statuses == [200, 200, 200, 429]
    assert (
        client.get(
            "/api/v1/services", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="198.51.100.2"
        ).status_code
        == 200
    )


@pytest.mark.django_db
@pytest.mark.usefixtures("three_an_hour", "behind_proxies")
def test_behind_a_trusted_proxy_bad_keys_are_limited_per_client(client: APIClient) -> None:
    def get(forwarded: str) -> int:
        return client.get(
            "/api/v1/balance",
            REMOTE_ADDR=PROXY,
            HTTP_X_FORWARDED_FOR=forwarded,
            HTTP_X_API_KEY="zt_live_guess",
        ).status_code

    assert [get(f"6.6.6.{n}, 198.51.100.1") for n in range(4)] == [401, 401, 401, 429]
    assert get("198.51.100.2") == 401


# --- The log-in throttle -----------------------------------------------------------------


def failed_logins(email: str, remote: str, forwarded: list[str]) -> None:
    for value in forwarded:
        Client(REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=value).post(
            reverse("login"), {"username": email, "password": "wrong"}
        )


def logs_in(email: str, remote: str, forwarded: str, password: str) -> bool:
    answer = Client(REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded).post(
        reverse("login"), {"username": email, "password": password}
    )
    return answer.status_code == 302


@pytest.fixture
def member(buyer: Buyer) -> tuple[str, str]:
    password = "correct horse battery"
    buyer.user.set_password(password)
    buyer.user.save()
    return buyer.user.email, password


@pytest.mark.django_db
@pytest.mark.usefixtures("three_an_hour")
def test_log_in_failures_count_per_address_whatever_forwarded_for_says(
    member: tuple[str, str],
) -> None:
    email, password = member
    failed_logins(email, "203.0.113.9", ["1.1.1.1", "2.2.2.2", "3.3.3.3"])

    assert not logs_in(email, "203.0.113.9", "4.4.4.4", password)
    assert logs_in(email, "203.0.113.10", "203.0.113.9", password)


@pytest.mark.django_db
@pytest.mark.usefixtures("three_an_hour", "behind_proxies")
def test_behind_a_trusted_proxy_log_in_failures_count_per_client(
    member: tuple[str, str],
) -> None:
    email, password = member
    failed_logins(email, PROXY, ["6.6.6.1, 198.51.100.1", "6.6.6.2, 198.51.100.1", "198.51.100.1"])

    assert not logs_in(email, PROXY, "6.6.6.3, 198.51.100.1", password)
    assert logs_in(email, PROXY, "198.51.100.1, 198.51.100.2", password)
