"""SSRF: callback URLs that reach private, loopback, link-local, shared, multicast, reserved
or metadata addresses are refused at save time and again at send time, with no socket
opened; both checks ask one question (`accounts.callback_url.address_allowed`). With
CALLBACK_ALLOW_PRIVATE loopback and private addresses are allowed, and nothing else is.
The only thing faked is what cannot exist here, public DNS answers, at the resolver
(`socket.getaddrinfo`)."""

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from orders import callbacks
from orders.callbacks import callback_test, post_signed
from tests.factories import Buyer
from tests.receiver import Answer, running_receiver

pytestmark = pytest.mark.django_db

PRIVATE_URLS = [
    "http://10.0.0.1/hook",
    "http://127.0.0.1/hook",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://0.0.0.0/hook",
    "http://2130706433/hook",
    "http://0x7f.1/hook",
    "http://100.64.0.1/hook",
    "http://192.168.1.10:8080/hook",
    "http://224.0.0.1/hook",
    "https://localhost/hook",
    "http://internal.attacker.example/hook",  # resolves to 10.9.8.7 (faked DNS)
    "http://192.88.99.1/hook",  # the deprecated 6to4 relay anycast, global to Python 3.13
    "http://relay.attacker.example/hook",  # resolves to 192.88.99.1 (faked DNS)
    "http://192.0.0.9/hook",  # IETF protocol assignments
    "http://240.0.0.1/hook",
    "http://198.18.0.1/hook",
    "http://[2002:5db8:d822::1]/hook",  # 6to4 around a public IPv4 address: not global
    "http://[64:ff9b::a00:1]/hook",  # NAT64 to 10.0.0.1
    "http://[::10.0.0.1]/hook",  # IPv4-compatible, reserved
    "http://[::ffff:0:a00:1]/hook",  # IPv4-translated, reserved
    "http://[fe80::1]/hook",
    "http://[fec0::1]/hook",  # site-local, deprecated, global to Python 3.13
    "http://[fd00:ec2::254]/hook",  # the IPv6 metadata address
    "http://[ff02::1]/hook",
    "http://[2001:db8::1]/hook",
]

# Refused even with CALLBACK_ALLOW_PRIVATE: it lets callbacks reach loopback and private
# addresses, never the metadata service or what no host should be posted to.
NEVER_URLS = [
    "http://169.254.169.254/latest/meta-data/",
    "http://169.254.1.1/hook",
    "http://[fe80::1]/hook",
    "http://[fd00:ec2::254]/hook",
    "http://metadata.attacker.example/hook",  # resolves to 169.254.169.254 (faked DNS)
    "http://224.0.0.1/hook",
    "http://[ff02::1]/hook",
    "http://0.0.0.0/hook",
    "http://[::]/hook",
    "http://240.0.0.1/hook",
    "http://192.88.99.1/hook",
    "http://100.64.0.1/hook",
]

# Allowed with CALLBACK_ALLOW_PRIVATE (`make run`).
LOCAL_URLS = [
    "http://127.0.0.1:9000/hook",
    "http://[::1]:9000/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://localhost:9000/hook",
    "http://10.0.0.1/hook",
    "http://172.16.5.4/hook",
    "http://192.168.1.10:8080/hook",
    "http://[fd12:3456::1]/hook",
    "http://internal.attacker.example/hook",  # resolves to 10.9.8.7 (faked DNS)
]

FAKE_DNS = {
    "internal.attacker.example": "10.9.8.7",
    "relay.attacker.example": "192.88.99.1",
    "metadata.attacker.example": "169.254.169.254",
}

_real_getaddrinfo = socket.getaddrinfo


def _fake_dns(answers: dict[str, str]) -> Any:
    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list:
        if host in answers:
            family = socket.AF_INET6 if ":" in answers[host] else socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (answers[host], port or 80))]
        return _real_getaddrinfo(host, port, *args, **kwargs)

    return getaddrinfo


@pytest.fixture(autouse=True)
def addresses_are_checked(settings: object, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.CALLBACK_ALLOW_PRIVATE = False
    monkeypatch.setattr(socket, "getaddrinfo", _fake_dns(FAKE_DNS))


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Every outgoing socket connection attempted, refused on the spot."""
    attempted: list[Any] = []

    def refuse(self: socket.socket, address: Any) -> None:
        attempted.append(address)
        raise ConnectionRefusedError("test: no connections")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    yield attempted


def assert_saving_is_refused(url: str, buyer: Buyer, client: APIClient) -> None:
    answer = client.patch("/api/v1/account", {"callback_url": url}, format="json", **buyer.headers)

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_request"
    assert "callback_url" in answer.json()["error"]["fields"]
    assert User.objects.get(pk=buyer.user.pk).callback_url == ""


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_saving_a_private_callback_url_is_refused(
    url: str, buyer: Buyer, client: APIClient, connects: list
) -> None:
    assert_saving_is_refused(url, buyer, client)
    assert connects == []


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_sending_to_a_private_url_is_refused_with_no_socket_opened(
    url: str, buyer: Buyer, connects: list
) -> None:
    User.objects.filter(pk=buyer.user.pk).update(callback_url=url)  # e.g. saved before a rule
    buyer.user.refresh_from_db()

    delivery, outcome = callback_test(buyer=buyer.user)

    assert outcome.error.startswith("refused")
    assert outcome.status_code is None
    assert connects == []
    assert delivery.status == "failed"


def _post_without_the_first_check(url: str, monkeypatch: pytest.MonkeyPatch) -> callbacks.Outcome:
    """Send with the URL check skipped, so that only the connection's own check stands."""
    monkeypatch.setattr(callbacks, "check_callback_url", lambda url, allow_private: url)
    return post_signed(url=url, secrets=[User().callback_secret], webhook_id="msg_x", body="{}")


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://192.88.99.1/",
        "http://[::10.0.0.1]/",
        "http://[fec0::1]/",
        "http://relay.attacker.example/",
    ],
)
def test_the_pinned_connection_refuses_private_addresses_even_without_the_first_check(
    url: str, monkeypatch: pytest.MonkeyPatch, connects: list
) -> None:
    outcome = _post_without_the_first_check(url, monkeypatch)

    assert outcome.error == "refused: the host resolves to a private address"
    assert connects == []


def test_a_host_that_turns_private_after_it_was_saved_is_refused_at_send_time(
    buyer: Buyer, client: APIClient, monkeypatch: pytest.MonkeyPatch, connects: list
) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", _fake_dns({"hooks.example.com": "93.184.216.34"}))
    saved = client.patch(
        "/api/v1/account",
        {"callback_url": "https://hooks.example.com/otp"},
        format="json",
        **buyer.headers,
    )
    assert saved.status_code == 200
    monkeypatch.setattr(socket, "getaddrinfo", _fake_dns({"hooks.example.com": "127.0.0.1"}))
    buyer.user.refresh_from_db()

    _, outcome = callback_test(buyer=buyer.user)

    assert outcome.error.startswith("refused")
    assert connects == []


def test_a_redirect_to_a_metadata_address_is_not_followed(
    settings: object, buyer: Buyer, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.CALLBACK_ALLOW_PRIVATE = True  # only so that the loopback receiver is reachable
    attempted: list[Any] = []
    real_connect = socket.socket.connect

    def record(self: socket.socket, address: Any) -> None:
        attempted.append(address[0])
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", record)
    with running_receiver() as receiver:
        receiver.script = [Answer(302, {"Location": "http://169.254.169.254/latest/meta-data/"})]
        User.objects.filter(pk=buyer.user.pk).update(callback_url=receiver.url)
        buyer.user.refresh_from_db()

        _, outcome = callback_test(buyer=buyer.user)

    assert (outcome.status_code, outcome.delivered) == (302, False)
    assert "169.254.169.254" not in attempted
    assert len(receiver.requests) == 1


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/x", "javascript:alert(1)", "http://", "not a url", "http://user:pw@x.io/"],
)
def test_urls_that_are_not_plain_http_are_refused(
    url: str, buyer: Buyer, client: APIClient
) -> None:
    answer = client.patch("/api/v1/account", {"callback_url": url}, format="json", **buyer.headers)
    assert answer.status_code == 400


# --- CALLBACK_ALLOW_PRIVATE ----------------------------------------------------------------


@pytest.fixture
def private_allowed(settings: object) -> None:
    settings.CALLBACK_ALLOW_PRIVATE = True


@pytest.mark.usefixtures("private_allowed")
@pytest.mark.parametrize("url", LOCAL_URLS)
def test_with_private_allowed_loopback_and_private_hosts_can_be_saved(
    url: str, buyer: Buyer, client: APIClient
) -> None:
    answer = client.patch("/api/v1/account", {"callback_url": url}, format="json", **buyer.headers)

    assert answer.status_code == 200, answer.content
    assert User.objects.get(pk=buyer.user.pk).callback_url == url


@pytest.mark.usefixtures("private_allowed")
@pytest.mark.parametrize("url", NEVER_URLS)
def test_with_private_allowed_metadata_link_local_and_reserved_hosts_are_still_refused(
    url: str, buyer: Buyer, client: APIClient, connects: list
) -> None:
    assert_saving_is_refused(url, buyer, client)
    assert connects == []


@pytest.mark.usefixtures("private_allowed")
@pytest.mark.parametrize("url", NEVER_URLS)
def test_with_private_allowed_sending_to_metadata_or_reserved_hosts_is_refused(
    url: str, buyer: Buyer, connects: list
) -> None:
    User.objects.filter(pk=buyer.user.pk).update(callback_url=url)
    buyer.user.refresh_from_db()

    delivery, outcome = callback_test(buyer=buyer.user)

    assert outcome.error.startswith("refused")
    assert connects == []
    assert delivery.status == "failed"


@pytest.mark.usefixtures("private_allowed")
@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/", "http://[fe80::1]/", "http://metadata.attacker.example/"]
)
def test_with_private_allowed_the_pinned_connection_still_refuses_metadata_addresses(
    url: str, monkeypatch: pytest.MonkeyPatch, connects: list
) -> None:
    outcome = _post_without_the_first_check(url, monkeypatch)

    assert outcome.error == "refused: the host resolves to a private address"
    assert connects == []


@pytest.mark.usefixtures("private_allowed")
def test_with_private_allowed_the_pinned_connection_goes_to_a_private_address(
    monkeypatch: pytest.MonkeyPatch, connects: list
) -> None:
    outcome = _post_without_the_first_check("http://internal.attacker.example:8080/", monkeypatch)

    assert outcome.error.startswith("connection error")
    assert connects == [("10.9.8.7", 8080)]
