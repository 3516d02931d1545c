"""gunicorn's asyncio worker (`-k asgi`), with two changes for the site (`make serve`).

- The headers of a connection's first request must arrive within HEADER_SECONDS. gunicorn
  bounds the wait for a later request on a kept-alive connection (`keepalive`) but not the
  first, so a client trickling header lines kept its connection forever.
- gunicorn's own answers to a request it cannot parse (400, 414 for a long request line,
  431 for too many or too long headers, 501 for an unknown transfer coding) are the API's
  error envelope instead of gunicorn's text/plain. The path is unknown when the request line
  itself is at fault, so they are JSON everywhere: browsers never send such requests.

Imported by gunicorn's master to load the worker class: no Django here.
"""

import asyncio
import json
from collections.abc import Iterable
from http import HTTPStatus

from gunicorn.asgi.protocol import ASGIProtocol
from gunicorn.workers import gasgi

HEADER_SECONDS = 10

_ERRORS = {
    400: ("invalid_request", "The request is malformed"),
    408: ("request_timeout", "The request headers did not arrive in time"),
    414: ("uri_too_long", "The request line is too long"),
    431: ("header_fields_too_large", "The request headers are too many or too long"),
    501: ("not_implemented", "The request uses a transfer coding this server does not know"),
}


class Protocol(ASGIProtocol):
    _header_timer = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._header_timer = self.worker.loop.call_later(HEADER_SECONDS, self._headers_too_slow)

    def _on_headers_complete(self) -> bool:
        self._cancel_header_timer()
        return super()._on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self._closed or self._current_request is not None:
            return
        self._send_error_response(408, f"none within {HEADER_SECONDS} s")
        self._close_transport()
        # Wake the connection's task so that it sees the connection closed (as gunicorn's
        # keep-alive timeout does).
        if self._request_ready is not None:
            self._request_ready.set()

    def _send_error_response(
        self, status: int, message: str, extra_headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        if status not in _ERRORS:
            super()._send_error_response(status, message, extra_headers)
            return
        code, sentence = _ERRORS[status]
        detail = f"{sentence}: {message}." if message else f"{sentence}."
        body = json.dumps({"error": {"code": code, "message": detail}}).encode()
        extra = "".join(f"{name}: {value}\r\n" for name, value in extra_headers)
        head = (
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"{extra}"
            "Connection: close\r\n\r\n"
        )
        self._safe_write(head.encode("latin-1") + body)


class Worker(gasgi.ASGIWorker):
    def init_process(self) -> None:
        # ASGIWorker builds each connection's protocol by this module-level name (no setting
        # names the class); rebinding it in this worker process is the one way in.
        # gunicorn is pinned (requirements.txt) and tests/serve checks both changes.
        gasgi.ASGIProtocol = Protocol
        super().init_process()
