"""SSRF: callback URLs that reach private, loopback, link-local, shared, multicast or
metadata addresses are refused at save time and again at send time, with no socket
opened. The only thing faked is what cannot exist here, public DNS answers, at the
resolver (`socket.getaddrinfo`)."""

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
]

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
    monkeypatch.setattr(socket, "getaddrinfo", _fake_dns({"internal.attacker.example": "10.9.8.7"}))


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


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_saving_a_private_callback_url_is_refused(
    url: str, buyer: Buyer, client: APIClient, connects: list
) -> None:
    answer = client.patch("/api/v1/account", {"callback_url": url}, format="json", **buyer.headers)

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_request"
    assert "callback_url" in answer.json()["error"]["fields"]
    assert User.objects.get(pk=buyer.user.pk).callback_url == ""
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


@pytest.mark.parametrize("url", ["http://10.0.0.1/", "http://2130706433/", "http://0x7f.1/"])
def test_the_pinned_connection_refuses_private_addresses_even_without_the_first_check(
    url: str, monkeypatch: pytest.MonkeyPatch, connects: list
) -> None:
    monkeypatch.setattr(callbacks, "check_callback_url", lambda url, allow_private: url)

    outcome = post_signed(url=url, secrets=[User().callback_secret], webhook_id="msg_x", body="{}")

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
