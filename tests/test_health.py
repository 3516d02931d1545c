"""/healthz answers while the process lives; /readyz answers 503, naming the check, when
the database, the cache or the job queue cannot be reached, when a job has waited too
long, or when the expiry sweep is late. Outages are real: a server on a closed port."""

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from django.test import Client
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.signing import SignedPackage
from django_q.tasks import async_task

from orders.models import JobRun
from orders.tasks import expire_orders

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("ZEROTP_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def closed_port() -> int:
    """A port nothing listens on: connecting to it is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_healthz_answers_without_touching_the_database() -> None:
    # No django_db mark: any query would fail the test.
    response = Client().get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_readyz_is_200_with_every_check_listed_when_all_is_well() -> None:
    expire_orders()  # the scheduled sweep, run once: it records its clean run

    response = Client().get("/readyz")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "cache", "queue", "expiry_sweep"}
    assert all(check["ok"] for check in body["checks"].values())
    assert body["checks"]["queue"]["due_jobs"] == 0
    assert body["checks"]["expiry_sweep"]["age_seconds"] < 5


@pytest.mark.django_db
def test_readyz_is_503_when_the_expiry_sweep_never_ran() -> None:
    response = Client().get("/readyz")

    assert response.status_code == 503
    sweep = response.json()["checks"]["expiry_sweep"]
    assert sweep["ok"] is False and sweep["age_seconds"] is None
    assert "never" in sweep["error"]


@pytest.mark.django_db
def test_readyz_is_503_when_the_last_expiry_sweep_is_older_than_the_bound(settings: Any) -> None:
    expire_orders()
    JobRun.objects.filter(name=JobRun.Job.EXPIRY_SWEEP).update(
        succeeded_at=timezone.now() - timedelta(seconds=settings.READY_EXPIRY_SWEEP_MAX_SECONDS + 5)
    )

    response = Client().get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["expiry_sweep"]["ok"] is False
    assert body["checks"]["expiry_sweep"]["age_seconds"] > settings.READY_EXPIRY_SWEEP_MAX_SECONDS
    assert body["checks"]["database"]["ok"] and body["checks"]["queue"]["ok"]


@pytest.mark.django_db
def test_readyz_is_503_when_a_queued_job_waits_longer_than_the_bound(settings: Any) -> None:
    expire_orders()
    async_task("orders.tasks.sweep_callbacks")  # really queued: the ORM broker in tests
    assert Client().get("/readyz").status_code == 200

    # No worker took it, and time passed.
    OrmQ.objects.update(
        lock=timezone.now() - timedelta(seconds=settings.READY_QUEUE_MAX_SECONDS + 5)
    )
    response = Client().get("/readyz")

    assert response.status_code == 503
    queue = response.json()["checks"]["queue"]
    assert queue["ok"] is False
    assert queue["due_jobs"] == 1
    assert queue["oldest_due_seconds"] > settings.READY_QUEUE_MAX_SECONDS


@pytest.mark.django_db
def test_a_job_a_worker_holds_is_not_counted_as_waiting() -> None:
    expire_orders()
    async_task("orders.tasks.sweep_callbacks")
    # What the ORM broker does when a worker takes a job: lock it until its retry time.
    OrmQ.objects.update(lock=timezone.now() + timedelta(seconds=60))

    response = Client().get("/readyz")

    assert response.status_code == 200
    assert response.json()["checks"]["queue"]["due_jobs"] == 0


@pytest.fixture
def redis_broker(monkeypatch: pytest.MonkeyPatch) -> Iterator[redis.Redis]:
    """django-q2 on a real Redis (as with REDIS_URL), on a queue name of this test's own."""
    connection = redis.from_url(REDIS_URL)
    try:
        connection.ping()
    except redis.ConnectionError:
        pytest.skip(f"the Redis broker check needs a Redis server at {REDIS_URL}")
    monkeypatch.setattr(Conf, "ORM", None)
    monkeypatch.setattr(Conf, "REDIS", REDIS_URL)
    monkeypatch.setattr(Conf, "CLUSTER_NAME", f"zerotp-test-{uuid.uuid4().hex[:8]}")
    broker = get_broker()
    yield connection
    broker.delete_queue()


@pytest.mark.django_db
def test_readyz_reads_the_oldest_job_from_redis(redis_broker: redis.Redis, settings: Any) -> None:
    expire_orders()
    async_task("orders.tasks.sweep_callbacks")
    fresh = Client().get("/readyz")
    assert fresh.status_code == 200, fresh.content
    assert fresh.json()["checks"]["queue"]["due_jobs"] == 1

    # A job queued long ago now heads the queue (workers take from the head).
    waited = settings.READY_QUEUE_MAX_SECONDS + 30
    old = {"id": uuid.uuid4().hex, "name": "old", "func": "orders.tasks.sweep_callbacks"}
    old |= {"args": (), "kwargs": {}, "started": timezone.now() - timedelta(seconds=waited)}
    broker = get_broker()
    redis_broker.lpush(broker.list_key, SignedPackage.dumps(old))
    response = Client().get("/readyz")

    assert response.status_code == 503
    queue = response.json()["checks"]["queue"]
    assert queue["due_jobs"] == 2
    assert waited - 5 < queue["oldest_due_seconds"] < waited + 5


def test_probes_answer_any_host_and_plain_http(settings: Any) -> None:
    """A balancer probes each node by its address, before TLS."""
    settings.ALLOWED_HOSTS = ["zerotp.example"]
    settings.SECURE_SSL_REDIRECT = True

    assert Client().get("/", HTTP_HOST="10.1.2.3").status_code == 400
    response = Client().get("/healthz", HTTP_HOST="10.1.2.3")

    assert response.status_code == 200


def test_probes_take_only_get_and_head() -> None:
    response = Client().post("/healthz")

    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """Start gunicorn with the production settings and the environment given; stop it after."""
    servers: list[subprocess.Popen] = []
    config = tmp_path / "gunicorn.conf.py"
    config.write_text("")  # not the repository's: one sync worker, nothing else

    def start(**environment: str) -> str:
        port = closed_port()
        env = {
            **{name: value for name, value in os.environ.items() if name != "REDIS_URL"},
            "DEBUG": "false",
            "HTTPS": "true",
            "SECRET_KEY": "test-" + uuid.uuid4().hex * 2,
            "ALLOWED_HOSTS": "zerotp.example",
            "LOG_FORMAT": "json",
            **environment,
        }
        gunicorn = Path(sys.executable).with_name("gunicorn")
        command = [str(gunicorn), "-c", str(config), "-w", "1", "-b", f"127.0.0.1:{port}"]
        server = subprocess.Popen(
            [*command, "zerotp.wsgi"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        servers.append(server)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/healthz", timeout=10).status_code == 200:
                    return base
            except requests.ConnectionError:  # not listening yet
                time.sleep(0.1)
        raise AssertionError("gunicorn did not answer /healthz within 60 s")

    yield start
    for server in servers:
        server.terminate()
        server.wait(timeout=10)


def test_readyz_is_503_when_the_database_is_down(serve: Any) -> None:
    base = serve(DATABASE_URL=f"postgres://postgres@127.0.0.1:{closed_port()}/zerotp")

    live = requests.get(f"{base}/healthz", timeout=5)
    response = requests.get(f"{base}/readyz", timeout=10)

    assert live.status_code == 200  # the process is fine: do not restart it
    assert response.status_code == 503
    checks = response.json()["checks"]
    # The cache and the queue live in the database too without REDIS_URL.
    for name in ("database", "cache", "queue", "expiry_sweep"):
        assert checks[name]["ok"] is False, name
    assert checks["database"]["error"] == "failed: OperationalError"
    assert "127.0.0.1" not in response.text  # hosts and ports stay in the log
    # Everything else checks the Host and goes to HTTPS; the probes answered as they were.
    assert requests.get(f"{base}/", allow_redirects=False, timeout=5).status_code == 400
    site = requests.get(
        f"{base}/", headers={"Host": "zerotp.example"}, allow_redirects=False, timeout=5
    )
    assert site.status_code == 301 and site.headers["Location"].startswith("https://")


def test_readyz_is_503_when_redis_is_down(serve: Any, tmp_path: Path) -> None:
    base = serve(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0",
    )

    response = requests.get(f"{base}/readyz", timeout=10)

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"]["ok"] is True
    assert checks["cache"] == {**checks["cache"], "ok": False, "error": "failed: ConnectionError"}
    assert checks["queue"] == {**checks["queue"], "ok": False, "error": "failed: ConnectionError"}
