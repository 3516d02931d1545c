"""`/healthz` (the process answers) and `/readyz` (what it needs answers too: the database,
the cache, the job queue with no job waiting too long, and an expiry sweep that ran lately).

Both, and `/metrics`, are answered by ProbeMiddleware before Django checks the Host header
or redirects to HTTPS: a balancer probes each node over plain HTTP from inside the network
with the node's own address as Host. They build no URL, so the Host cannot mislead them."""

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.db.models import Count, Min
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.brokers.redis_broker import Redis
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.signing import SignedPackage

from orders.models import JobRun

logger = logging.getLogger(__name__)


class NotReady(Exception):
    """A check reached its service but found it past a bound."""


@dataclass(frozen=True)
class QueueState:
    due: int  # jobs waiting for a worker now
    oldest_due_seconds: float  # how long the first of them has waited; 0 when none


def queue_state(now: datetime) -> QueueState:
    """The job queue's backlog, from whichever broker Q_CLUSTER names (the ORM or Redis)."""
    if Conf.ORM:
        # A job's lock is when it may be taken: its enqueue time, or a retry's time after a
        # worker took it and never acknowledged it.
        row = (
            OrmQ.objects.using(Conf.ORM)
            .filter(key=Conf.CLUSTER_NAME, lock__lte=now)
            .aggregate(due=Count("id"), oldest=Min("lock"))
        )
        oldest = row["oldest"]
        return QueueState(row["due"], (now - oldest).total_seconds() if oldest else 0.0)
    broker = get_broker()
    if not isinstance(broker, Redis):
        raise NotImplementedError(f"no queue check for {type(broker).__name__}")
    connection = broker.connection
    due = connection.llen(broker.list_key)
    head = connection.lindex(broker.list_key, 0) if due else None
    if head is None:
        return QueueState(0, 0.0)
    # Workers take from the head: it is the oldest. `started` is when it was queued.
    enqueued = SignedPackage.loads(head)["started"]
    return QueueState(due, max((now - enqueued).total_seconds(), 0.0))


def expiry_sweep_age(now: datetime) -> float | None:
    """Seconds since the expiry sweep last finished cleanly; None if it never has."""
    at = (
        JobRun.objects.filter(name=JobRun.Job.EXPIRY_SWEEP)
        .values_list("succeeded_at", flat=True)
        .first()
    )
    return (now - at).total_seconds() if at else None


def _check_database() -> dict[str, Any]:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {}


def _check_cache() -> dict[str, Any]:
    # A key of its own: probes of several nodes at once must not read each other's value.
    key, value = f"zerotp:readyz:{uuid.uuid4().hex}", uuid.uuid4().hex
    cache.set(key, value, timeout=30)
    try:
        if cache.get(key) != value:
            raise NotReady("the cache did not return what was stored")
    finally:
        cache.delete(key)
    return {}


def _check_queue() -> dict[str, Any]:
    state = queue_state(timezone.now())
    bound = settings.READY_QUEUE_MAX_SECONDS
    details = {
        "due_jobs": state.due,
        "oldest_due_seconds": round(state.oldest_due_seconds, 1),
        "max_seconds": bound,
    }
    if state.oldest_due_seconds > bound:
        raise NotReady("a job has waited longer than the bound: are the workers running?", details)
    return details


def _check_expiry_sweep() -> dict[str, Any]:
    age = expiry_sweep_age(timezone.now())
    bound = settings.READY_EXPIRY_SWEEP_MAX_SECONDS
    details = {"age_seconds": round(age, 1) if age is not None else None, "max_seconds": bound}
    if age is None:
        raise NotReady("the expiry sweep has never finished: are the workers running?", details)
    if age > bound:
        raise NotReady("the expiry sweep is late: are the workers running?", details)
    return details


CHECKS: dict[str, Callable[[], dict[str, Any]]] = {
    "database": _check_database,
    "cache": _check_cache,
    "queue": _check_queue,
    "expiry_sweep": _check_expiry_sweep,
}


def _run(name: str, check: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result = {"ok": True, **check()}
    except NotReady as exc:
        message, *details = exc.args
        result = {"ok": False, "error": message, **(details[0] if details else {})}
    except Exception as exc:
        # The exception's text may name hosts and ports: logged here, not shown to a stranger.
        logger.warning("readiness check %s failed", name, exc_info=True)
        result = {"ok": False, "error": f"failed: {type(exc).__name__}"}
    result["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def _probe_response(body: dict[str, Any], status: int) -> JsonResponse:
    response = JsonResponse(body, status=status)
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def healthz(request: HttpRequest) -> HttpResponse:
    """The process is up and answering: nothing else is touched."""
    return _probe_response({"status": "ok"}, 200)


def readyz(request: HttpRequest) -> HttpResponse:
    results = {name: _run(name, check) for name, check in CHECKS.items()}
    ready = all(result["ok"] for result in results.values())
    body = {"status": "ok" if ready else "unavailable", "checks": results}
    return _probe_response(body, 200 if ready else 503)


class ProbeMiddleware:
    """Answers /healthz, /readyz and /metrics ahead of the host check and HTTPS redirect
    (see the module's docstring). Second in MIDDLEWARE, right after the request log."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        from zerotp.metrics import metrics  # not at the top: it imports this module

        self.get_response = get_response
        self.probes: dict[str, Callable[[HttpRequest], HttpResponse]] = {
            "/healthz": healthz,
            "/readyz": readyz,
            "/metrics": metrics,
        }

    def __call__(self, request: HttpRequest) -> HttpResponse:
        probe = self.probes.get(request.path_info)
        if probe is None:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            response = HttpResponse(status=405)
            response["Allow"] = "GET, HEAD"
            return response
        return probe(request)
