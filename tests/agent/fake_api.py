"""A fake of the agent API (docs/API.md, "Modem-pool agent API") on 127.0.0.1, for the agent's
tests: a real HTTP server in a thread that records every request and answers sync, heartbeat
and inbound-sms with the contract's JSON shapes, unless a test tells it otherwise: one answer
for every request, per path, or per SMS text, with its status, body, Retry-After and Date
header, and a delay per path. It can stop and start again on the same port (a server that
goes away and comes back). Nothing of Django: the agent is a program of its own."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SYNC = "/api/modem/sync"
HEARTBEAT = "/api/modem/heartbeat"
INBOUND_SMS = "/api/modem/inbound-sms"


@dataclass
class Answer:
    """What the fake answers: `body` a str is sent as it is, anything else as JSON, None the
    contract's shape for the path."""

    status: int = 200
    body: Any = None
    retry_after: str | None = None
    date: str | None = None  # the Date header; None: the true time

    @classmethod
    def error(cls, status: int, code: str = "error", message: str = "no") -> Answer:
        """An answer in the contract's error shape."""
        return cls(status, {"error": {"code": code, "message": message}})


@dataclass
class Request:
    path: str
    headers: Message  # looked up without regard to case, as HTTP headers are
    body: Any  # the JSON posted; None for an empty body


def documented(path: str, body: Any) -> tuple[int, Any]:
    """The contract's answer to a request that succeeds (a 404 for a path it does not have)."""
    if path == SYNC:
        n = len(body["modems"])
        return 200, {"synced": n, "created": n, "updated": 0, "errors": []}
    if path == HEARTBEAT:
        return 200, {"updated": len(body["modems"]), "unknown": []}
    if path == INBOUND_SMS:
        return 200, {"matched": False, "order_id": None, "otp": None}
    return 404, {"error": {"code": "not_found", "message": path}}


@dataclass
class FakeAgentApi:
    """The agent API on 127.0.0.1. What a request is answered, first that applies:
    `by_text[text]` for an SMS of that text, `by_path[path]`, `answer`, the contract's shape.
    `delay[path]` seconds pass before the answer. `port` 0: a free one, kept on restart."""

    answer: Answer | None = None
    by_path: dict[str, Answer] = field(default_factory=dict)
    by_text: dict[str, Answer] = field(default_factory=dict)
    delay: dict[str, float] = field(default_factory=dict)
    port: int = 0
    requests: list[Request] = field(default_factory=list)
    _httpd: ThreadingHTTPServer | None = None

    def start(self) -> None:
        api = self

        class Handler(BaseHTTPRequestHandler):
            answer: Answer | None = None

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw) if raw else None
                api.requests.append(Request(self.path, self.headers, body))
                time.sleep(api.delay.get(self.path, 0.0))
                answer, text = api.reply(self.path, body)
                self.answer = answer  # for date_time_string
                data = text.encode()
                self.send_response(answer.status)  # adds the Date header the agent reads
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if answer.retry_after is not None:
                    self.send_header("Retry-After", answer.retry_after)
                self.end_headers()
                self.wfile.write(data)

            def date_time_string(self, timestamp: float | None = None) -> str:
                if self.answer is not None and self.answer.date is not None:
                    return self.answer.date
                return super().date_time_string(timestamp)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._httpd.server_address[1]
        threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()

    def stop(self) -> None:
        """Connections refused from now on, until `start` again."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @property
    def url(self) -> str:
        assert self.port, "start it first, or give it a port"
        return f"http://127.0.0.1:{self.port}"

    def reply(self, path: str, body: Any) -> tuple[Answer, str]:
        """The answer to a request, and its body as sent."""
        text = body.get("text") if isinstance(body, dict) else None
        if isinstance(text, str) and text in self.by_text:
            answer = self.by_text[text]
        else:
            answer = self.by_path.get(path, self.answer) or Answer(documented(path, body)[0])
        content = documented(path, body)[1] if answer.body is None else answer.body
        return answer, content if isinstance(content, str) else json.dumps(content)

    def bodies(self, path: str) -> list[Any]:
        return [request.body for request in list(self.requests) if request.path == path]

    @property
    def sms(self) -> list[dict[str, Any]]:
        """The inbound SMS posted, oldest first."""
        return self.bodies(INBOUND_SMS)

    def texts(self) -> list[str]:
        return [sms["text"] for sms in self.sms]
