"""Hostile input found by probing the running site (issue 14), beyond test_bad_input.py:
forged cursors, page sizes out of range, a null `can_order`, chunked bodies over real HTTP
(Django's own server and gunicorn), request bodies documented as JSON only, a disallowed
Host under /api/, and top-ups past what the ledger's bigint columns hold.

As in test_bad_input.py, each case asserts the contract's JSON error and that nothing
else changed."""

import base64
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import User
from billing import services as billing_services
from billing.models import LedgerAccount, LedgerTransaction
from billing.services import wallet_balance
from tests.factories import Buyer
from tests.reliability.conftest import Market, snapshot
from tests.reliability.test_bad_input import HEARTBEAT, ORDERS, send
from tests.test_api_errors import assert_envelope
from zerotp import errors

CALLBACKS = "/api/v1/callbacks"
LISTS = [ORDERS, CALLBACKS]
BIGINT = 2**63 - 1
ROOT = Path(settings.BASE_DIR)


# --- forged cursors --------------------------------------------------------------------------
# DRF checks a cursor's offset and direction but passes its position straight to the
# database as the id to page from: `p=abc` (the issue's `cD1hYmM=`) was a 500.


def cursor(query: str) -> str:
    return quote(base64.b64encode(query.encode()).decode())


FORGED_POSITIONS = ["p=abc", "p=", "p=1.5", "p=-1", "p=1e3", f"p={BIGINT + 1}", "p=%00", "r=1&p=x"]


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("query", FORGED_POSITIONS)
def test_a_forged_cursor_position_is_400_invalid_request(
    market: Market, path: str, query: str
) -> None:
    response = APIClient().get(f"{path}?cursor={cursor(query)}", **market.buyer.headers)

    error = assert_envelope(response, 400, "invalid_request")
    assert "cursor" in error["fields"]


def test_the_issues_forged_cursor_is_400_not_500(market: Market) -> None:
    response = Client(raise_request_exception=False).get(
        f"{ORDERS}?cursor=cD1hYmM%3D", **market.buyer.headers
    )

    assert_envelope(response, 400, "invalid_request")


@pytest.mark.parametrize("path", LISTS)
def test_a_cursor_at_either_end_of_the_id_range_still_pages(market: Market, path: str) -> None:
    for query in ["p=0", f"p={BIGINT}", f"r=1&p={BIGINT}", "o=3&p=1"]:
        response = APIClient().get(f"{path}?cursor={cursor(query)}", **market.buyer.headers)

        assert response.status_code == 200, (query, response.content)


# --- page sizes ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("limit", ["abc", "0", "-1", "201", "1.5", "", " 5", "1e2", "9" * 5000])
def test_a_limit_outside_1_to_200_is_400_invalid_request(
    market: Market, path: str, limit: str
) -> None:
    response = APIClient().get(path, {"limit": limit}, **market.buyer.headers)

    error = assert_envelope(response, 400, "invalid_request")
    assert "limit" in error["fields"]
    assert "1 to 200" in error["message"]


@pytest.mark.parametrize("limit", ["1", "200", "007"])
def test_a_limit_from_1_to_200_is_the_page_size(market: Market, limit: str) -> None:
    response = APIClient().get(ORDERS, {"limit": limit}, **market.buyer.headers)

    assert response.status_code == 200, response.content
    assert len(response.json()["results"]) == 1  # the market holds one order


# --- heartbeat ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, 0, 1, "true", [], {}])
def test_a_heartbeat_can_order_that_is_not_a_boolean_is_400_and_updates_nothing(
    market: Market, value: Any
) -> None:
    body = {"modems": [{"uid": "COM2", "can_order": True}, {"uid": "COM1", "can_order": value}]}
    before = snapshot()

    response = send(market, "POST", HEARTBEAT, json.dumps(body))

    error = assert_envelope(response, 400, "invalid_request")
    assert error["fields"] == {"modems[1]": ["can_order must be true or false."]}
    assert snapshot() == before


def test_a_heartbeat_without_can_order_keeps_the_modems_setting(market: Market) -> None:
    market.modem.can_order = False
    market.modem.save(update_fields=["can_order"])

    response = send(market, "POST", HEARTBEAT, json.dumps({"modems": [{"uid": "COM1"}]}))

    assert response.status_code == 200, response.content
    market.modem.refresh_from_db()
    assert market.modem.can_order is False


# --- the schema says what the server parses ------------------------------------------------------


def test_every_request_body_is_documented_as_json_only(db: None) -> None:
    schema = APIClient().get("/api/schema/?format=json").json()
    bodies = {
        (path, method): operation["requestBody"]
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if "requestBody" in operation
    }

    assert len(bodies) >= 5  # sync, heartbeat, inbound-sms, order create, account update
    for where, body in bodies.items():
        assert list(body["content"]) == ["application/json"], where


# --- a disallowed Host ---------------------------------------------------------------------------
# Django answers an unknown Host before any view runs, with its HTML 400 page.


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/api/v1/services"), ("POST", ORDERS), ("GET", "/api/nope")]
)
def test_a_disallowed_host_under_the_api_is_a_json_400(db: None, method: str, path: str) -> None:
    client = Client(enforce_csrf_checks=True)

    response = client.generic(
        method, path, b"{}", content_type="application/json", HTTP_HOST="evil.example"
    )

    error = assert_envelope(response, 400, "invalid_request")
    assert "evil.example" not in error["message"]  # a header is not echoed back


def test_a_disallowed_host_elsewhere_is_still_djangos_page(db: None) -> None:
    response = Client().get("/", HTTP_HOST="evil.example")

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")


# --- top-ups past the ledger's bigint ----------------------------------------------------------
# Every balance is a bigint. The external source is debited by every top-up, so while it
# stays within the bigint no other account can leave it either (all of them are >= 0 and
# together hold exactly what the external source gave).


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def money_in_the_ledger() -> int:
    external = LedgerAccount.objects.filter(kind=LedgerAccount.Kind.EXTERNAL, user=None)
    return -(external.values_list("balance", flat=True).first() or 0)


@pytest.mark.django_db
@pytest.mark.parametrize("amount", [BIGINT + 1, 10**30])
def test_topup_past_bigint_is_a_command_error_and_writes_nothing(buyer: Buyer, amount: int) -> None:
    before = snapshot()

    with pytest.raises(CommandError, match="at most") as raised:
        run("topup", buyer.user.email, str(amount))

    assert raised.value.returncode == 1
    assert snapshot() == before


def test_create_account_with_a_balance_past_bigint_creates_nothing(db: None) -> None:
    with pytest.raises(CommandError, match="at most") as raised:
        run("create_account", "rich@example.com", "--balance", str(BIGINT + 1))

    assert raised.value.returncode == 1
    assert not User.objects.filter(email="rich@example.com").exists()
    assert not LedgerTransaction.objects.exists()


@pytest.mark.django_db
def test_a_topup_that_would_take_the_ledger_past_bigint_is_refused(buyer: Buyer) -> None:
    headroom = BIGINT - money_in_the_ledger()
    run("topup", buyer.user.email, str(headroom))
    assert wallet_balance(buyer.user) == 100_000 + headroom
    before = snapshot()

    # Before the fix: PostgreSQL raised DataError; SQLite turned both balances into floats.
    with pytest.raises(CommandError, match="at most"):
        run("topup", buyer.user.email, "1")

    assert snapshot() == before
    assert money_in_the_ledger() == BIGINT
    assert isinstance(wallet_balance(buyer.user), int)


@pytest.mark.postgres(why="shows PostgreSQL refusing the overflow itself")
@pytest.mark.django_db
def test_an_overflow_that_slips_past_the_check_is_refused_by_postgresql(
    buyer: Buyer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if another top-up had committed between this one's check and its UPDATE.
    monkeypatch.setattr(billing_services, "MAX_MONEY", 2**64)
    before = snapshot()

    with pytest.raises(errors.InvalidRequest, match="at most"):
        billing_services.topup(user=buyer.user, amount=BIGINT)

    assert snapshot() == before


@dataclass
class Throwaway:
    """manage.py in a subprocess against a freshly migrated throwaway SQLite file."""

    database: Path

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DATABASE_URL": f"sqlite:///{self.database}"}


@pytest.fixture(scope="module")
def manage_py(tmp_path_factory: pytest.TempPathFactory) -> Throwaway:
    manage = Throwaway(tmp_path_factory.mktemp("cli") / "throwaway.sqlite3")
    migrated = manage("migrate", "--verbosity", "0")
    assert migrated.returncode == 0, migrated.stderr
    created = manage("create_account", "payee@example.com")
    assert created.returncode == 0, created.stderr
    return manage


@pytest.mark.parametrize(
    "args",
    [
        ("topup", "payee@example.com", str(BIGINT + 1)),
        ("create_account", "rich@example.com", "--balance", str(BIGINT + 1)),
    ],
    ids=["topup", "create_account"],
)
def test_an_amount_past_bigint_is_one_line_on_stderr_and_exit_1(
    manage_py: Throwaway, args: tuple[str, ...]
) -> None:
    result = manage_py(*args)

    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert re.fullmatch(r"CommandError: [^\n]*at most 9223372036854775807[^\n]*\n", result.stderr)
    assert "rich@example.com" not in manage_py("shell", "-c", ACCOUNTS).stdout


ACCOUNTS = "from accounts.models import User; print(list(User.objects.values_list('email')))"


# --- chunked request bodies over real HTTP ----------------------------------------------
# A chunked body has no Content-Length, and Django and DRF both read a body without one as
# empty: the order was answered "application_id: This field is required".


def chunked(
    base: str, method: str, path: str, parts: Iterable[bytes], headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    host, port = base.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        # An iterable body without a Content-Length goes as Transfer-Encoding: chunked.
        connection.request(
            method, path, body=iter(parts), headers={"Content-Type": "application/json", **headers}
        )
        answer = connection.getresponse()
        assert answer.getheader("Content-Type", "").startswith("application/json")
        return answer.status, json.loads(answer.read())
    finally:
        connection.close()


def in_parts(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


def chunked_head(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join([*lines, "Transfer-Encoding: chunked", "", ""])).encode()


def raw_request(base: str, request: bytes) -> tuple[int, dict[str, Any]]:
    """Send bytes as they are and read the first answer (by its Content-Length)."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request)
        answer = http.client.HTTPResponse(connection)
        answer.begin()
        body = answer.read()
    assert answer.getheader("Content-Type", "").startswith("application/json"), body[:500]
    return answer.status, json.loads(body)


@pytest.mark.django_db(transaction=True)
def test_a_chunked_body_on_djangos_own_server_is_411_length_required(live_server: Any) -> None:
    # Django's development server (runserver, live_server) hands the application no byte of
    # a chunked body: the client is told to send a Content-Length.
    # All in one write: the server answers without reading the chunks, so a client still
    # sending them could meet a closed connection.
    status, body = raw_request(
        live_server.url,
        chunked_head(ORDERS, {"X-API-KEY": "x"}) + b'13\r\n{"application_id": 1}\r\n0\r\n\r\n',
    )

    assert (status, body["error"]["code"]) == (411, "length_required")
    assert "Content-Length" in body["error"]["message"]


@dataclass
class Gunicorn:
    url: str
    api_key: str
    agent_key: str


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


GUNICORN_BODY_LIMIT = 64 * 1024


@pytest.fixture(scope="module", params=["sync", "gthread"])
def gunicorn_site(request: pytest.FixtureRequest, manage_py: Throwaway) -> Iterator[Gunicorn]:
    """gunicorn, as `.ci/run` starts it, on a throwaway SQLite file (the framing under test
    is the same whatever the database)."""
    buyer = json.loads(
        manage_py("create_account", f"chunks-{request.param}@example.com", "--json").stdout
    )
    agent = json.loads(
        manage_py("create_account", f"pool-{request.param}@example.com", "--reseller", "--json")
        .stdout
    )  # fmt: skip
    port = free_port()
    env = {
        **manage_py.env,
        "API_RATE_LIMIT": "0",
        "API_MAX_BODY_BYTES": str(GUNICORN_BODY_LIMIT),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "zerotp.wsgi", "-w", "1", "-k", request.param,
         "-b", f"127.0.0.1:{port}", "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("gunicorn did not start")
        yield Gunicorn(url, buyer["api_key"], agent["agent_key"])
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # gunicorn and its worker, started here
        server.wait(timeout=15)


def test_a_chunked_order_body_is_read_under_gunicorn(gunicorn_site: Gunicorn) -> None:
    status, body = chunked(
        gunicorn_site.url,
        "POST",
        ORDERS,
        [b'{"application_id"', b": 987654", b"321}"],
        {"X-API-KEY": gunicorn_site.api_key},
    )

    assert (status, body["error"]["code"]) == (404, "not_found")
    assert "application 987654321" in body["error"]["message"]


def test_a_chunked_heartbeat_in_one_byte_chunks_is_read_under_gunicorn(
    gunicorn_site: Gunicorn,
) -> None:
    beat = json.dumps({"modems": [{"uid": "PORT7", "signal": 50, "can_order": True}]}).encode()

    status, body = chunked(
        gunicorn_site.url,
        "POST",
        HEARTBEAT,
        in_parts(beat, 1),
        {"X-AGENT-KEY": gunicorn_site.agent_key},
    )

    assert (status, body) == (200, {"updated": 0, "unknown": ["PORT7"]})


def test_a_chunked_body_over_the_limit_is_413_as_soon_as_it_passes_it_under_gunicorn(
    gunicorn_site: Gunicorn,
) -> None:
    # One chunk announced at twice the limit, of which one byte past the limit is sent: the
    # answer must come without the rest (a chunked body has no end a server can check first).
    head = chunked_head(HEARTBEAT, {"X-AGENT-KEY": gunicorn_site.agent_key})

    status, body = raw_request(
        gunicorn_site.url,
        head + f"{2 * GUNICORN_BODY_LIMIT:x}\r\n".encode() + b" " * (GUNICORN_BODY_LIMIT + 1),
    )

    assert (status, body["error"]["code"]) == (413, "payload_too_large")
