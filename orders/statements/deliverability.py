"""How often and how fast codes arrive, per application and pool: the share of orders that
received an SMS and the median and p90 time from the order to its first SMS, over the last
24 hours and 7 days, for the services list, the order form and getPrices.

An order counts once it is decided: its first SMS came (delivered, in a bucket of seconds
from the order), or it was cancelled or expired without one. A trigger adds it to the hour
the order was placed in (`DeliveryCount`) as it leaves pending, so reading a week costs the
same whatever the history: at most one row per application, pool, hour and bucket. On
PostgreSQL the trigger only inserts changes, which the next read adds in, as for the stock
(orders/statements/stock_counts.py). A window is whole hours: the current one and the 23
(or 167) before it.

Orders written already decided (a seed, an import) are counted by `recount`, which the
migration runs and `manage.py kept_counts --recount` runs again.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.utils import timezone

from orders.models import (
    USED_STATUSES,
    DeliveryCount,
    DeliveryCountChange,
    NumberRecord,
    OrderStatus,
)
from orders.statements.common import ORDER, PENDING, KeptCounts, as_stored

COUNTS = DeliveryCount._meta.db_table
CHANGES = DeliveryCountChange._meta.db_table
KEY = "hour, application_id, operator, bucket"
KEPT = KeptCounts(COUNTS, CHANGES, KEY, "orders")
# Upper bounds, in seconds, of the buckets of time to the first SMS; the last bucket runs
# to the order's end. Finer where codes usually arrive.
BOUNDS = (10, 20, 30, 45, 60, 90, 120, 180, 240, 300, 420, 600, 900)
NO_SMS = -1
WINDOWS = {"24h": 24, "7d": 7 * 24}  # hours
TRIGGER = f"zerotp_delivery_{ORDER}_update"
CACHE_KEY = "orders:deliverability:v1"  # the figures, for DELIVERABILITY_CACHE_SECONDS
_DELIVERED = "('{}', '{}')".format(*USED_STATUSES)
_FAILED = f"('{OrderStatus.CANCELLED}', '{OrderStatus.EXPIRED}')"
RECORDS = NumberRecord._meta.db_table
_RECORD_COLUMNS = "phone_number, application_id, delivered, failed, failed_in_a_row, last_failed_at"


def _bucket(order: str, vendor: str) -> str:
    """The bucket of an order that left pending: NO_SMS, or its time to the first SMS."""
    if vendor == "postgresql":
        seconds = f"EXTRACT(EPOCH FROM {order}.completed_at - {order}.created_at)"
    else:
        seconds = f"(julianday({order}.completed_at) - julianday({order}.created_at)) * 86400"
    steps = " ".join(f"WHEN {seconds} < {bound} THEN {i}" for i, bound in enumerate(BOUNDS))
    return (
        f"CASE WHEN {order}.status NOT IN {_DELIVERED} OR {order}.completed_at IS NULL "
        f"THEN {NO_SMS} {steps} ELSE {len(BOUNDS)} END"
    )


def _hour(order: str, vendor: str) -> str:
    if vendor == "postgresql":
        return f"date_trunc('hour', {order}.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
    return f"strftime('%Y-%m-%d %H:00:00', {order}.created_at)"


def _counted(order: str, vendor: str) -> str:
    """The key and the count of the rows of `{order}`, grouped."""
    return (
        f"SELECT {_hour(order, vendor)} AS hour, {order}.application_id AS application_id, "
        f"{order}.operator AS operator, "
        f"{_bucket(order, vendor)} AS bucket, COUNT(*) AS orders"
    )


def _record(order: str, rows: str) -> str:
    """Add the outcome of each order of `rows` (`{order}`: one that left pending, at most
    one per number and application: the open-order rule) to its number's record."""
    delivered = f"{order}.status IN {_DELIVERED}"
    return (
        f"INSERT INTO {RECORDS} ({_RECORD_COLUMNS})\n"
        f"SELECT {order}.phone_number, {order}.application_id, "
        f"CASE WHEN {delivered} THEN 1 ELSE 0 END, CASE WHEN {delivered} THEN 0 ELSE 1 END, "
        f"CASE WHEN {delivered} THEN 0 ELSE 1 END, "
        f"CASE WHEN {delivered} THEN NULL ELSE COALESCE({order}.closed_at, {order}.created_at) END"
        f"{rows}\n"
        f"ON CONFLICT (phone_number, application_id) DO UPDATE SET "
        f"delivered = {RECORDS}.delivered + excluded.delivered, "
        f"failed = {RECORDS}.failed + excluded.failed, "
        f"failed_in_a_row = CASE WHEN excluded.delivered > 0 THEN 0 "
        f"ELSE {RECORDS}.failed_in_a_row + 1 END, "
        f"last_failed_at = COALESCE(excluded.last_failed_at, {RECORDS}.last_failed_at)"
    )


def install(schema_editor: BaseDatabaseSchemaEditor) -> None:
    """(Re)create the trigger, and count the orders decided so far."""
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        rows = (
            " FROM old_rows o JOIN new_rows n ON n.id = o.id "
            f"WHERE o.status = {PENDING} AND n.status <> {PENDING}"
        )
        decided = (
            f"INSERT INTO {CHANGES} ({KEY}, orders)\n{_counted('n', vendor)}{rows} "
            "GROUP BY 1, 2, 3, 4"
        )
        statements = [
            f"CREATE OR REPLACE FUNCTION {TRIGGER}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            f"BEGIN\n{decided};\n{_record('n', rows)};\nRETURN NULL;\nEND $$",
            f"DROP TRIGGER IF EXISTS {TRIGGER} ON {ORDER}",
            f"CREATE TRIGGER {TRIGGER} AFTER UPDATE ON {ORDER} REFERENCING OLD TABLE AS "
            f"old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {TRIGGER}()",
        ]
    else:
        decided = KEPT.add(f"{_counted('NEW', vendor)} GROUP BY 1, 2, 3, 4")
        statements = [
            f"DROP TRIGGER IF EXISTS {TRIGGER}",
            f"CREATE TRIGGER {TRIGGER} AFTER UPDATE OF status ON {ORDER} FOR EACH ROW "
            f"WHEN OLD.status = {PENDING} AND NEW.status <> {PENDING}\n"
            f"BEGIN\n{decided};\n{_record('NEW', ' WHERE true')};\nEND",
        ]
    for statement in statements + recount(vendor):
        schema_editor.execute(statement, params=None)


def uninstall(schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {TRIGGER} ON {ORDER}")
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {TRIGGER}()")
    else:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {TRIGGER}")


def recount(vendor: str) -> list[str]:
    """Count every decided order from scratch, and every number's record: the failures
    in a row are those with no delivered order of the number and application after
    them. No record rests until the expiry job says so again; the stock is recounted
    after (`kept_counts --recount`, the migration)."""
    decided = f"{_counted('o', vendor)} FROM {ORDER} o WHERE o.status <> {PENDING}"

    delivered_since = (
        f"SELECT 1 FROM {ORDER} d WHERE d.phone_number = o.phone_number "
        f"AND d.application_id = o.application_id AND d.status IN {_DELIVERED} "
        "AND d.created_at > o.created_at"
    )
    records = (
        f"SELECT o.phone_number, o.application_id, "
        f"SUM(CASE WHEN o.status IN {_DELIVERED} THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN o.status IN {_FAILED} THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN o.status IN {_FAILED} AND NOT EXISTS ({delivered_since}) "
        "THEN 1 ELSE 0 END), "
        f"MAX(CASE WHEN o.status IN {_FAILED} THEN COALESCE(o.closed_at, o.created_at) END) "
        f"FROM {ORDER} o WHERE o.status <> {PENDING} GROUP BY o.phone_number, o.application_id"
    )
    return [
        f"DELETE FROM {CHANGES}",
        f"DELETE FROM {COUNTS}",
        f"INSERT INTO {COUNTS} ({KEY}, orders) {decided} GROUP BY 1, 2, 3, 4",
        f"DELETE FROM {RECORDS}",
        f"INSERT INTO {RECORDS} ({_RECORD_COLUMNS}) {records}",
    ]


@dataclass(frozen=True, slots=True)
class Window:
    """One window's figures for one application and pool; None below the minimum sample
    (settings.DELIVERABILITY_MIN_ORDERS decided orders, or delivered ones for the times)."""

    orders: int
    success_rate: float | None
    median_seconds_to_sms: int | None
    p90_seconds_to_sms: int | None

    def as_json(self) -> dict[str, Any]:
        return {
            "orders": self.orders,
            "success_rate": self.success_rate,
            "median_seconds_to_sms": self.median_seconds_to_sms,
            "p90_seconds_to_sms": self.p90_seconds_to_sms,
        }


def _percentile(histogram: list[int], share: float, last_bound: int) -> int:
    """The share-th quantile of a histogram over BOUNDS, linear within its bucket."""
    wanted = share * sum(histogram)
    seen = 0
    for index, count in enumerate(histogram):
        if count and seen + count >= wanted:
            low = BOUNDS[index - 1] if index else 0
            high = BOUNDS[index] if index < len(BOUNDS) else max(last_bound, low)
            return round(low + (high - low) * (wanted - seen) / count)
        seen += count
    return last_bound


def _window(failed: int, histogram: list[int]) -> Window:
    delivered = sum(histogram)
    orders = failed + delivered
    enough = settings.DELIVERABILITY_MIN_ORDERS
    last_bound = settings.ORDER_TTL_SECONDS
    timed = delivered >= enough
    return Window(
        orders=orders,
        success_rate=round(delivered / orders, 3) if orders >= enough else None,
        median_seconds_to_sms=_percentile(histogram, 0.5, last_bound) if timed else None,
        p90_seconds_to_sms=_percentile(histogram, 0.9, last_bound) if timed else None,
    )


Figures = dict[tuple[int, str], dict[str, Window]]


def figures_now(now: datetime | None = None) -> Figures:
    """Every (application, pool) with a decided order in the last week: its windows."""
    now = now or timezone.now()
    hour = now.replace(minute=0, second=0, microsecond=0)
    starts = {name: hour - timedelta(hours=hours - 1) for name, hours in WINDOWS.items()}
    KEPT.fold()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT application_id, operator, hour >= %s, bucket, SUM(orders) "
            f"FROM ({KEPT.both}) kept WHERE hour >= %s GROUP BY 1, 2, 3, 4",
            [as_stored(starts["24h"]), as_stored(starts["7d"])],
        )
        rows = cursor.fetchall()
    # (application, pool) -> window -> [failed, histogram]
    tallies: dict[tuple[int, str], dict[str, tuple[list[int], list[int]]]] = {}
    for application_id, operator, in_last_day, bucket, orders in rows:
        windows = tallies.setdefault(
            (application_id, operator),
            {name: ([0], [0] * (len(BOUNDS) + 1)) for name in WINDOWS},
        )
        for name in ("24h", "7d") if in_last_day else ("7d",):
            failed, histogram = windows[name]
            if bucket == NO_SMS:
                failed[0] += orders
            else:
                histogram[bucket] += orders
    return {
        pool: {name: _window(failed[0], histogram) for name, (failed, histogram) in w.items()}
        for pool, w in tallies.items()
    }


def prune(now: datetime | None = None) -> int:
    """Drop the counts of hours no window reads any more (older than the longest window and
    a day): the table then holds about a week, whatever the history. A recount adds them
    back from the orders, to be pruned again."""
    oldest = (now or timezone.now()) - timedelta(hours=max(WINDOWS.values()) + 24)
    KEPT.fold()  # the changes too (PostgreSQL)
    return DeliveryCount.objects.filter(hour__lt=oldest).delete()[0]


def figures() -> Figures:
    """`figures_now`, cached for DELIVERABILITY_CACHE_SECONDS: a day's figures move slowly,
    and the services list, recomputed every few seconds, need not read a week each time."""
    ttl = settings.DELIVERABILITY_CACHE_SECONDS
    if ttl:
        entry = cache.get(CACHE_KEY)
        if entry is not None:
            return entry
    computed = figures_now()
    if ttl:
        cache.set(CACHE_KEY, computed, timeout=ttl)
    return computed


def empty() -> Window:
    return Window(orders=0, success_rate=None, median_seconds_to_sms=None, p90_seconds_to_sms=None)
