"""The agent API client (stdlib only: the .pyz must run on a bare Python).

Also measures the offset between this machine's clock and the server's from the `Date`
header of every answer, so that the times the agent reports are on the server's clock.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from email.utils import parsedate_to_datetime
from typing import Any

from agent import __version__

# The server refuses batches larger than its MODEM_BATCH_MAX (default 1000).
BATCH_MAX = 1000


class ServerError(Exception):
    """An answer other than 2xx, or no answer at all (status None)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        """Network errors, 408, 429 and 5xx are worth another try; other 4xx are final."""
        return self.status is None or self.status in (408, 429) or self.status >= 500

    @property
    def key_refused(self) -> bool:
        return self.status in (401, 403)


class Server:
    def __init__(self, base_url: str, agent_key: str, *, timeout: float = 15.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.agent_key = agent_key
        self.timeout = timeout
        # server clock minus local clock, in seconds; None until the first answer
        self.clock_offset: float | None = None

    def now(self) -> float:
        """The server's time as best known here (epoch seconds)."""
        return time.time() + (self.clock_offset or 0.0)

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 (the URL is the operator's own server)
            self.base_url + path,
            data=data,
            method=method,
            headers={
                "X-AGENT-KEY": self.agent_key,
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": f"zerotp-agent/{__version__}",
            },
        )
        sent = time.time()
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                raw = response.read()
                self._clock(response.headers.get("Date"), sent)
        except urllib.error.HTTPError as exc:
            raw = exc.read() if exc.fp else b""
            self._clock(exc.headers.get("Date") if exc.headers else None, sent)
            text = raw.decode("utf-8", "replace")
            raise ServerError(
                f"{method} {path}: HTTP {exc.code} {_error_message(text)}",
                status=exc.code,
                body=text,
                retry_after=_retry_after(exc.headers.get("Retry-After") if exc.headers else None),
            ) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ServerError(f"{method} {path}: {reason}") from None
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            raise ServerError(f"{method} {path}: the answer is not JSON", status=502) from None

    def _clock(self, date: str | None, sent: float) -> None:
        if not date:
            return
        try:
            server = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            return
        # The header has whole seconds: its true value lies in [server, server + 1).
        offset = server + 0.5 - (sent + time.time()) / 2
        if self.clock_offset is None or abs(offset - self.clock_offset) > 1.0:
            self.clock_offset = offset
        else:
            self.clock_offset += (offset - self.clock_offset) * 0.1

    # --- the agent API ---------------------------------------------------------------------

    def sync(self, modems: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """POST /api/modem/sync in batches; returns the rejected items (with their uid)."""
        errors: list[dict[str, Any]] = []
        for start in range(0, len(modems), BATCH_MAX):
            chunk = modems[start : start + BATCH_MAX]
            answer = self.request("POST", "/api/modem/sync", {"modems": chunk})
            errors.extend((answer or {}).get("errors", []))
        return errors

    def heartbeat(self, items: list[dict[str, Any]]) -> list[str]:
        """POST /api/modem/heartbeat in batches; returns the uids the server does not know."""
        unknown: list[str] = []
        for start in range(0, len(items), BATCH_MAX):
            chunk = items[start : start + BATCH_MAX]
            answer = self.request("POST", "/api/modem/heartbeat", {"modems": chunk})
            unknown.extend((answer or {}).get("unknown", []))
        return unknown

    def inbound_sms(self, body: dict[str, Any]) -> dict[str, Any]:
        answer = self.request("POST", "/api/modem/inbound-sms", body)
        return answer if isinstance(answer, dict) else {}

    def open_orders(self) -> list[dict[str, Any]]:
        return (self.request("GET", "/api/modem/orders") or {}).get("orders", [])


def _error_message(text: str) -> str:
    try:
        error = json.loads(text)["error"]
        return f"{error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        return text[:200]


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
