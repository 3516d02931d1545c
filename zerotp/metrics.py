"""`/metrics` for Prometheus: the business gauges an operator pages on, computed from the
database on each scrape (so every node answers the same, and nothing lives in a process).

Every query is bounded: open orders and pending callbacks through their partial indexes,
"the last hour" through a primary-key range of at most WINDOW_ROWS rows below the newest
id (never a scan of the whole history), modems by their count. tests/test_metrics.py holds
the number of queries. Off unless METRICS_TOKEN or METRICS_ALLOW is set (404)."""

import hmac
import ipaddress
from collections.abc import Iterator
from datetime import datetime, timedelta
from functools import cache

from django.conf import settings
from django.db.models import Count, F, Min, Model, Q, QuerySet, Subquery, Sum
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.utils import timezone
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from modems.models import Modem, Operator
from orders.models import (
    OPEN_STATUSES,
    CallbackAttempt,
    CallbackDelivery,
    JobRun,
    Order,
    OrderStatus,
)
from zerotp.health import queue_state

WINDOW = timedelta(hours=1)
WINDOW_ROWS = 100_000
# Seconds from an order to its SMS; the last bucket is the longest an order waits by default.
OTP_BUCKETS = (5, 10, 20, 30, 60, 120, 300, 600, 1200)
INF = float("inf")


def _recent(model: type[Model], field: str, since: datetime) -> QuerySet:
    """Rows since `since`, looked for only among the WINDOW_ROWS newest ids."""
    newest = Subquery(model._default_manager.order_by("-pk").values("pk")[:1])
    return model._default_manager.filter(pk__gt=newest - WINDOW_ROWS, **{f"{field}__gte": since})


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _age(now: datetime, at: datetime | None) -> float:
    return (now - at).total_seconds() if at else INF


class BusinessCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        yield from self._orders(now)
        yield from self._modems(now)
        yield from self._callbacks(now)
        yield from self._jobs(now)

    def _orders(self, now: datetime) -> Iterator[Metric]:
        open_orders = Order.objects.filter(status__in=OPEN_STATUSES).aggregate(
            **{status: Count("pk", filter=Q(status=status)) for status in OPEN_STATUSES},
            overdue=Count("pk", filter=Q(status=OrderStatus.PENDING, expires_at__lte=now)),
        )
        gauge = GaugeMetricFamily(
            "zerotp_orders_open",
            "Open orders by status (pending: waiting for an SMS).",
            labels=["status"],
        )
        for status in OPEN_STATUSES:
            gauge.add_metric([status], open_orders[status])
        yield gauge
        yield _gauge(
            "zerotp_orders_overdue",
            "Pending orders past their expiry that the expiry sweep has not refunded yet.",
            open_orders["overdue"],
        )

        answered = Q(completed_at__isnull=False)
        recent = _recent(Order, "created_at", now - WINDOW).aggregate(
            **{status: Count("pk", filter=Q(status=status)) for status in OrderStatus.values},
            **{
                f"le_{bucket}": Count(
                    "pk",
                    filter=answered
                    & Q(completed_at__lte=F("created_at") + timedelta(seconds=bucket)),
                )
                for bucket in OTP_BUCKETS
            },
            answered=Count("pk", filter=answered),
            waited=Sum(F("completed_at") - F("created_at"), filter=answered),
        )
        gauge = GaugeMetricFamily(
            "zerotp_orders_last_hour",
            "Orders placed in the last hour, by their status now.",
            labels=["status"],
        )
        for value in OrderStatus.values:
            gauge.add_metric([value], recent[value])
        yield gauge
        buckets = [(str(float(b)), recent[f"le_{b}"]) for b in OTP_BUCKETS]
        waited = recent["waited"] or timedelta(0)
        yield GaugeHistogramMetricFamily(
            "zerotp_time_to_otp_seconds",
            "Seconds from order to SMS, over the orders placed in the last hour that got one.",
            buckets=[*buckets, ("+Inf", recent["answered"])],
            gsum_value=waited.total_seconds(),
        )

    def _modems(self, now: datetime) -> Iterator[Metric]:
        online = dict(
            Modem.objects.online()
            .values("mapping")
            .annotate(n=Count("pk"))
            .order_by()
            .values_list("mapping", "n")
        )
        gauge = GaugeMetricFamily(
            "zerotp_modems_online",
            "Modems whose agent sent a heartbeat within MODEM_ONLINE_SECONDS, by operator.",
            labels=["operator"],
        )
        for operator in Operator.values:
            gauge.add_metric([operator], online.get(operator, 0))
        yield gauge

    def _callbacks(self, now: datetime) -> Iterator[Metric]:
        due = Q(next_attempt_at__lte=now)
        pending = CallbackDelivery.objects.filter(status=CallbackDelivery.Status.PENDING).aggregate(
            pending=Count("pk"),
            due=Count("pk", filter=due),
            oldest=Min("next_attempt_at", filter=due),
        )
        yield _gauge(
            "zerotp_callbacks_pending",
            "Callback deliveries not delivered yet and still being retried.",
            pending["pending"],
        )
        yield _gauge(
            "zerotp_callbacks_due",
            "Pending callback deliveries whose next attempt is due.",
            pending["due"],
        )
        yield _gauge(
            "zerotp_callbacks_oldest_due_seconds",
            "How long the longest-due callback delivery has waited for its attempt (0: none).",
            (now - pending["oldest"]).total_seconds() if pending["oldest"] else 0,
        )
        since = now - WINDOW
        failed = _recent(CallbackDelivery, "created_at", since).aggregate(
            n=Count("pk", filter=Q(status=CallbackDelivery.Status.FAILED))
        )
        yield _gauge(
            "zerotp_callbacks_failed_last_hour",
            "Callback deliveries created in the last hour that were given up on.",
            failed["n"],
        )
        ok = Q(status_code__gte=200, status_code__lt=300)
        attempts = _recent(CallbackAttempt, "at", since).aggregate(
            delivered=Count("pk", filter=ok),
            failed=Count("pk", filter=~ok),  # a missing status (no answer) too
        )
        gauge = GaugeMetricFamily(
            "zerotp_callback_attempts_last_hour",
            "Callback attempts in the last hour: delivered (a 2xx answer) or failed.",
            labels=["outcome"],
        )
        for outcome in ("delivered", "failed"):
            gauge.add_metric([outcome], attempts[outcome])
        yield gauge

    def _jobs(self, now: datetime) -> Iterator[Metric]:
        runs = dict(JobRun.objects.values_list("name", "succeeded_at"))
        yield _gauge(
            "zerotp_expiry_sweep_age_seconds",
            "Seconds since the expiry sweep last finished cleanly (+Inf: never).",
            _age(now, runs.get(JobRun.Job.EXPIRY_SWEEP)),
        )
        yield _gauge(
            "zerotp_ledger_check_age_seconds",
            "Seconds since `manage.py ledger_check` last found the books sound (+Inf: never).",
            _age(now, runs.get(JobRun.Job.LEDGER_CHECK)),
        )
        queue = queue_state(now)
        yield _gauge("zerotp_job_queue_due", "Jobs waiting for a worker.", queue.due)
        yield _gauge(
            "zerotp_job_queue_oldest_due_seconds",
            "How long the oldest waiting job has waited (0: none).",
            queue.oldest_due_seconds,
        )


registry = CollectorRegistry(auto_describe=False)
registry.register(BusinessCollector())


@cache
def _networks(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def _allowed(request: HttpRequest) -> bool:
    """Both conditions that are configured must hold. The address is the connecting peer's,
    never X-Forwarded-For: scrape each node directly, not through the public proxy."""
    token, allow = settings.METRICS_TOKEN, settings.METRICS_ALLOW
    if not (token or allow):
        return False
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return False
    if allow:
        try:
            address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if not any(address in network for network in _networks(tuple(allow))):
            return False
    return True


def metrics(request: HttpRequest) -> HttpResponse:
    """Not found unless allowed: a stranger learns nothing, not even that it exists."""
    if not _allowed(request):
        return HttpResponseNotFound("Not Found", content_type="text/plain")
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    response = HttpResponse(encoder(registry), content_type=content_type)
    response["Cache-Control"] = "no-store"
    return response
