"""Fixtures of the agent's end-to-end tests: the real agent as a process of its own, virtual
modems on pseudo-terminals, and the live server behind a gate that can be shut ("the
server is down": connections refused) and opened again on the same port."""

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings
from django.db import OperationalError

from agent.outbox import Outbox
from agent.virtual_modem import VirtualModem
from orders.models import Application
from tests.factories import ApplicationFactory


def read(query: Callable[[], Any]) -> Any:
    """One ORM read while the agent talks to the live server (see `eventually`)."""
    return eventually(lambda: (query(),))[0]


def eventually(check: Callable[[], Any], *, timeout: float = 15.0, what: str = "") -> Any:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except (OperationalError, Unavailable):
            value = None  # SQLite busy past its timeout under the agent's writes: ask again
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout:.0f} s: {what or check}")
        time.sleep(0.2)


class Unavailable(Exception):
    """503: the test server's database was busy (SQLite, one writer at a time); try again."""


def _json(response: requests.Response) -> Any:
    if response.status_code == 503:
        raise Unavailable(response.text)
    return response.json()


class Gate:
    """A TCP forwarder to the live server on a fixed port of its own."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        """Refuse new connections and cut the open ones."""
        listener, self._listener = self._listener, None
        if listener is not None:
            # shutdown wakes the thread blocked in accept(); close alone would leave the
            # socket listening until that accept returned.
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        with self._lock:
            for sock in self._open:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.fixture
def gate(live_server: Any) -> Iterator[Gate]:
    host, port = live_server.url.removeprefix("http://").split(":")
    gate = Gate((host, int(port)))
    gate.up()
    yield gate
    gate.down()


@pytest.fixture
def modems() -> Iterator[Callable[..., VirtualModem]]:
    """Start virtual modems: modems(phone="628...", iccid="8962...")."""
    started: list[VirtualModem] = []
    counter = iter(range(1, 1000))

    def start(**options: Any) -> VirtualModem:
        n = next(counter)
        options.setdefault("iccid", f"89621{os.getpid() % 10000:04d}{n:010d}")
        options.setdefault("imsi", f"51010{n:010d}")
        options.setdefault("phone", f"6289912{n:05d}")
        modem = VirtualModem(**options).start()
        started.append(modem)
        return modem

    yield start
    for modem in started:
        modem.close()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """Where an outbox is kept."""
    return tmp_path / "outbox.sqlite3"


@pytest.fixture
def outbox(path: Path) -> Iterator[Outbox]:
    box = Outbox(path)
    yield box
    box.close()


# WhatsApp's price in these tests; the reseller earns 70% of it.
PRICE = 5000


@pytest.fixture
def whatsapp(db: None) -> Application:
    return ApplicationFactory(
        name="WhatsApp",
        code="whatsapp",
        sender_patterns=r"\bwhats\s?app\b",
        prices={"normal": PRICE},
    )


class AgentProcess:
    """`python -m agent run` in a process of its own, as a reseller runs it."""

    def __init__(self, args: list[str], state: Path) -> None:
        self.args = args
        self.state = state
        self.log = state / "stderr.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> "AgentProcess":
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "ZEROTP"))}
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "agent", "run", *self.args, "--state", str(self.state)],
                cwd=settings.BASE_DIR,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> int:
        """SIGTERM, as a service manager stops it; the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(20)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def outbox(self) -> dict[str, int]:
        """Messages in the agent's outbox by state, read as `status` would."""
        path = self.state / "outbox.sqlite3"
        if not path.exists():
            return {}
        db = sqlite3.connect(path, timeout=10)
        try:
            return dict(db.execute("SELECT state, count(*) FROM messages GROUP BY state"))
        except sqlite3.OperationalError:
            return {}
        finally:
            db.close()


@pytest.fixture
def run_agent(tmp_path: Path) -> Iterator[Callable[..., AgentProcess]]:
    running: list[AgentProcess] = []

    def start(
        server: str,
        key: str,
        *ports: VirtualModem,
        state: Path | None = None,
        extra: tuple[str, ...] = (),
    ) -> AgentProcess:
        args = [
            "--server",
            server,
            "--agent-key",
            key,
            "--heartbeat-seconds",
            "1",
            "--scan-seconds",
            "1",
            *extra,
        ]
        for modem in ports:
            args += ["--port", modem.path]
        agent = AgentProcess(args, state or tmp_path / "agent-state")
        agent.state.mkdir(exist_ok=True)
        running.append(agent.start())
        return agent

    yield start
    for agent in running:
        if agent.process and agent.process.poll() is None:
            agent.process.kill()
            agent.process.wait(10)


class Site:
    """The buyer's side of the live server, over real HTTP."""

    def __init__(self, base: str) -> None:
        self.base = base

    def stock(self, application_id: int, operator: str = "normal") -> int:
        services = _json(requests.get(f"{self.base}/api/v1/services", timeout=10))
        entry = next(item for item in services if item["id"] == application_id)
        return entry["operators"][operator]["stock"]

    def order(self, key: str, application_id: int) -> dict[str, Any]:
        # An Idempotency-Key makes the retry after a 503 safe.
        headers = {"X-API-KEY": key, "Idempotency-Key": uuid.uuid4().hex}

        def place() -> Any:
            return _json(
                requests.post(
                    f"{self.base}/api/v1/orders",
                    json={"application_id": application_id, "operator": "normal"},
                    headers=headers,
                    timeout=10,
                )
            )

        body = eventually(place, what="the order placed")
        assert "order_id" in body, body
        return body

    def order_status(self, key: str, order_id: int) -> dict[str, Any]:
        response = requests.get(
            f"{self.base}/api/v1/orders/{order_id}", headers={"X-API-KEY": key}, timeout=10
        )
        body = _json(response)
        assert response.status_code == 200, response.text
        return body


@pytest.fixture
def site(live_server: Any) -> Site:
    return Site(live_server.url)
