"""Posting the outbox to the server: oldest first per modem, until a 2xx, with backoff."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

from agent.outbox import Message, Outbox
from agent.server import Server, ServerError

log = logging.getLogger("zerotp.agent")

# The contract caps the wait between two tries of one message at a minute.
MAX_BACKOFF_SECONDS = 60.0


def backoff(attempts: int) -> float:
    """1, 2, 4, ... 60 s after the 1st, 2nd, 3rd, ... failed try."""
    # The exponent is capped too: 2.0 ** 1024 overflows (a message ~17 h in retry).
    return min(MAX_BACKOFF_SECONDS, 2.0 ** min(max(0, attempts - 1), 16))


class Deliverer(threading.Thread):
    def __init__(
        self,
        outbox: Outbox,
        server: Server,
        *,
        stop: threading.Event,
        ready: Callable[[str], bool] = lambda uid: True,
        on_key_refused: Callable[[ServerError], None] | None = None,
    ) -> None:
        super().__init__(name="delivery", daemon=True)
        self.outbox = outbox
        self.server = server
        self.stop = stop
        self.ready = ready  # a modem's SMS wait until the server knows the modem (synced)
        self.on_key_refused = on_key_refused
        self.wake = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.wake.clear()  # before the pass: a wake-up during it brings another at once
            try:
                self.outbox.assemble_due()
                self.deliver_due()
            except Exception:  # a bug must not end delivery: log it and go on
                log.exception("delivery: unexpected error")
            self.wake.wait(1.0)

    def deliver_due(self) -> int:
        """One pass over the due messages; returns how many were settled (sent or dead)."""
        settled = 0
        held: set[str] = set()  # modems whose older message must go first
        for message in self.outbox.due():
            if self.stop.is_set():
                break
            if message.uid in held or not self.ready(message.uid):
                held.add(message.uid)
                continue
            if self._post(message):
                settled += 1
            else:
                held.add(message.uid)
        return settled

    def _post(self, message: Message) -> bool:
        """True when the message is settled: delivered, or dead-lettered."""
        try:
            answer = self.server.inbound_sms(message.body())
        except ServerError as exc:
            if exc.key_refused:
                # Not the message's fault: it stays waiting, and the agent stops (exit 2).
                log.error("the server refused the agent key: %s", exc)
                if self.on_key_refused:
                    self.on_key_refused(exc)
                self.stop.set()  # every other message would be refused the same way
                return False
            if not exc.retryable:
                self.outbox.mark_dead(message, f"{exc.status} {exc.body}")
                log.error(
                    "SMS %s from %s on %s dead-lettered: %s",
                    message.id,
                    message.sender,
                    message.uid,
                    exc,
                )
                return True
            wait = max(backoff(message.attempts + 1), exc.retry_after or 0.0)
            self.outbox.mark_retry(message, str(exc), time.time() + wait)
            log.warning("SMS %s not delivered (%s); next try in %.0f s", message.id, exc, wait)
            return False
        self.outbox.mark_sent(message, json.dumps(answer))
        if message.incomplete:
            log.warning(
                "SMS %s from %s on %s was sent incomplete: a part never came",
                message.id,
                message.sender,
                message.uid,
            )
        if answer.get("matched"):
            log.info(
                "SMS %s from %s on %s: order %s, code %s",
                message.id,
                message.sender,
                message.uid,
                answer.get("order_id"),
                answer.get("otp"),
            )
        else:
            log.info(
                "SMS %s from %s on %s delivered (no open order matched)",
                message.id,
                message.sender,
                message.uid,
            )
        return True
