"""Time to OTP: how long after the agent reports an SMS the buyer has its code.

Under the inbound-SMS load (`POST /api/modem/inbound-sms` for the seeded pending orders,
one SMS per order, on 16 connections like the bench), with gunicorn serving and the real
job-queue worker running as the Procfile runs it (`manage.py jobqueue`, the default
`Q_CLUSTER` of zerotp/settings.py), two times are taken on the bench process's one clock
(`time.perf_counter`), from just before the inbound-SMS request is sent:

(a) to the answer of the first `GET /api/v1/orders/{id}` (by the order's buyer's key)
    that shows the code: issued right after the inbound-SMS answer, polled until it does;
(b) to the first byte of the callback's request at a receiver on 127.0.0.1 inside this
    process (its own thread and event loop), which answers 200 at once.

The orders (the fixture's inbound-SMS ones still pending, last first) have buyers who
get a callback URL pointing at the receiver, a signing secret as the site makes them and
fresh API keys (the seed keeps only the bench buyers' keys, and these are other buyers);
all three are put back afterwards, so a scenario measured later on the same database
sends no callbacks. The
worker is started and stopped here, with the server's environment (the same SECRET_KEY:
queued tasks are signed with it) plus CALLBACK_ALLOW_PRIVATE=true, which the worker needs
to post to 127.0.0.1 (the server does not: the URL is set in the database, and the SMS
path writes the delivery without checking the URL).

    .venv/bin/python -m bench.time_to_otp [--db-name zerotp_tto] [--keep]

creates, migrates and seeds a small database of its own, serves it with gunicorn,
measures, prints the markdown section, and drops the database unless --keep.
"""

import argparse
import asyncio
import itertools
import json
import math
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import aiohttp
import psycopg

from accounts.keys import API_KEY_PREFIX, key_digest, new_callback_secret
from bench.db import Database
from bench.load import percentile
from bench.payloads import sms_body
from bench.project import ROOT, manage, popen
from bench.seed import BATCH, PENDING_PER_BUYER, Fixture, Sizes, describe, seed
from bench.server import gunicorn, production_env

Log = Callable[[str], None]

TARGET_P99_S = 1.0  # the issue: the callback's p99 under one second
RECEIVER_PATH = "/otp"
PROBES = 3  # SMS sent one by one before the load, to see the whole path work once
READY_SECONDS = 120.0  # how long the worker may take to start and send the probes
STOP_SECONDS = 80.0  # jobqueue's own limit is Q_CLUSTER's timeout (50 s) + 10 s
GIVE_UP_POLLING = 10.0  # seconds a GET may keep not showing a code before it is an error


def _ms(seconds: float) -> str:
    if math.isnan(seconds):
        return "-"
    if math.isinf(seconds):
        return "never"
    return f"{seconds * 1000:,.0f}" if seconds >= 10 else f"{seconds * 1000:,.1f}"


# --- the callback receiver -----------------------------------------------------------------
class _Delivery(asyncio.Protocol):
    """One connection of the worker's: the request's first byte is its arrival; the body
    (Content-Length, as requests sends bytes) names the order. Answered 200, then closed."""

    LIMIT = 64 * 1024

    def __init__(self, receiver: "Receiver") -> None:
        self.receiver = receiver
        self.first: float | None = None
        self.data = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.first is None:
            self.first = time.perf_counter()
        self.data += data
        end = self.data.find(b"\r\n\r\n")
        if end < 0:
            if len(self.data) > self.LIMIT:
                self._answer(b"431 Request Header Fields Too Large", bad=True)
            return
        length = None
        for line in bytes(self.data[:end]).split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length" and value.strip().isdigit():
                length = int(value.strip())
        if length is None or length > self.LIMIT:
            self._answer(b"411 Length Required", bad=True)
            return
        if len(self.data) < end + 4 + length:
            return
        self.receiver.record(self.first, bytes(self.data[end + 4 : end + 4 + length]))
        self._answer(b"200 OK")

    def _answer(self, status: bytes, *, bad: bool = False) -> None:
        if bad:
            self.receiver.bad += 1
        if self.transport is not None:
            body = b"ok" if status.startswith(b"200") else status
            self.transport.write(
                b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n"
                b"Connection: close\r\n\r\n" + body
            )
            self.transport.close()
            self.transport = None


class Receiver:
    """A callback receiver on an ephemeral port of 127.0.0.1, in a thread with its own
    event loop, so that the load's loop never delays an arrival's timestamp."""

    def __init__(self) -> None:
        self.arrivals: dict[int, float] = {}  # order id -> first arrival (perf_counter)
        self.deliveries = 0
        self.repeats = 0  # a second delivery for an order (a retry, or a sweep's)
        self.unexpected = 0  # orders this run did not send an SMS for
        self.bad = 0  # requests that could not be read
        self.expected: set[int] = set()
        self.port = 0
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="callback-receiver", daemon=True)
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{RECEIVER_PATH}"

    def record(self, at: float, body: bytes) -> None:
        try:
            order_id = int(json.loads(body)["order_id"])
        except (ValueError, KeyError, TypeError):
            self.bad += 1
            return
        with self._lock:
            self.deliveries += 1
            if order_id not in self.expected:
                self.unexpected += 1
            elif order_id in self.arrivals:
                self.repeats += 1
            else:
                self.arrivals[order_id] = at

    def arrived(self, order_id: int) -> float | None:
        with self._lock:
            return self.arrivals.get(order_id)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to the thread that waits for start()
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await self._loop.create_server(lambda: _Delivery(self), "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()

    def __enter__(self) -> "Receiver":
        self._thread.start()
        self._ready.wait(timeout=30)
        if self._error is not None or not self.port:
            raise RuntimeError(f"the callback receiver did not start: {self._error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)


# --- the job-queue worker ------------------------------------------------------------------
def worker_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """The job queue's set-up as the worker will read it (the project's settings under the
    given environment): workers, broker and its poll interval, bulk."""
    code = (
        "import json\n"
        "from django_q.conf import Conf\n"
        "print(json.dumps({'workers': Conf.WORKERS, 'broker': 'redis' if Conf.REDIS and "
        "not Conf.ORM else 'orm' if Conf.ORM else 'other', 'poll': Conf.POLL, "
        "'bulk': Conf.BULK, 'recycle': Conf.RECYCLE}))\n"
    )
    out = manage("shell", "-c", code, env=env)
    line = next(x for x in reversed(out.splitlines()) if x.startswith("{"))
    return dict(json.loads(line))


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        if int(text.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _stop_worker(process: subprocess.Popen[bytes], log: Log) -> None:
    """SIGTERM to `manage.py jobqueue` (the Procfile's way, see its docstring): it asks
    qcluster to stop, which finishes the tasks at hand. Killed, cluster and all, only if
    it has not stopped STOP_SECONDS later."""
    if process.poll() is not None:
        return
    cluster = _children(process.pid)  # qcluster's parent, in a process group of its own
    try:
        os.killpg(process.pid, signal.SIGTERM)  # our jobqueue only: qcluster has its own group
        process.wait(timeout=STOP_SECONDS)
        return
    except subprocess.TimeoutExpired:
        log(f"the job-queue worker did not stop within {STOP_SECONDS:g} s: killed")
    for group in [process.pid, *cluster]:
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait(timeout=10)


@contextmanager
def job_queue(
    env: Mapping[str, str], log_path: Path, log: Log
) -> Iterator[subprocess.Popen[bytes]]:
    """`manage.py jobqueue` as the Procfile runs it, stopped on the way out whatever happens."""
    process: subprocess.Popen[bytes] = popen(
        [sys.executable, "manage.py", "jobqueue"], env=env, log=log_path
    )
    try:
        yield process
    finally:
        _stop_worker(process, log)


# --- the orders, their buyers' keys and callback URLs --------------------------------------
@dataclass(frozen=True)
class Target:
    order_id: int
    buyer_id: int
    reseller: int  # index into fixture.agent_keys
    uid: str
    phone: str


PENDING_SMS_ORDERS = (
    "SELECT id, buyer_id, phone_number FROM orders_order "
    "WHERE status = 'pending' AND application_id = %s AND expires_at > now() + interval '10 min' "
    "ORDER BY id DESC"
)


def pending_targets(conn: psycopg.Connection, fixture: Fixture) -> list[Target]:
    """The fixture's inbound-SMS orders still pending, last first: the suite's inbound-SMS
    scenario takes them from the first on, so whichever runs first, each finds its own
    orders still pending (an SMS for a completed order is no longer the same work)."""
    where = {phone: (reseller, uid) for reseller, uid, phone in fixture.sms_targets}
    targets = []
    for order_id, buyer_id, phone in conn.execute(PENDING_SMS_ORDERS, [fixture.sms_app_id]):
        if phone in where:
            reseller, uid = where[phone]
            targets.append(Target(order_id, buyer_id, reseller, uid, phone))
    return targets


@dataclass
class Saved:
    """What the run changed on the buyers, to put back."""

    users: list[tuple[int, str, bool, str]]  # id, callback URL, enabled, signing secret
    keys: list[tuple[int, str, str]]  # API key id, digest, last4


def prepare_buyers(
    conn: psycopg.Connection, buyer_ids: list[int], callback_url: str
) -> tuple[dict[int, str], Saved]:
    """Point the buyers' callbacks at the receiver, each with a fresh signing secret, and
    give each a fresh API key (only the digest is stored, and the seed kept no key of
    theirs). The keys by buyer id, and what to restore."""
    users = [
        (int(i), str(u), bool(e), str(c))
        for i, u, e, c in conn.execute(
            "SELECT id, callback_url, callback_enabled, callback_secret FROM accounts_user "
            "WHERE id = ANY(%s)",
            [buyer_ids],
        )
    ]
    old_keys = [
        (int(k), int(u), str(d), str(l4))
        for k, u, d, l4 in conn.execute(
            "SELECT id, user_id, digest, last4 FROM accounts_apikey "
            "WHERE user_id = ANY(%s) AND kind = 'api' AND revoked_at IS NULL",
            [buyer_ids],
        )
    ]
    keys = {user: API_KEY_PREFIX + secrets.token_urlsafe(32) for _, user, _, _ in old_keys}
    _set_users(conn, [(u[0], callback_url, True, new_callback_secret()) for u in users])
    _set_keys(conn, [(k, key_digest(keys[u]), keys[u][-4:]) for k, u, _, _ in old_keys])
    conn.commit()
    return keys, Saved(users, [(k, d, l4) for k, _, d, l4 in old_keys])


def _set_users(conn: psycopg.Connection, rows: list[tuple[int, str, bool, str]]) -> None:
    conn.execute(
        "UPDATE accounts_user u SET callback_url = v.url, callback_enabled = v.enabled,"
        " callback_secret = v.secret FROM ("
        "  SELECT unnest(%s::bigint[]) AS id, unnest(%s::text[]) AS url,"
        "         unnest(%s::boolean[]) AS enabled, unnest(%s::text[]) AS secret) v"
        " WHERE u.id = v.id",
        [[r[i] for r in rows] for i in range(4)],
    )


def _set_keys(conn: psycopg.Connection, rows: list[tuple[int, str, str]]) -> None:
    conn.execute(
        "UPDATE accounts_apikey k SET digest = v.digest, last4 = v.last4 FROM ("
        "  SELECT unnest(%s::bigint[]) AS id, unnest(%s::text[]) AS digest,"
        "         unnest(%s::text[]) AS last4) v WHERE k.id = v.id",
        [[r[i] for r in rows] for i in range(3)],
    )


def restore_buyers(conn: psycopg.Connection, saved: Saved) -> None:
    _set_users(conn, saved.users)
    _set_keys(conn, saved.keys)
    conn.commit()


# --- the result ----------------------------------------------------------------------------
@dataclass
class TimeToOtp:
    connections: int
    warmup: float
    duration: float
    grace: float
    sample_every: int
    worker: dict[str, Any]  # the job queue's set-up (worker_settings)
    answered: int = 0  # inbound-SMS answers (matched) that arrived in the measured window
    errors: int = 0
    error_kinds: Counter[str] = field(default_factory=Counter)
    exhausted: bool = False
    code_shown_s: list[float] = field(default_factory=list)  # (a), SMS sent in the window
    callback_s: list[float] = field(default_factory=list)  # (b), SMS sent in the window
    window_missing: int = 0  # SMS sent in the window whose callback never came
    sent_total: int = 0  # SMS matched, warm-up and tail included
    missing_total: int = 0  # of those, callbacks that never came
    repeats: int = 0
    unexpected: int = 0
    unreadable: int = 0
    outstanding: int = 0  # callbacks not yet arrived when the load stopped (the backlog)
    queued_after: int = 0  # job-queue tasks still in the broker after the wait
    machine_busy: float = 0.0  # share of both cores busy during the load (everyone's)
    # Where (b) went, from the server's own timestamps (seconds): the SMS request sent ->
    # the delivery row written in its transaction -> the worker's claim -> first byte.
    in_request_s: list[float] = field(default_factory=list)
    queued_s: list[float] = field(default_factory=list)
    sending_s: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.answered / self.duration if self.duration else 0.0

    @property
    def callbacks_with_missing(self) -> list[float]:
        """(b) with a callback that never came counted as later than any."""
        return self.callback_s + [math.inf] * self.window_missing

    def callback_p(self, p: float) -> float:
        return percentile(self.callbacks_with_missing, p)

    @property
    def passed(self) -> bool:
        return (
            not self.errors
            and not self.exhausted
            and bool(self.callback_s)
            and self.callback_p(99) < TARGET_P99_S
        )

    def worker_words(self) -> str:
        w = self.worker
        broker = {"orm": "the database (ORM) broker", "redis": "the Redis broker"}.get(
            str(w.get("broker")), f"the {w.get('broker')} broker"
        )
        if w.get("broker") == "orm":
            broker += f" polled every {w.get('poll')} s when empty"
        return f"{w.get('workers')} workers, {broker}, {w.get('bulk')} task per fetch"

    def markdown(self) -> list[str]:
        """The section for docs/PERFORMANCE.md: what was measured, the table, the rest."""
        a, b = self.code_shown_s, self.callbacks_with_missing
        result = "pass" if self.passed else "fail"
        if self.errors or self.exhausted:
            result += " (errors)" if self.errors else " (ran out of pending orders)"
        sample = (
            "after every inbound SMS"
            if self.sample_every == 1
            else f"after one inbound SMS in {self.sample_every} on each connection"
        )
        lines = [
            "### Time to OTP",
            "",
            "How long after the agent reports an SMS its buyer has the code, under the "
            f"inbound-SMS load: {self.connections} connections post "
            "`POST /api/modem/inbound-sms` for seeded pending orders (one SMS each) for "
            f"{self.duration:g} s after {self.warmup:g} s of warm-up, with gunicorn serving "
            "and the job-queue worker running as the Procfile runs it (`manage.py jobqueue`, "
            f"`Q_CLUSTER` as zerotp/settings.py reads it: {self.worker_words()}). The "
            "orders' buyers have a "
            "callback URL on a receiver in the bench process (127.0.0.1, its own thread, "
            "answers 200 at once). Both times run on the bench process's one clock from just "
            "before the inbound-SMS request is sent: **(a)** to the answer of the first "
            "`GET /api/v1/orders/{id}` by the order's buyer that shows the code, sent on the "
            f"same connection right {sample} (polled until it shows); **(b)** to the first "
            "byte of the callback's request at the receiver, for every SMS sent in the "
            f"measured window. A callback not there {self.grace:g} s after the load counts "
            "as later than any (missing). Target: (b) p99 under "
            f"{TARGET_P99_S * 1000:,.0f} ms.",
            "",
            "| measure | count | p50 ms | p99 ms | max ms | missing | target | result |",
            "|---|---:|---:|---:|---:|---:|---|---|",
            f"| (a) code shown by `GET /api/v1/orders/{{id}}` | {len(a):,} | "
            f"{_ms(percentile(a, 50))} | {_ms(percentile(a, 99))} | "
            f"{_ms(max(a) if a else math.nan)} | | | |",
            f"| (b) callback's first byte at the receiver | {len(self.callback_s):,} | "
            f"{_ms(percentile(b, 50))} | {_ms(percentile(b, 99))} | "
            f"{_ms(max(self.callback_s) if self.callback_s else math.nan)} | "
            f"{self.window_missing:,} | p99 < {TARGET_P99_S * 1000:,.0f} ms | {result} |",
            "",
            f"- Inbound SMS meanwhile: {self.rate:,.1f}/s ({self.answered:,} answered in the "
            f"{self.duration:g} s window, {self.errors} errors"
            + (", ran out of pending orders" if self.exhausted else "")
            + f"); the machine's two cores {self.machine_busy:.0%} busy (anyone's load).",
            f"- Where (b) went, p50 / p99 ms from the server's timestamps: the SMS request "
            f"until its transaction wrote the delivery {self._p5099(self.in_request_s)}; "
            "the delivery written until a worker claimed it (commit, enqueue, broker poll, "
            f"hand-over to a worker) {self._p5099(self.queued_s)}; the claim until the first "
            f"byte at the receiver (claim, HTTP session, connect, send) "
            f"{self._p5099(self.sending_s)}.",
            f"- Deliveries: {self.sent_total:,} SMS matched in all (warm-up and the tail "
            f"included); {self.outstanding:,} callbacks outstanding when the load stopped, "
            f"{self.missing_total:,} never came; "
            f"{self.repeats} sent twice; {self.queued_after:,} tasks still in the job queue "
            "after the wait.",
        ]
        if self.error_kinds:
            lines.append(
                "- Errors: "
                + "; ".join(f"{n} x {kind}" for kind, n in self.error_kinds.most_common(5))
            )
        return [*lines, ""]

    @staticmethod
    def _p5099(values: list[float]) -> str:
        return f"{_ms(percentile(values, 50))} / {_ms(percentile(values, 99))}"

    def summary(self) -> str:
        return (
            f"time to OTP: (a) p50 {_ms(percentile(self.code_shown_s, 50))} ms, p99 "
            f"{_ms(percentile(self.code_shown_s, 99))} ms ({len(self.code_shown_s)}); (b) p50 "
            f"{_ms(self.callback_p(50))} ms, p99 {_ms(self.callback_p(99))} ms "
            f"({len(self.callback_s)}, {self.window_missing} missing); inbound SMS "
            f"{self.rate:.1f}/s, {self.errors} errors; {'pass' if self.passed else 'fail'}"
        )


# --- the load --------------------------------------------------------------------------------
def _busy() -> tuple[int, int]:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


class Load:
    def __init__(
        self,
        base_url: str,
        fixture: Fixture,
        targets: list[Target],
        keys: dict[int, str],
        receiver: Receiver,
        result: TimeToOtp,
    ) -> None:
        self.base_url, self.fixture, self.keys = base_url, fixture, keys
        self.receiver, self.result = receiver, result
        self.targets = iter(targets)
        self.agents = [
            {"X-AGENT-KEY": key, "Content-Type": "application/json"} for key in fixture.agent_keys
        ]
        self.sent_at: dict[int, float] = {}  # order id -> when its SMS was sent (matched ones)
        self.in_window: list[int] = []  # order ids whose SMS was sent in the measured window
        self.codes = itertools.count(100_000)

    def session(self, connections: int) -> aiohttp.ClientSession:
        # gunicorn's sync workers close every connection after the answer.
        connector = aiohttp.TCPConnector(limit=connections, force_close=True)
        timeout = aiohttp.ClientTimeout(total=60)
        return aiohttp.ClientSession(self.base_url, connector=connector, timeout=timeout)

    async def sms(
        self, session: aiohttp.ClientSession, target: Target
    ) -> tuple[float, str | None, str | None]:
        """Send the target's SMS: (when it was sent, the code, or what went wrong)."""
        code = 100_000 + next(self.codes) % 900_000
        body = json.dumps(sms_body(target.uid, target.phone, code))
        sent = time.perf_counter()
        self.sent_at[target.order_id] = sent
        url = "/api/modem/inbound-sms"
        async with session.post(url, data=body, headers=self.agents[target.reseller]) as r:
            raw = await r.read()
        if r.status != 200:
            return sent, None, f"POST {url} -> {r.status} {raw[:120].decode(errors='replace')}"
        data = json.loads(raw)
        if data.get("matched") is not True or data.get("order_id") != target.order_id:
            return sent, None, f"POST {url} -> unexpected answer {raw[:120]!r}"
        return sent, str(data["otp"]), None

    async def code_shown(
        self, session: aiohttp.ClientSession, target: Target, otp: str
    ) -> tuple[float | None, str | None]:
        """Poll the order by its buyer's key until it shows the code: when it first did."""
        url = f"/api/v1/orders/{target.order_id}"
        headers = {"X-API-KEY": self.keys[target.buyer_id]}
        started = time.perf_counter()
        while True:
            async with session.get(url, headers=headers) as r:
                raw = await r.read()
            now = time.perf_counter()
            if r.status != 200:
                return None, f"GET /api/v1/orders/{{id}} -> {r.status} {raw[:120]!r}"
            if json.loads(raw).get("otp_code") == otp:
                return now, None
            if now - started > GIVE_UP_POLLING:
                return None, f"GET /api/v1/orders/{{id}} showed no code in {GIVE_UP_POLLING} s"
            await asyncio.sleep(0.005)

    def _error(self, error: str, target: Target, *, forget: bool) -> None:
        self.result.errors += 1
        self.result.error_kinds[error[:160]] += 1
        if forget:  # the SMS did not complete the order: no callback to wait for
            self.sent_at.pop(target.order_id, None)

    async def probe(self, count: int, timeout: float, worker: subprocess.Popen[bytes]) -> None:
        """A few SMS one by one, each waited for at the receiver: the worker is up and the
        whole path works before the load starts."""
        async with self.session(1) as session:
            for _ in range(count):
                target = next(self.targets, None)
                if target is None:
                    raise RuntimeError("no pending inbound-SMS orders left to measure with")
                _, _, error = await self.sms(session, target)
                if error:
                    raise RuntimeError(f"the probe SMS failed: {error}")
                deadline = time.perf_counter() + timeout
                while self.receiver.arrived(target.order_id) is None:
                    if worker.poll() is not None:
                        raise RuntimeError(f"the job-queue worker exited ({worker.returncode})")
                    if time.perf_counter() > deadline:
                        raise RuntimeError(
                            f"no callback for the probe SMS within {timeout:g} s (the worker, "
                            "the receiver or CALLBACK_ALLOW_PRIVATE?)"
                        )
                    await asyncio.sleep(0.05)

    async def drive(self, connections: int, warmup: float, duration: float, every: int) -> None:
        result = self.result
        begin = time.perf_counter() + warmup
        end = begin + duration
        busy: list[tuple[int, int]] = []

        async def mark_busy() -> None:
            await asyncio.sleep(max(0.0, begin - time.perf_counter()))
            busy.append(_busy())
            await asyncio.sleep(max(0.0, end - time.perf_counter()))
            busy.append(_busy())

        async def connection(session: aiohttp.ClientSession, index: int) -> None:
            for i in itertools.count():
                if time.perf_counter() >= end:
                    return
                target = next(self.targets, None)
                if target is None:
                    result.exhausted = True
                    return
                try:
                    sent, otp, error = await self.sms(session, target)
                except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                    sent, otp, error = 0.0, None, f"{type(exc).__name__}: {exc}"
                if error or otp is None:
                    self._error(error or "no code", target, forget=True)
                    continue
                answered = time.perf_counter()
                measured = begin <= sent < end
                if begin <= answered < end:
                    result.answered += 1
                if measured:
                    self.in_window.append(target.order_id)
                if i % every:
                    continue
                try:
                    shown, error = await self.code_shown(session, target, otp)
                except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                    shown, error = None, f"{type(exc).__name__}: {exc}"
                if error or shown is None:
                    self._error(error or "no time", target, forget=False)
                elif measured:
                    result.code_shown_s.append(shown - sent)

        async with self.session(connections) as session:
            await asyncio.gather(mark_busy(), *(connection(session, c) for c in range(connections)))
        if len(busy) == 2:
            (b0, t0), (b1, t1) = busy
            result.machine_busy = (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0

    async def wait_for_stragglers(self, grace: float) -> None:
        deadline = time.perf_counter() + grace
        while time.perf_counter() < deadline:
            if all(self.receiver.arrived(order_id) is not None for order_id in self.sent_at):
                return
            await asyncio.sleep(0.05)


def _server_breakdown(
    conn: psycopg.Connection, load: Load, receiver: Receiver, result: TimeToOtp, offset: float
) -> None:
    """Split (b) by the server's timestamps: `offset` turns perf_counter into epoch
    seconds (one machine, one system clock)."""
    rows = conn.execute(
        "SELECT d.order_id, EXTRACT(EPOCH FROM d.created_at)::float8,"
        "       EXTRACT(EPOCH FROM MIN(a.at))::float8"
        " FROM orders_callbackdelivery d"
        " LEFT JOIN orders_callbackattempt a ON a.delivery_id = d.id"
        " WHERE d.order_id = ANY(%s) GROUP BY d.id",
        [load.in_window],
    ).fetchall()
    for order_id, created, claimed in rows:
        sent = load.sent_at.get(order_id)
        arrived = receiver.arrived(order_id)
        if sent is None or arrived is None or claimed is None:
            continue
        result.in_request_s.append(created - (sent + offset))
        result.queued_s.append(claimed - created)
        result.sending_s.append(arrived + offset - claimed)
    row = conn.execute("SELECT COUNT(*) FROM django_q_ormq").fetchone()
    result.queued_after = int(row[0]) if row else 0


def measure(
    base_url: str,
    fixture: Fixture,
    env: dict[str, str],
    workdir: Path,
    log: Log,
    *,
    connections: int = 16,
    warmup: float = 2.0,
    duration: float = 10.0,
    grace: float = 10.0,
    sample_every: int = 4,
) -> TimeToOtp:
    """Measure time to OTP against the site at `base_url` (gunicorn, already serving the
    seeded database `env["DATABASE_URL"]` with the environment `env`). Starts the
    job-queue worker with `env` plus CALLBACK_ALLOW_PRIVATE=true and stops it before
    returning, errors or not; restores the buyers' callback settings and keys."""
    worker_env = {**env, "CALLBACK_ALLOW_PRIVATE": "true"}
    settings = worker_settings(worker_env)
    result = TimeToOtp(connections, warmup, duration, grace, max(1, sample_every), settings)
    with psycopg.connect(env["DATABASE_URL"]) as conn, Receiver() as receiver:
        targets = pending_targets(conn, fixture)
        conn.commit()
        if len(targets) <= PROBES:
            raise RuntimeError(f"only {len(targets)} pending inbound-SMS orders left")
        receiver.expected = {t.order_id for t in targets}
        buyers = sorted({t.buyer_id for t in targets})
        keys, saved = prepare_buyers(conn, buyers, receiver.url)
        log(
            f"time to OTP: {len(targets):,} pending orders of {len(buyers):,} buyers, "
            f"callbacks to {receiver.url}; starting the job-queue worker ({settings})"
        )
        try:
            load = Load(base_url, fixture, targets, keys, receiver, result)
            worker_log = workdir / "jobqueue.log"
            with job_queue(worker_env, worker_log, log) as worker:
                try:
                    asyncio.run(load.probe(PROBES, READY_SECONDS, worker))
                except RuntimeError as exc:
                    tail = worker_log.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"{exc}; the worker's log ends:\n{tail}") from None
                log("time to OTP: the worker delivered the probes; measuring")
                offset = time.time() - time.perf_counter()
                sent_before = set(load.sent_at)
                asyncio.run(load.drive(connections, warmup, duration, result.sample_every))
                result.outstanding = sum(
                    receiver.arrived(i) is None for i in load.sent_at if i not in sent_before
                )
                asyncio.run(load.wait_for_stragglers(grace))
                _server_breakdown(conn, load, receiver, result, offset)
                conn.commit()
            for order_id in load.in_window:
                sent = load.sent_at.get(order_id)
                arrived = receiver.arrived(order_id)
                if sent is None:
                    continue
                if arrived is None:
                    result.window_missing += 1
                else:
                    result.callback_s.append(arrived - sent)
            measured_ids = [i for i in load.sent_at if i not in sent_before]
            result.sent_total = len(measured_ids)
            result.missing_total = sum(receiver.arrived(i) is None for i in measured_ids)
            result.repeats, result.unexpected = receiver.repeats, receiver.unexpected
            result.unreadable = receiver.bad
        finally:
            conn.rollback()
            restore_buyers(conn, saved)
    log(result.summary())
    return result


# --- standalone ------------------------------------------------------------------------------
STARTED = time.monotonic()


def _log(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f}s] {message}", flush=True)


def small_sizes(connections: int, sms_orders: int) -> Sizes:
    """The suite's small database for this many connections: no history."""
    bench_buyers = max(64, 4 * connections)
    bench_resellers = max(32, connections)
    return Sizes(
        buyers=bench_buyers + -(-sms_orders // PENDING_PER_BUYER),
        resellers=bench_resellers,
        modems=bench_resellers * BATCH,
        apps=50,
        orders=0,
        bench_buyers=bench_buyers,
        bench_resellers=bench_resellers,
        sms_orders=sms_orders,
        status_orders=1000,
    )


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks: worker, server, db


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.time_to_otp",
        description="Seed a small database, serve it, and measure time to OTP.",
    )
    parser.add_argument("--db-name", default="zerotp_tto", help="dropped and created")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured")
    parser.add_argument("--grace", type=float, default=10.0, help="seconds to wait after")
    parser.add_argument(
        "--sample-every", type=int, default=4, help="(a) after one SMS in N per connection"
    )
    parser.add_argument("--sms-orders", type=int, default=20_000)
    parser.add_argument(
        "--logs", type=Path, help="keep gunicorn's and the worker's logs in this folder"
    )
    args = parser.parse_args(argv)
    if Path(sys.prefix).resolve() != (ROOT / ".venv").resolve():
        print("Run it with the project's venv: .venv/bin/python -m bench.time_to_otp")
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    db = Database(args.db_name)
    sizes = small_sizes(args.connections, args.sms_orders)
    problems = sizes.problems()
    if problems:
        _log("; ".join(problems))
        return 2
    try:
        db.create()
        env = {**production_env(db.url), "CALLBACK_ALLOW_PRIVATE": "true"}
        manage("migrate", "--noinput", "-v0", env=env)
        manage("seed_demo", env=env)
        seeded = seed(db, sizes, _log)
        _log(f"seeded: {describe(seeded.rows)}")
        db.settle()
        with tempfile.TemporaryDirectory(prefix="zerotp-tto-") as tmp:
            workdir = args.logs or Path(tmp)
            workdir.mkdir(parents=True, exist_ok=True)
            with gunicorn(env, workdir / "gunicorn.log") as server:
                _log(f"gunicorn answers on {server.url}")
                result = measure(
                    server.url,
                    seeded.fixture,
                    env,
                    workdir,
                    _log,
                    connections=args.connections,
                    warmup=args.warmup,
                    duration=args.duration,
                    grace=args.grace,
                    sample_every=args.sample_every,
                )
        print("\n" + "\n".join(result.markdown()), flush=True)
        return 0 if result.passed else 1
    finally:
        if args.keep:
            _log(f"kept the database: DATABASE_URL={db.url}")
        else:
            db.drop()
            _log(f"dropped {db.name}")


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
