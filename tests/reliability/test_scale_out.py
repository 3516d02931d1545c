"""Scale-out (opt-in: ZEROTP_SCALE_OUT_TESTS=1): two web nodes and two job-queue workers
on one PostgreSQL database and one Redis do every job once, and losing a web node and a
worker halfway, both with SIGKILL, loses nothing.

Everything runs as it would in production, as separate processes started from the
Procfile's lines (`make serve`): two web nodes (gunicorn with zerotp/gunicorn.conf.py) on
two ports and two job-queue workers (`manage.py jobqueue`, django-q2's qcluster; REDIS_URL
set: Redis is the broker and the cache), a callback receiver on 127.0.0.1 that takes
0.2 s to answer, buyers with callback URLs set through the API, and an agent that syncs
its modems and sends heartbeats through the API. Buyers place orders on both nodes,
switching to the other node when one stops answering (what a load balancer does; a create
is retried with its `Idempotency-Key`, an SMS with its `message_id`). Most orders get an
SMS, so a callback fires; some are cancelled; the rest are left to expire
(ORDER_TTL_SECONDS is short for the run) and are refunded by the every-minute schedule.
Halfway through the orders, one web node and one worker are killed with SIGKILL. Then the
test polls the database until the survivors have finished the work.

Callbacks are delivered at least once by design: a worker killed after the receiver
answered 2xx but before it recorded the attempt leaves the delivery to be sent again, with
the same `webhook-id`, when its 60 s lease ends (docs/RELIABILITY.md, "Faults"). Such a
repeat is the only duplicate allowed, and the test proves each one is exactly that.

The database is created for the run and dropped after it, on the server of
ZEROTP_SCALE_OUT_PG (default postgres://postgres@127.0.0.1:5432); Redis is an empty
numbered database of ZEROTP_SCALE_OUT_REDIS (default redis://127.0.0.1:6379), flushed
after the run. ZEROTP_SCALE_OUT_ORDERS sizes the run (default 1000);
ZEROTP_SCALE_OUT_KEEP_DB=1 keeps the database (docs/DEPLOY.md's restore drill used it)."""

import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
import requests
from standardwebhooks import Webhook

from tests.processes import descendants, kill_tree
from tests.receiver import Receiver, running_receiver

pytestmark = [
    pytest.mark.scale_out,
    pytest.mark.skipif(
        os.environ.get("ZEROTP_SCALE_OUT_TESTS") != "1",
        reason="starts 2 web nodes and 2 job-queue workers (the Procfile's processes) on a "
        "fresh PostgreSQL database and Redis (about 2-3 min); run with ZEROTP_SCALE_OUT_TESTS=1",
    ),
]

ROOT = Path(__file__).resolve().parents[2]
PG_SERVER = os.environ.get("ZEROTP_SCALE_OUT_PG", "postgres://postgres@127.0.0.1:5432")
REDIS_SERVER = os.environ.get("ZEROTP_SCALE_OUT_REDIS", "redis://127.0.0.1:6379")
ORDERS = int(os.environ.get("ZEROTP_SCALE_OUT_ORDERS", "1000"))
BUYERS = 8  # one client thread each
TTL_SECONDS = 20
Q_WORKERS = 2  # worker processes per qcluster
HEARTBEAT_EVERY = 20.0
# How long the buyers' receiver takes to answer, as a real one does: the workers spend most
# of their time inside a send, so the one killed is caught in the middle of some.
RECEIVER_SECONDS = 0.2
# After the last order: expiry is at most TTL + a minute of schedule + 30 s of the
# scheduler's own cycle away; a callback held by the killed worker waits out its 60 s
# lease and then the every-minute sweep.
DRAIN_DEADLINE = 210.0


def fate(index: int) -> str:
    """What happens to a buyer's index-th order: 10% expire, 10% are cancelled, 80% get
    an SMS (and so a callback)."""
    return {0: "expire", 5: "cancel"}.get(index % 10, "sms")


def otp_for(order_id: int) -> str:
    return str(100000 + order_id * 7919 % 900000)


# --- a fresh database, a private Redis database, processes ----------------------------------


def connect(url: str) -> psycopg.Connection:
    # Nothing prepared: the server may be PgBouncer in transaction mode (docs/DEPLOY.md).
    return psycopg.connect(url, autocommit=True, prepare_threshold=None)


@pytest.fixture
def database() -> Iterator[str]:
    name = f"zerotp_scale_out_{os.getpid()}_{secrets.token_hex(3)}"
    with connect(f"{PG_SERVER}/postgres") as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        if os.environ.get("ZEROTP_SCALE_OUT_KEEP_DB") == "1":
            print(f"\nkept the database: {PG_SERVER}/{name}")
        else:
            with connect(f"{PG_SERVER}/postgres") as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_url() -> Iterator[str]:
    """An empty numbered database of the machine's Redis, claimed with a marker key, so
    that no other process's job queue (same cluster name) takes this run's tasks."""
    token = secrets.token_hex(8)
    for number in range(15, 0, -1):
        url = f"{REDIS_SERVER}/{number}"
        client = redis.Redis.from_url(url)
        if client.dbsize() == 0 and client.set("zerotp:scale-out:claim", token, nx=True):
            break
        client.close()
    else:
        pytest.fail(f"no empty numbered database on {REDIS_SERVER} for the run")
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


@dataclass
class Node:
    name: str
    popen: subprocess.Popen
    log: Path

    def kill(self) -> None:
        """Every process of the node gone at once, as when its machine dies."""
        kill_tree(self.popen)

    def stop(self) -> None:
        """SIGTERM to the main process, as systemd's KillMode=mixed sends it (gunicorn's
        arbiter and `jobqueue` stop their own children); SIGKILL if it is still there."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace").splitlines()
        return f"--- {self.name} ({self.log}) ---\n" + "\n".join(text[-lines:])


def procfile() -> dict[str, str]:
    """The production processes (`make serve`'s Procfile): name -> command."""
    lines = (ROOT / "Procfile").read_text().splitlines()
    entries = (line.split(":", 1) for line in lines if line.strip() and line[0] != "#")
    return {name.strip(): command.strip() for name, command in entries}


def start(name: str, command: str, env: dict[str, str], logs: Path) -> Node:
    """A Procfile line as a node: `sh -c 'exec <command>'`, as scripts/supervise.py runs it."""
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            ["/bin/sh", "-c", f"exec {command}"], cwd=ROOT, env=env, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    return Node(name, popen, log)


def manage(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if done.returncode:
        raise AssertionError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class CpuSampler:
    """CPU seconds of each node's processes and of the database's backends (when PostgreSQL
    runs on this machine), sampled twice a second; a process that dies keeps its last
    sample. For the capacity figures in docs/DEPLOY.md."""

    def __init__(self, nodes: list["Node"], database: str) -> None:
        self.mains = {node.popen.pid: node.name for node in nodes}
        self.database = database
        self.seen: dict[int, tuple[str, float]] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.tick = os.sysconf("SC_CLK_TCK")

    def run(self) -> None:
        with connect(self.database) as connection:
            while True:
                self.sample(connection)
                if self.stop.wait(0.5):
                    break

    def sample(self, connection: psycopg.Connection) -> None:
        roles = {
            pid: "db"
            for (pid,) in connection.execute(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        }
        for main, name in self.mains.items():
            roles |= {pid: name for pid in [main, *descendants(main)]}
        for pid, role in roles.items():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            self.seen[pid] = (role, (int(fields[11]) + int(fields[12])) / self.tick)

    def snapshot(self) -> dict[int, tuple[str, float]]:
        return dict(self.seen)

    def used(self, since: dict[int, tuple[str, float]]) -> dict[str, float]:
        """CPU seconds per role since the snapshot."""
        used: dict[str, float] = {}
        for pid, (role, cpu) in list(self.seen.items()):
            used[role] = used.get(role, 0.0) + cpu - since.get(pid, (role, 0.0))[1]
        return used

    def __enter__(self) -> "CpuSampler":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


# --- the clients: a load balancer's view of the two nodes ----------------------------------


class NoNodeAnswered(Exception):
    pass


@dataclass
class Balancer:
    """Sends each request to the node it is given and, when that node does not answer
    (refused, reset, timed out), to the next one, marking the silent node down."""

    bases: list[str]
    down: set[str] = field(default_factory=set)
    failovers: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def request(
        self, sessions: dict[str, requests.Session], first: int, method: str, path: str, **kw: Any
    ) -> tuple[requests.Response, str]:
        order = self.bases[first % len(self.bases) :] + self.bases[: first % len(self.bases)]
        for base in order:
            if base in self.down and base != order[-1]:
                continue
            try:
                return sessions[base].request(method, base + path, timeout=15, **kw), base
            except requests.RequestException:
                with self.lock:
                    self.down.add(base)
                    self.failovers += 1
        raise NoNodeAnswered(f"{method} {path}")


@dataclass
class Placed:
    index: int
    order_id: int
    fate: str
    node: str
    phone_number: str


@dataclass
class Load:
    balancer: Balancer
    application_id: int
    buyers: list[dict[str, Any]]
    agent_key: str
    uid_of: dict[str, str]
    per_buyer: int
    halfway: threading.Event = field(default_factory=threading.Event)
    placed: list[Placed] = field(default_factory=list)
    sms_posted: int = 0
    cancelled: int = 0
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def buyer_loop(self, number: int) -> None:
        buyer = self.buyers[number]
        sessions = {base: requests.Session() for base in self.balancer.bases}
        keyed = {"X-API-KEY": buyer["api_key"]}
        agent = {"X-AGENT-KEY": self.agent_key}
        try:
            for index in range(self.per_buyer):
                node = number + index  # alternate the nodes, buyer by buyer
                answer, base = self.balancer.request(
                    sessions, node, "POST", "/api/v1/orders",
                    json={"application_id": self.application_id, "operator": "normal"},
                    headers={**keyed, "Idempotency-Key": f"scale-out-{number}-{index}"},
                )  # fmt: skip
                if answer.status_code != 201:
                    self.note(f"buyer {number} order {index}: {answer.status_code} {answer.text}")
                    continue
                order = answer.json()
                placed = Placed(index, order["order_id"], fate(index), base, order["phone_number"])
                with self.lock:
                    self.placed.append(placed)
                    if len(self.placed) == len(self.buyers) * self.per_buyer // 2:
                        self.halfway.set()
                if placed.fate == "sms":
                    self.send_sms(sessions, node, agent, placed)
                elif placed.fate == "cancel":
                    self.cancel(sessions, node, keyed, placed)
        except Exception as exc:  # reported by the test, not lost in a thread
            self.note(f"buyer {number} stopped: {exc!r}")
            self.halfway.set()  # never leave the killer waiting

    def send_sms(
        self, sessions: dict[str, requests.Session], node: int, agent: dict[str, str], p: Placed
    ) -> None:
        code = otp_for(p.order_id)
        sms = {
            "uid": self.uid_of[p.phone_number],
            "phone_number": p.phone_number,
            "from": "WhatsApp",
            "text": f"Kode WhatsApp Anda: {code[:3]}-{code[3:]}. Jangan bagikan kode ini.",
            "message_id": f"scale-out-{p.order_id}",
        }
        answer, _ = self.balancer.request(
            sessions, node + 1, "POST", "/api/modem/inbound-sms", json=sms, headers=agent
        )
        expected = {"matched": True, "order_id": p.order_id, "otp": code}
        if answer.status_code != 200 or answer.json() != expected:
            self.note(f"SMS for order {p.order_id}: {answer.status_code} {answer.text}")
        with self.lock:
            self.sms_posted += 1

    def cancel(
        self, sessions: dict[str, requests.Session], node: int, keyed: dict[str, str], p: Placed
    ) -> None:
        path = f"/api/v1/orders/{p.order_id}/cancel"
        answer, _ = self.balancer.request(sessions, node, "POST", path, headers=keyed)
        # 409: an earlier try reached a node that died before it answered, and cancelled.
        if answer.status_code not in (200, 409):
            self.note(f"cancel of order {p.order_id}: {answer.status_code} {answer.text}")
        with self.lock:
            self.cancelled += 1

    def heartbeats(self, stop: threading.Event) -> None:
        sessions = {base: requests.Session() for base in self.balancer.bases}
        beats = [{"uid": uid, "signal": 80, "can_order": True} for uid in self.uid_of.values()]
        turn = 0
        while not stop.wait(HEARTBEAT_EVERY):
            turn += 1
            for start in range(0, len(beats), 1000):
                try:
                    answer, _ = self.balancer.request(
                        sessions, turn, "POST", "/api/modem/heartbeat",
                        json={"modems": beats[start : start + 1000]},
                        headers={"X-AGENT-KEY": self.agent_key},
                    )  # fmt: skip
                except NoNodeAnswered as exc:
                    self.note(f"heartbeat: {exc!r}")
                    return
                if answer.status_code != 200:
                    self.note(f"heartbeat: {answer.status_code} {answer.text}")

    def note(self, problem: str) -> None:
        with self.lock:
            self.problems.append(problem)


# --- reading the outcome -----------------------------------------------------------------------

PROGRESS = """
SELECT
  (SELECT count(*) FROM orders_order WHERE status = 'pending'),
  (SELECT count(*) FROM orders_callbackdelivery
    WHERE event = 'otp.received' AND status <> 'delivered'),
  (SELECT count(*) FROM orders_callbackdelivery WHERE event = 'otp.received')
"""


def progress(url: str) -> tuple[int, int, int]:
    with connect(url) as connection:
        return connection.execute(PROGRESS).fetchone()


def outcome(url: str) -> dict[str, Any]:
    with connect(url) as connection:
        orders = dict(connection.execute("SELECT id, status FROM orders_order").fetchall())
        references: dict[int, list[str]] = {}
        rows = connection.execute(
            "SELECT reference FROM billing_ledgertransaction WHERE reference LIKE 'order:%'"
        )
        for (reference,) in rows:
            _, order_id, kind = reference.split(":")
            references.setdefault(int(order_id), []).append(kind)
        deliveries = {
            webhook_id: {"order_id": order_id, "status": status, "attempts": attempts,
                         "logged": logged, "logged_2xx": logged_2xx, "after": after}
            for webhook_id, order_id, status, attempts, logged, logged_2xx, after
            in connection.execute(
                """
                SELECT d.webhook_id, d.order_id, d.status, d.attempts, count(a.id),
                       count(a.id) FILTER (WHERE a.status_code BETWEEN 200 AND 299),
                       extract(epoch FROM d.delivered_at - d.created_at)::float
                FROM orders_callbackdelivery d
                LEFT JOIN orders_callbackattempt a ON a.delivery_id = d.id
                WHERE d.event = 'otp.received'
                GROUP BY d.id
                """
            )
        }  # fmt: skip
        refunded_at = {
            int(reference.split(":")[1]): moment
            for reference, moment in connection.execute(
                "SELECT reference, created_at FROM billing_ledgertransaction "
                "WHERE reference LIKE 'order:%:release'"
            )
        }
        sms = connection.execute("SELECT count(*) FROM modems_inboundsms").fetchone()[0]
        keys = connection.execute("SELECT count(*) FROM orders_idempotencykey").fetchone()[0]
    return {"orders": orders, "references": references, "deliveries": deliveries,
            "sms": sms, "keys": keys, "refunded_at": refunded_at}  # fmt: skip


def expiry_runs(moments: list[Any]) -> list[tuple[int, float]]:
    """Refund times cut into the expiry schedule's runs (a gap of 5 s or more between
    two refunds starts a new one): (refunds, seconds) per run."""
    runs: list[list[Any]] = []
    for moment in sorted(moments):
        if runs and (moment - runs[-1][-1]).total_seconds() < 5:
            runs[-1].append(moment)
        else:
            runs.append([moment])
    return [(len(run), (run[-1] - run[0]).total_seconds()) for run in runs]


SETUP = """
import io, json
from django.core.management import call_command
call_command("seed_demo", stdout=io.StringIO())
accounts = []
for email, extra in {accounts}:
    out = io.StringIO()
    call_command("create_account", email, "--json", *extra, stdout=out)
    accounts.append(json.loads(out.getvalue()))
print(json.dumps(accounts))
"""


def test_two_web_nodes_and_two_workers_do_every_job_once_and_survive_losing_one_of_each(
    database: str, redis_url: str, tmp_path: Path
) -> None:
    began = time.monotonic()
    per_buyer = ORDERS // BUYERS
    total = per_buyer * BUYERS
    env = {
        **os.environ,
        "DATABASE_URL": database,
        "REDIS_URL": redis_url,
        "SECRET_KEY": f"scale-out-{secrets.token_hex(32)}",  # one key for every node
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "ORDER_TTL_SECONDS": str(TTL_SECONDS),
        "CALLBACK_ALLOW_PRIVATE": "true",  # the receiver is on 127.0.0.1
        "Q_WORKERS": str(Q_WORKERS),
        "API_RATE_LIMIT": "0",  # eight clients on one machine, faster than any would be
        "SCAN_GUARD": "false",  # orders left to expire on purpose are not number scanning
        "MAX_ACTIVE_ORDERS": "100000",
        "WEB_CONCURRENCY": "2",  # gunicorn processes per web node: two nodes on two cores
    }
    manage("migrate", "--noinput", "-v", "0", env=env)
    emails = [(f"buyer{n}@scale-out.example", ["--balance", str(10**9)]) for n in range(BUYERS)]
    emails.append(("pool@scale-out.example", ["--reseller"]))
    printed = manage("shell", "-c", SETUP.format(accounts=emails), env=env)
    accounts = json.loads(printed.strip().splitlines()[-1])
    buyers, pool = accounts[:-1], accounts[-1]

    ports = [free_port(), free_port()]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    processes = procfile()
    nodes = [
        start(f"web{n + 1}", processes["web"], env | {"HOST": "127.0.0.1", "PORT": str(port)},
              tmp_path)
        for n, port in enumerate(ports)
    ]  # fmt: skip
    nodes += [start(f"worker{n + 1}", processes["worker"], env, tmp_path) for n in range(2)]
    web1, worker1 = nodes[0], nodes[2]
    try:
        with running_receiver() as receiver, CpuSampler(nodes, database) as cpu:
            receiver.delay = RECEIVER_SECONDS
            ignore_dead_senders(receiver)
            figures = run_and_check(
                env, database, receiver, bases, buyers, pool, per_buyer, total,
                web1, worker1, cpu, began,
            )  # fmt: skip
    except BaseException:
        for node in nodes:
            print(node.tail(), file=sys.stderr)
        raise
    finally:
        for node in nodes:
            node.stop()
    ledger = subprocess.run(
        [sys.executable, "manage.py", "ledger_check"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    figures["ledger_check"] = f"exit {ledger.returncode}: {(ledger.stdout + ledger.stderr).strip()}"
    figures["wall time"] = f"{time.monotonic() - began:.1f} s"
    print("\nscale-out figures:\n" + "\n".join(f"  {k}: {v}" for k, v in figures.items()))
    assert ledger.returncode == 0, figures["ledger_check"]


def run_and_check(
    env: dict[str, str],
    database: str,
    receiver: Receiver,
    bases: list[str],
    buyers: list[dict[str, Any]],
    pool: dict[str, Any],
    per_buyer: int,
    total: int,
    web1: Node,
    worker1: Node,
    cpu: CpuSampler,
    began: float,
) -> dict[str, Any]:
    session = requests.Session()
    for base in bases:
        for _ in range(150):
            try:
                if session.get(f"{base}/api/v1/services", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.1)
        else:
            raise AssertionError(f"{base} did not start")

    # Buyers set their callback URL through the API, on either node.
    for n, buyer in enumerate(buyers):
        answer = session.patch(
            f"{bases[n % 2]}/api/v1/account", json={"callback_url": receiver.url},
            headers={"X-API-KEY": buyer["api_key"]}, timeout=10,
        )  # fmt: skip
        assert answer.status_code == 200, answer.text
    services = session.get(f"{bases[0]}/api/v1/services", timeout=10).json()
    application_id = next(s["id"] for s in services if s["code"] == "whatsapp")

    # The agent registers its modems and says they are online (batches of 1,000).
    modems = [
        {"uid": f"PORT{i}", "phone_number": f"62813{i:07d}", "provider": "Telkomsel",
         "signal": 80, "mapping": "normal"}
        for i in range(total + total // 20)
    ]  # fmt: skip
    agent = {"X-AGENT-KEY": pool["agent_key"]}
    for path, items in (
        ("sync", modems),
        ("heartbeat", [{"uid": m["uid"], "signal": 80, "can_order": True} for m in modems]),
    ):
        for start_at in range(0, len(items), 1000):
            answer = session.post(
                f"{bases[1]}/api/modem/{path}", json={"modems": items[start_at : start_at + 1000]},
                headers=agent, timeout=30,
            )  # fmt: skip
            assert answer.status_code == 200, answer.text

    load = Load(
        balancer=Balancer(list(bases)),
        application_id=application_id,
        buyers=buyers,
        agent_key=pool["agent_key"],
        uid_of={m["phone_number"]: m["uid"] for m in modems},
        per_buyer=per_buyer,
    )
    stop_beats = threading.Event()
    threads = [threading.Thread(target=load.buyer_loop, args=(n,)) for n in range(len(buyers))]
    threads.append(threading.Thread(target=load.heartbeats, args=(stop_beats,)))
    time.sleep(1.0)  # a sample of every process as it was before the load
    cpu_before = cpu.snapshot()
    load_began = time.monotonic()
    for thread in threads:
        thread.start()

    # Halfway through the orders, one web node and one worker die at once.
    load.halfway.wait(timeout=180)
    killed_at = time.monotonic()
    worker1.kill()
    received_before_kill = len(receiver.requests)  # nothing worker1 sends comes after this
    web1.kill()
    placed_at_kill = len(load.placed)
    _, undelivered_at_kill, _ = progress(database)

    for thread in threads[:-1]:
        thread.join(timeout=300)
    load_ended = time.monotonic()
    stop_beats.set()
    threads[-1].join(timeout=60)
    assert load.problems == [], load.problems[:10]
    assert len(load.placed) == total

    # The survivors finish: poll the database until nothing is pending and every callback
    # is delivered (or the deadline says something was lost).
    deadline = load_ended + DRAIN_DEADLINE
    last_report = 0.0
    while True:
        pending, undelivered, deliveries = progress(database)
        if pending == 0 and undelivered == 0:
            break
        now = time.monotonic()
        if now > deadline:
            raise AssertionError(
                f"after {DRAIN_DEADLINE:.0f} s: {pending} orders still pending, "
                f"{undelivered} of {deliveries} callbacks undelivered"
            )
        if now - last_report >= 15:
            last_report = now
            print(
                f"  [{now - began:5.0f} s] waiting: {pending} orders pending, "
                f"{undelivered}/{deliveries} callbacks undelivered, "
                f"{len(receiver.requests)} received"
            )
        time.sleep(1)
    drained = time.monotonic()
    time.sleep(1.0)  # a repeat still on the wire would show now
    used = cpu.used(cpu_before)

    books = outcome(database)
    by_fate = {p.order_id: p.fate for p in load.placed}
    received = list(receiver.requests)
    counts = Counter(r.headers["webhook-id"] for r in received)
    deliveries = books["deliveries"]

    expired = [i for i, f in by_fate.items() if f == "expire"]

    # Orders: each one once, in the state its fate gives, with its money moved once.
    assert len(by_fate) == total, "an order id was answered twice"
    assert set(books["orders"]) == set(by_fate), "orders the clients never saw, or lost"
    assert books["keys"] == total  # one order per Idempotency-Key, never two
    want = {"sms": {"completed", "finished"}, "cancel": {"cancelled"}, "expire": {"expired"}}
    wrong = {i: (f, books["orders"][i]) for i, f in by_fate.items()
             if books["orders"][i] not in want[f]}  # fmt: skip
    assert wrong == {}, list(wrong.items())[:10]
    money = {"sms": ["capture", "hold"], "cancel": ["hold", "release"],
             "expire": ["hold", "release"]}  # fmt: skip
    moved = {i: sorted(books["references"].get(i, [])) for i in by_fate}
    wrong_money = {i: moved[i] for i, f in by_fate.items() if moved[i] != money[f]}
    assert wrong_money == {}, list(wrong_money.items())[:10]

    # SMS: each stored once, however many times it was posted.
    sms_orders = [i for i, f in by_fate.items() if f == "sms"]
    assert books["sms"] == len(sms_orders)

    # Callbacks: one per SMS, every one received with the signature of its buyer.
    assert sorted(d["order_id"] for d in deliveries.values()) == sorted(sms_orders)
    assert {d["status"] for d in deliveries.values()} == {"delivered"}
    assert set(counts) == set(deliveries), "a callback never reached the receiver"
    secret_of = {b["email"]: b["callback_secret"] for b in buyers}
    for request in received:
        payload = json.loads(request.body)
        assert deliveries[request.headers["webhook-id"]]["order_id"] == payload["order_id"]
        assert payload["otp_code"] == otp_for(payload["order_id"])
        verified = [s for s in secret_of.values() if _verifies(s, request.body, request.headers)]
        assert len(verified) == 1, f"bad signature on {request.headers['webhook-id']}"

    # None twice, except a send the killed worker made and never got to record: received
    # before the kill, its claim counted but no attempt logged, sent again after its lease.
    duplicates = {w: n for w, n in counts.items() if n > 1}
    first_seen = {}
    for position, request in enumerate(received):
        first_seen.setdefault(request.headers["webhook-id"], position)
    for webhook_id, times in duplicates.items():
        delivery = deliveries[webhook_id]
        assert times == 2, (webhook_id, times)
        assert first_seen[webhook_id] < received_before_kill, webhook_id
        assert delivery["attempts"] == delivery["logged"] + 1, (webhook_id, delivery)
        assert delivery["logged_2xx"] == 1, (webhook_id, delivery)
    assert len(duplicates) <= Q_WORKERS

    runs = expiry_runs([books["refunded_at"][i] for i in expired])
    biggest = max(runs)
    web = used.get("web1", 0.0) + used.get("web2", 0.0)
    workers = used.get("worker1", 0.0) + used.get("worker2", 0.0)
    nodes = Counter(p.node for p in load.placed)
    waits = sorted(d["after"] for d in deliveries.values())
    interrupted = sum(d["attempts"] == d["logged"] + 1 for d in deliveries.values())
    return {
        "orders": f"{total} placed ({nodes[bases[0]]} answered by web1, "
        f"{nodes[bases[1]]} by web2); {placed_at_kill} placed when web1 and worker1 "
        "were killed",
        "failovers": f"{load.balancer.failovers} requests retried on the other node",
        "SMS": f"{load.sms_posted} posted, {books['sms']} stored, "
        f"{len(sms_orders)} orders completed and paid once",
        "callbacks": f"{len(deliveries)} deliveries, all delivered; {len(received)} requests "
        f"received for {len(counts)} webhook-ids, every signature valid; "
        f"{undelivered_at_kill} undelivered when worker1 was killed, {interrupted} of them "
        "in the middle of a send (claimed, never recorded: sent again after the 60 s lease); "
        f"match to delivery p50 {waits[len(waits) // 2]:.1f} s, max {waits[-1]:.1f} s",
        "duplicates": (
            f"{len(duplicates)} webhook-ids received twice with a 2xx"
            + (
                " (each was being sent by the killed worker: the receiver had it, the "
                "worker died before recording it; sent again after its 60 s lease with the "
                "same webhook-id)"
                if duplicates
                else ""
            )
        ),
        "refunds": f"{len(expired)} expired orders refunded once each, "
        f"{load.cancelled} cancelled orders refunded once each",
        "expiry": f"{len(runs)} run(s) of the schedule refunded the expired orders; the "
        f"largest refunded {biggest[0]} in {biggest[1]:.2f} s "
        f"({1000 * biggest[1] / max(1, biggest[0] - 1):.1f} ms each, a transaction per order)",
        "CPU": f"web nodes {web:.1f} s ({1000 * web / total:.1f} ms per order with its SMS, "
        f"cancel and heartbeat share), workers {workers:.1f} s "
        f"({1000 * workers / len(deliveries):.1f} ms per callback with the expiry and sweeps), "
        + (
            f"PostgreSQL backends {used['db']:.1f} s ({1000 * used['db'] / total:.1f} ms per order)"
            if used.get("db")
            else "PostgreSQL backends not measured (not on this machine)"
        ),
        "phases": f"setup {load_began - began:.1f} s, orders and SMS {load_ended - load_began:.1f}"
        f" s (kill at {killed_at - load_began:.1f} s), survivors finished "
        f"{drained - load_ended:.1f} s after the last order",
    }


def ignore_dead_senders(receiver: Receiver) -> None:
    """The answer to a worker killed mid-send meets a closed socket: expected here, so not
    printed as a traceback; any other error still is."""
    default = receiver.server.handle_error

    def handle_error(request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            default(request, client_address)

    receiver.server.handle_error = handle_error  # type: ignore[method-assign]


def _verifies(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    try:
        Webhook(secret).verify(body, headers)
    except Exception:  # any failure means "not this secret"
        return False
    return True
