"""zerotp/asgi.py, in process: the event loop reads each request whole, within a time and a
size, before Django runs on it. The live server is tests/reliability/test_serve.py."""

import asyncio
import json
import subprocess
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from zerotp.asgi import WholeRequests

ROOT = Path(__file__).resolve().parents[1]


class EchoApp:
    """A WSGI application that answers with what it was given, and notes being closed."""

    def __init__(self) -> None:
        self.environ: dict[str, Any] = {}
        self.closed = False

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        self.environ = environ
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-Seen", "yes")])
        return self.Answer(self, body)

    class Answer:
        def __init__(self, app: "EchoApp", body: bytes) -> None:
            self.app, self.body = app, body

        def __iter__(self) -> Iterator[bytes]:
            yield b"got "
            yield self.body

        def close(self) -> None:
            self.app.closed = True


def scope(path: str = "/api/v1/orders", headers: list[tuple[bytes, bytes]] | None = None) -> dict:
    return {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "query_string": b"a=1",
        "root_path": "",
        "headers": headers or [],
        "server": ("127.0.0.1", 8000),
        "client": ("203.0.113.9", 50000),
    }


def serve(
    app: WholeRequests, request: dict, chunks: list[bytes], *, pause: float = 0
) -> list[dict]:
    """Run one request through `app`; the body arrives in `chunks`, `pause` s apart."""
    sent: list[dict] = []
    pieces = list(chunks)

    async def receive() -> dict:
        if pause:
            await asyncio.sleep(pause)
        body = pieces.pop(0) if pieces else b""
        return {"type": "http.request", "body": body, "more_body": bool(pieces)}

    async def send(message: dict) -> None:
        sent.append(message)

    # A loop of its own in another thread: Playwright's browser tests, which may run first in
    # this process, leave the main thread's loop running.
    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, app(request, receive, send)).result()
    return sent


def test_a_request_reaches_the_wsgi_application_whole_and_its_answer_comes_back() -> None:
    echo = EchoApp()
    app = WholeRequests(echo, max_body_bytes=100)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", b"10"),
        (b"x-forwarded-for", b"198.51.100.1"),
        (b"x-forwarded-for", b"198.51.100.2"),
    ]
    sent = serve(app, scope("/api/v1/orders/caf\u00e9", headers), [b'{"a":', b" 1}  "])

    assert sent[0]["status"] == 200
    assert (b"x-seen", b"yes") in sent[0]["headers"]
    assert sent[1]["body"] == b'got {"a": 1}  '
    assert echo.closed  # Django's request_finished runs on close()
    environ = echo.environ
    assert environ["PATH_INFO"] == "/api/v1/orders/caf\u00e9".encode().decode("latin-1")
    assert environ["QUERY_STRING"] == "a=1"
    assert environ["CONTENT_TYPE"] == "application/json"
    assert environ["CONTENT_LENGTH"] == "10"
    assert environ["REMOTE_ADDR"] == "203.0.113.9"
    assert environ["HTTP_X_FORWARDED_FOR"] == "198.51.100.1,198.51.100.2"


def test_a_chunked_body_is_handed_on_with_its_length() -> None:
    echo = EchoApp()
    app = WholeRequests(echo, max_body_bytes=100)
    sent = serve(app, scope(headers=[(b"transfer-encoding", b"chunked")]), [b"ab", b"cd", b""])

    assert sent[1]["body"] == b"got abcd"
    assert echo.environ["CONTENT_LENGTH"] == "4"
    assert "HTTP_TRANSFER_ENCODING" not in echo.environ


def test_a_request_without_a_body_has_no_content_length() -> None:
    echo = EchoApp()
    serve(WholeRequests(echo, max_body_bytes=100), scope(), [])

    assert "CONTENT_LENGTH" not in echo.environ


def test_a_declared_body_over_the_limit_is_refused_before_any_of_it_is_read() -> None:
    echo = EchoApp()
    app = WholeRequests(echo, max_body_bytes=100)
    sent = serve(app, scope(headers=[(b"content-length", b"500000")]), [])

    assert sent[0]["status"] == 413
    assert (b"connection", b"close") in sent[0]["headers"]
    assert json.loads(sent[1]["body"])["error"]["code"] == "payload_too_large"
    assert echo.environ == {}


def test_a_chunked_body_that_grows_over_the_limit_is_refused() -> None:
    app = WholeRequests(EchoApp(), max_body_bytes=100)
    sent = serve(app, scope(headers=[(b"transfer-encoding", b"chunked")]), [b"x" * 60] * 3)

    assert sent[0]["status"] == 413


def test_a_body_that_does_not_arrive_in_time_is_a_408_and_never_reaches_django() -> None:
    echo = EchoApp()
    app = WholeRequests(echo, max_body_bytes=100, body_seconds=0.3)
    sent = serve(app, scope(headers=[(b"content-length", b"50")]), [b"x"] * 50, pause=0.05)

    assert sent[0]["status"] == 408
    error = json.loads(sent[1]["body"])["error"]
    assert error["code"] == "request_timeout"
    assert echo.environ == {}


def test_refusals_outside_the_api_are_plain_text() -> None:
    app = WholeRequests(EchoApp(), max_body_bytes=100)
    sent = serve(app, scope("/login/", [(b"content-length", b"101")]), [])

    assert sent[0]["status"] == 413
    assert (b"content-type", b"text/plain; charset=utf-8") in sent[0]["headers"]


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/x"}, "set SECRET_KEY"),
        ({"SECRET_KEY": "x" * 50}, "set DATABASE_URL=postgres://"),
        ({"SECRET_KEY": "x" * 50, "DATABASE_URL": "sqlite:////tmp/x.sqlite3"}, "DATABASE_URL"),
    ],
)
def test_make_serve_refuses_to_start_without_a_secret_key_or_postgresql(
    env: dict[str, str], complaint: str
) -> None:
    base = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}  # noqa: S108
    done = subprocess.run(
        [str(ROOT / "scripts" / "serve.sh")],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert done.returncode == 2
    assert complaint in done.stderr
