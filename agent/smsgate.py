"""`python -m agent smsgate`: a bridge for Android phones running SMS Gateway for Android
(SMSGate, github.com/capcom6/android-sms-gateway, docs.sms-gate.app).

The phone posts webhooks; the bridge verifies them and turns them into the agent API:

- `sms:received` -> the outbox (committed before the answer), then `inbound-sms` by the
  Deliverer, exactly like an SMS read from a serial modem;
- `system:ping` -> a heartbeat for that phone's SIMs (set the app's Settings > Ping interval
  below the server's MODEM_ONLINE_SECONDS, e.g. 60 s: the ping is the only proof of life);
- anything else (`sms:sent`, `sms:delivered`, `mms:received`, ...) -> 200 and ignored.

Each configured SIM (`--sim DEVICE:SLOT=PHONE[,mapping=M]`) is one modem on the server with
the uid `smsgate-DEVICE-SLOT`. DEVICE is the webhook's `deviceId`, SLOT its 1-based
`payload.simNumber`.

What SMSGate does that shapes this code (docs.sms-gate.app, features/webhooks.md, and the
app's source):
- every request is signed: `X-Signature` = hex HMAC-SHA256(signing key, raw body +
  `X-Timestamp`), the timestamp being Unix seconds taken when that attempt is sent (retries
  are signed afresh, so a 5-minute window does not refuse a late retry);
- the body is Gson's JSON, which escapes `<`, `>`, `=`, `&` and `'` as `\\u003c`...: only the
  raw bytes verify, never a re-serialisation;
- it wants a 2xx quickly (its HTTP client gives up after 5 s without data) and retries any
  other answer with backoff for about two days, so an SMS we cannot place is answered 200;
- `messageId` is a hash of the content and may repeat: our dedupe is the outbox's message id;
- `payload.phoneNumber` (the sender, for inbound events) is deprecated since 2026-02 in
  favour of `payload.sender`; both are read, `sender` first.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from agent.delivery import Deliverer
from agent.modem import MAPPINGS
from agent.outbox import Outbox, iso, received_time
from agent.server import Server, ServerError

log = logging.getLogger("zerotp.agent")

# A webhook is a few hundred bytes; anything this big is not SMSGate.
MAX_BODY_BYTES = 64 * 1024

# A signed request whose X-Timestamp is further than this from now is a replay (or a phone
# with a wrong clock, which would also make its receivedAt worthless).
SIGNATURE_WINDOW_SECONDS = 300.0

# A client that stops sending mid-request must not hold a thread for ever.
SOCKET_TIMEOUT_SECONDS = 30.0

# Sync attempts while the server cannot be reached: after 5 s, doubling up to a minute.
SYNC_RETRY_FIRST_SECONDS = 5.0
SYNC_RETRY_MAX_SECONDS = 60.0

# An oversized body up to this size is read and dropped before the 413, so that the client
# reads the answer instead of a connection reset; a bigger one just has its connection closed.
_DRAIN_LIMIT = 1024 * 1024

_SIM_FORMAT = "DEVICE:SLOT=PHONE[,mapping=normal|promo|special]"


@dataclass(frozen=True)
class Sim:
    """One SIM of one SMSGate phone, configured with `--sim`."""

    device: str  # the webhook's deviceId
    slot: int  # the webhook's simNumber: 1 for the first SIM slot
    phone: str  # digits only, country code first
    mapping: str = "normal"

    @property
    def uid(self) -> str:
        return f"smsgate-{self.device}-{self.slot}"

    @property
    def port(self) -> str:
        """Its key in the outbox's modems table (what `status` lists)."""
        return f"smsgate:{self.device}:{self.slot}"


def parse_sim(spec: str) -> Sim:
    """`DEVICE:SLOT=PHONE[,mapping=normal|promo|special]`, e.g.
    `ffffffffceb0b1db0000018e937c815b:1=+62 811 1234,mapping=promo`."""

    def bad(reason: str) -> ValueError:
        return ValueError(f"bad --sim {spec!r}: {reason} (expected {_SIM_FORMAT})")

    head, equals, rest = spec.strip().partition("=")
    device, colon, slot_text = head.rpartition(":")
    device, slot_text = device.strip(), slot_text.strip()
    if not equals or not colon or not device:
        raise bad("DEVICE:SLOT= is missing")
    if any(char.isspace() for char in device):
        raise bad("DEVICE has spaces")
    if not (slot_text.isascii() and slot_text.isdigit()) or int(slot_text) < 1:
        raise bad("SLOT must be SMSGate's simNumber, 1 for the first SIM")
    phone_text, *options = rest.split(",")
    phone = phone_text.replace(" ", "")
    if phone.startswith("+"):
        phone = phone[1:]
    if not (phone.isascii() and phone.isdigit()):
        raise bad("PHONE must be digits (a leading + and spaces are allowed)")
    if not 5 <= len(phone) <= 15:
        raise bad("PHONE must have 5 to 15 digits, country code first")
    mapping = "normal"
    for option in options:
        name, _, value = option.partition("=")
        if name.strip() != "mapping":
            raise bad(f"unknown option {option.strip()!r}")
        mapping = value.strip()
        if mapping not in MAPPINGS:
            raise bad(f"mapping must be one of {', '.join(MAPPINGS)}")
    return Sim(device=device, slot=int(slot_text), phone=phone, mapping=mapping)


class Bridge:
    """The webhook receiver. Thread-safe: the HTTP server runs one thread per request."""

    def __init__(
        self,
        *,
        server: Server,
        outbox: Outbox,
        signing_key: str,
        sims: Sequence[Sim],
        provider: str = "SMSGate",
    ) -> None:
        if not signing_key:
            raise ValueError("the SMSGate signing key is empty (the app shows it in Settings)")
        if not sims:
            raise ValueError(f"no SIM configured: give --sim {_SIM_FORMAT}")
        self.server = server
        self.outbox = outbox
        self.sims = tuple(sims)
        self.provider = provider
        # SMSGate signs with the key's UTF-8 bytes (Kotlin's String.toByteArray()).
        self._key = signing_key.encode("utf-8")
        self._by_slot: dict[tuple[str, int], Sim] = {}
        self._by_device: dict[str, list[Sim]] = {}
        for sim in self.sims:
            if (sim.device, sim.slot) in self._by_slot:
                raise ValueError(f"--sim {sim.device}:{sim.slot} is given twice")
            self._by_slot[(sim.device, sim.slot)] = sim
            self._by_device.setdefault(sim.device, []).append(sim)
        self._uids = {sim.uid for sim in self.sims}
        # Set by run(): woken after each stored SMS, and told when the key is refused.
        self.deliverer: Deliverer | None = None
        self.on_key_refused: Callable[[ServerError], None] | None = None
        self._lock = threading.Lock()
        self._synced: set[str] = set()  # uids the server accepted in the last sync
        self._pinging: set[str] = set()  # devices whose heartbeat is on its way
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- the server side -------------------------------------------------------------------

    def sync(self) -> None:
        """POST /api/modem/sync for every configured SIM; a failed request raises ServerError.
        SIMs the server rejects (say, a number another reseller holds) are logged and their
        SMS are kept in the outbox instead of being posted to a modem the server lacks."""
        items = [
            {
                "uid": sim.uid,
                "phone_number": sim.phone,
                "provider": self.provider,
                "mapping": sim.mapping,
            }
            for sim in self.sims
        ]
        errors = self.server.sync(items)
        rejected = {str(error.get("uid")): error for error in errors}
        for uid, error in rejected.items():
            log.error("sync refused SMSGate SIM %s: %s", uid, error.get("message"))
        with self._lock:
            self._synced = self._uids - set(rejected)
        for sim in self.sims:
            error = rejected.get(sim.uid)
            self.outbox.modem_seen(
                sim.port,
                uid=sim.uid,
                phone=sim.phone,
                number_source="--sim",
                provider=self.provider,
                mapping=sim.mapping,
                present=1,
                note=f"sync refused: {error.get('message')}" if error else None,
            )
        log.info("synced %d SMSGate SIM(s)", len(self.sims) - len(rejected))
        if self.deliverer is not None:
            self.deliverer.wake.set()  # SMS that waited for the sync may go now

    def ready(self, uid: str) -> bool:
        """May this SIM's SMS be posted? Not before the server knows it (an unknown uid is a
        404, which would dead-letter the SMS). A uid no longer configured was synced by an
        earlier run."""
        with self._lock:
            return uid in self._synced or uid not in self._uids

    def _heartbeat(self, device: str, sims: Sequence[Sim]) -> None:
        try:
            with self._lock:
                uids = [sim.uid for sim in sims if sim.uid in self._synced]
            if not uids:
                log.info("system:ping from %s: its SIMs are not synced yet", device)
                return
            try:
                unknown = self.server.heartbeat([{"uid": uid, "can_order": True} for uid in uids])
            except ServerError as exc:
                log.warning("heartbeat for SMSGate device %s failed: %s", device, exc)
                if exc.key_refused and self.on_key_refused is not None:
                    self.on_key_refused(exc)
                return
            self.outbox.modems_heartbeat_ok(uids, time.time())
            log.debug("heartbeat for %s (%d SIM(s))", device, len(uids))
            if unknown:
                # The server forgot them (a new database, a modem deleted): sync again.
                log.warning("the server does not know %s; syncing again", ", ".join(unknown))
                try:
                    self.sync()
                except ServerError as exc:
                    log.warning("sync failed: %s", exc)
        except Exception:  # a bug must not pass silently in a background thread
            log.exception("heartbeat for SMSGate device %s: unexpected error", device)
        finally:
            with self._lock:
                self._pinging.discard(device)

    # --- the webhook side ------------------------------------------------------------------

    def handle_webhook(self, headers: Mapping[str, str], body: bytes) -> tuple[int, dict]:
        """One webhook request -> (HTTP status, JSON answer)."""
        problem = self._verify(headers, body)
        if problem:
            log.warning("SMSGate webhook refused: %s", problem)
            return 401, {"error": problem}
        try:
            envelope = json.loads(body)
        except ValueError:  # UnicodeDecodeError is a ValueError too
            return self._malformed("the body is not JSON")
        if not isinstance(envelope, dict):
            return self._malformed("the body is not a JSON object")
        event, device = envelope.get("event"), envelope.get("deviceId")
        if not isinstance(event, str) or not isinstance(device, str):
            return self._malformed("event or deviceId is missing")
        if event == "sms:received":
            return self._sms_received(device, envelope.get("payload"))
        if event == "system:ping":
            return self._ping(device)
        log.debug("SMSGate %s from %s ignored", event, device)
        return 200, {"ok": True, "ignored": event}

    def _verify(self, headers: Mapping[str, str], body: bytes) -> str | None:
        """Why the request is not SMSGate's own, or None."""
        signature, stamp = headers.get("X-Signature"), headers.get("X-Timestamp")
        if not signature or not stamp:
            return "X-Signature or X-Timestamp is missing"
        # The header parser decoded the bytes as Latin-1: encoding back gives them unchanged.
        message = body + stamp.encode("latin-1", "replace")
        expected = hmac.new(self._key, message, hashlib.sha256).hexdigest().encode()
        if not hmac.compare_digest(
            expected, signature.strip().lower().encode("latin-1", "replace")
        ):
            return "bad signature"
        try:
            sent_at = int(stamp.strip())
        except ValueError:
            return "X-Timestamp is not Unix seconds"
        # The server's clock: the agent's own may be wrong, the phone's is checked against it.
        skew = sent_at - self.server.now()
        if abs(skew) > SIGNATURE_WINDOW_SECONDS:
            return f"X-Timestamp is {skew:+.0f} s from now (more than 5 minutes)"
        return None

    def _malformed(self, why: str) -> tuple[int, dict]:
        # SMSGate will retry a 400: a malformed webhook is a bug on one side or the other.
        log.error("malformed SMSGate webhook: %s", why)
        return 400, {"error": why}

    def _sim(self, device: str, slot: int | None) -> Sim | None:
        if slot is None:
            # simNumber is null when the app may not read the phone state; then a device
            # with one configured SIM is unambiguous, one with two is not.
            sims = self._by_device.get(device, [])
            return sims[0] if len(sims) == 1 else None
        return self._by_slot.get((device, slot))

    def _sms_received(self, device: str, payload: object) -> tuple[int, dict]:
        if not isinstance(payload, dict):
            return self._malformed("sms:received without a payload")
        text = payload.get("message")
        sender = payload.get("sender") or payload.get("phoneNumber")
        stamp = payload.get("receivedAt")
        slot = payload.get("simNumber")
        if not isinstance(text, str) or not isinstance(sender, str) or not isinstance(stamp, str):
            return self._malformed("sms:received without message, sender or receivedAt")
        if slot is not None and (type(slot) is not int):
            return self._malformed(f"simNumber {slot!r} is not a number")
        sim = self._sim(device, slot)
        if sim is None:
            # 200 all the same: SMSGate would retry for two days an SMS we can never place.
            log.warning(
                "SMS from %s on SMSGate %s SIM %s dropped: no --sim %s:%s=PHONE given",
                sender,
                device,
                slot,
                device,
                slot if slot is not None else "SLOT",
            )
            return 200, {"ok": True, "ignored": "unknown SIM"}
        seen_at = self.server.now()
        moment = _parse_time(stamp)
        if moment is None:
            received_at = iso(datetime.fromtimestamp(seen_at, timezone.utc))
            log.warning("SMS from %s on %s: unreadable receivedAt %r", sender, sim.uid, stamp)
        else:
            # The signed X-Timestamp vouches for the phone's clock; an old stamp is an SMS
            # that waited on the phone while we were away, and must stay old.
            received_at, replaced = received_time(moment, seen_at, may_be_late=True)
            if replaced:
                log.warning(
                    "SMS from %s on %s: receivedAt %s is over 5 min ahead; sending %s",
                    sender,
                    sim.uid,
                    stamp,
                    received_at,
                )
        # Committed before the 200: once SMSGate stops retrying, the outbox has it.
        added = self.outbox.add_message(
            uid=sim.uid,
            phone=sim.phone,
            sender=sender,
            text=text,
            stamp=stamp,
            received_at=received_at,
        )
        if added:
            log.info("SMS from %s on %s stored", sender, sim.uid)
            if self.deliverer is not None:
                self.deliverer.wake.set()
        else:
            log.info("SMS from %s on %s was already stored (a retry)", sender, sim.uid)
        return 200, {"ok": True}

    def _ping(self, device: str) -> tuple[int, dict]:
        sims = self._by_device.get(device)
        if not sims:
            log.warning("system:ping from unknown SMSGate device %s", device)
            return 200, {"ok": True, "ignored": "unknown device"}
        with self._lock:
            if device in self._pinging:
                return 200, {"ok": True}  # the previous heartbeat is still on its way
            self._pinging.add(device)
        # In the background: a slow server must not hold the phone's request (it gives up
        # after 5 s and retries).
        threading.Thread(
            target=self._heartbeat, args=(device, sims), name=f"heartbeat {device}", daemon=True
        ).start()
        return 200, {"ok": True}

    # --- the HTTP server -------------------------------------------------------------------

    def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen in a daemon thread; returns the bound address (port 0 picks a free one)."""
        if self._httpd is not None:
            raise RuntimeError("the bridge is already listening")
        server_class = _HTTPServer6 if ":" in host else _HTTPServer
        httpd = server_class((host, port), _Handler)
        httpd.bridge = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, name="smsgate", daemon=True
        )
        self._thread.start()
        bound_host, bound_port = httpd.server_address[:2]
        return str(bound_host), int(bound_port)

    def close(self) -> None:
        """Stop listening (idempotent). Requests in progress finish on their own threads."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(5.0)


class _HTTPServer(ThreadingHTTPServer):
    bridge: Bridge


class _HTTPServer6(_HTTPServer):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    server_version = "zerotp-agent-smsgate"
    protocol_version = "HTTP/1.1"  # keep-alive: the phone's client reuses connections
    timeout = SOCKET_TIMEOUT_SECONDS

    def do_POST(self) -> None:
        if self.headers.get("Transfer-Encoding"):
            # SMSGate always sends a Content-Length; chunked bodies are not worth supporting.
            self.close_connection = True
            self._answer(411, {"error": "Content-Length required"})
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.close_connection = True
            self._answer(411, {"error": "Content-Length required"})
            return
        if length < 0 or length > MAX_BODY_BYTES:
            self.close_connection = True
            if 0 < length <= _DRAIN_LIMIT:
                while length > 0:
                    chunk = self.rfile.read(min(length, 65536))
                    if not chunk:
                        break
                    length -= len(chunk)
            self._answer(413, {"error": f"the body is over {MAX_BODY_BYTES} bytes"})
            return
        body = self.rfile.read(length)
        try:
            status, answer = self.server.bridge.handle_webhook(self.headers, body)
        except Exception:
            # The outbox could not commit (disk full...): a 5xx makes the phone try again.
            log.exception("SMSGate webhook: unexpected error")
            status, answer = 500, {"error": "internal error"}
        self._answer(status, answer)

    def _not_allowed(self) -> None:
        self.close_connection = True  # any body it had stays unread: not a next request
        self._answer(405, {"error": "POST only"}, {"Allow": "POST"})

    do_GET = do_HEAD = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _not_allowed

    def _answer(self, status: int, answer: dict, headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(answer).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("smsgate http: " + format, *args)


# Android before 7 formats a negative offset as "+-5:00" (and "+-3:-30"): SMSGate's own
# fallback for old phones. Repaired rather than refused, the instant is right.
_OLD_ANDROID_OFFSET = re.compile(r"\+-(\d{1,2}):-?(\d{2})$")


def _parse_time(value: str) -> datetime | None:
    """SMSGate's receivedAt (`2024-06-22T15:46:11.000+07:00`, or `...Z` in UTC) -> an aware
    datetime; None when it cannot be read or has no offset."""
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"  # Python 3.10's fromisoformat has no Z
    text = _OLD_ANDROID_OFFSET.sub(lambda m: f"-{int(m[1]):02d}:{m[2]}", text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _parse_listen(listen: str) -> tuple[str, int]:
    """`HOST:PORT`, `:PORT` (every interface) or `[IPv6]:PORT`."""
    host, colon, port_text = listen.strip().rpartition(":")
    host = host.strip("[]") or "0.0.0.0"  # noqa: S104 (the phones are on the LAN)
    if not colon or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"bad --listen {listen!r} (expected HOST:PORT, e.g. 0.0.0.0:8787)")
    return host, int(port_text)


def run(
    *,
    server: Server,
    outbox: Outbox,
    listen: str,
    signing_key: str,
    sims: Sequence[Sim],
    stop: threading.Event,
) -> int:
    """The `smsgate` command: sync, listen, deliver until `stop`; 0 after a clean stop, 2 on
    bad arguments or a refused key."""
    try:
        host, port = _parse_listen(listen)
        bridge = Bridge(server=server, outbox=outbox, signing_key=signing_key, sims=sims)
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    refused: list[ServerError] = []
    halt = threading.Event()  # stops delivery: on `stop`, or when the key is refused

    def key_refused(exc: ServerError) -> None:
        refused.append(exc)
        halt.set()

    bridge.on_key_refused = key_refused
    retry_in: float | None = None  # seconds until the next sync attempt; None when synced
    try:
        bridge.sync()
    except ServerError as exc:
        if exc.key_refused or not exc.retryable:
            log.error("sync refused: %s", exc)
            return 2
        # Webhooks are still taken in: their SMS wait in the outbox for the sync.
        log.warning("sync failed (%s); retrying, SMS are kept meanwhile", exc)
        retry_in = SYNC_RETRY_FIRST_SECONDS
    deliverer = Deliverer(outbox, server, stop=halt, ready=bridge.ready, on_key_refused=key_refused)
    bridge.deliverer = deliverer
    try:
        bound_host, bound_port = bridge.start(host, port)
    except OSError as exc:
        log.error("cannot listen on %s: %s", listen, exc)
        return 2
    deliverer.start()
    log.info(
        "SMSGate bridge on http://%s:%d/ for %d SIM(s)", bound_host, bound_port, len(bridge.sims)
    )
    next_sync = time.monotonic() + (retry_in or 0.0)
    try:
        while not stop.is_set() and not halt.is_set():
            if retry_in is not None and time.monotonic() >= next_sync:
                try:
                    bridge.sync()
                    retry_in = None
                except ServerError as exc:
                    if exc.key_refused or not exc.retryable:
                        log.error("sync refused: %s", exc)
                        refused.append(exc)
                        break
                    retry_in = min(SYNC_RETRY_MAX_SECONDS, retry_in * 2)
                    next_sync = time.monotonic() + retry_in
                    log.warning("sync failed (%s); next try in %.0f s", exc, retry_in)
            stop.wait(0.25)
    finally:
        # No new webhooks first (the phone keeps what we did not answer), then delivery.
        bridge.close()
        halt.set()
        deliverer.wake.set()
        deliverer.join(server.timeout + 5.0)
    if refused:
        return 2
    log.info("SMSGate bridge stopped")
    return 0
