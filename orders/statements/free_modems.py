"""The free-modem rule (docs/API.md, "Stock rules"), written once: the pick that hands an
order a modem and the catalogue's stock both render it from here, so they cannot disagree.

A modem is free for an application when it is orderable (online, said it can order, not
disabled by staff, has a number, serves the operator) and no order of the application
blocks it (`BLOCKING`).
"""

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cache
from typing import NamedTuple

from django.db import connection

from modems.models import Modem, Operator
from orders.models import OPEN_STATUSES, USED_STATUSES
from orders.statements.common import ORDER, as_stored
from zerotp.db import on_postgresql

MODEM = Modem._meta.db_table


class Blocking(NamedTuple):
    """Orders of the application in these statuses whose column matches the modem's."""

    order_column: str
    modem_column: str
    statuses: tuple[str, ...]

    def matches(self, order: str, modem: str) -> str:
        """The order blocks the modem (for the order's application)."""
        statuses = ", ".join(f"'{status}'" for status in self.statuses)
        return (
            f"{order}.{self.order_column} = {modem}.{self.modem_column} "
            f"AND {order}.status IN ({statuses})"
        )

    def orders(self, modem: str, application: str) -> str:
        """The orders of the application that block the modem."""
        return (
            f"SELECT 1 FROM {ORDER} o WHERE o.application_id = {application} "
            f"AND {self.matches('o', modem)}"
        )


# An order of the application blocks a modem when it is (each rule has its partial unique
# constraint, so it matches at most one order per application and modem):
BLOCKING = (
    # the modem's open order, whatever number it was for;
    Blocking("modem_id", "id", OPEN_STATUSES),
    # the open order of the modem's number, on whichever modem the number was then (an
    # open order follows its number from modem to modem);
    Blocking("phone_number", "phone_number", OPEN_STATUSES),
    # an order the number received an SMS for: a number serves an application once, ever.
    Blocking("phone_number", "phone_number", USED_STATUSES),
)


def orderable(modem: str, online_since: str) -> str:
    """The conditions on the modem alone, whatever the application and operator: those of
    the orderable index (`online` included, so silent modems are not walked), and the
    heartbeat's age, which is exact where `online` may lag by a minute."""
    return (
        f"{modem}.online AND {modem}.can_order AND NOT {modem}.disabled "
        f"AND {modem}.phone_number IS NOT NULL AND {modem}.last_heartbeat_at >= {online_since}"
    )


@cache
def free_modems(operator: str, online_seconds: int, by_carrier: bool = False) -> str:
    """FROM and WHERE of the operator's free modems (`m`) for %(application)s; with
    `by_carrier`, only those of the mobile carrier %(carrier)s (modems.carriers).

    On PostgreSQL the operator and the online window are written into the text rather
    than bound (one statement per operator): the plan PostgreSQL prepares once for all
    parameter values then estimates them as it does when planning for the values at hand,
    finds it no worse, and keeps it instead of planning the order statement again at every
    order, which cost more than running it (docs/PERFORMANCE.md). statement_timestamp() is
    the time the statement began, which is after the caller's `now`. Each NOT EXISTS ends
    in OFFSET 0, which keeps it a per-modem index probe: otherwise the generic plan turns
    them into anti-joins that read every open order of every application (6 ms, not 0.3)."""
    if on_postgresql() and operator in Operator.values:
        fence = " OFFSET 0"
        mapping = f"'{operator}'"
        online_since = f"statement_timestamp() - interval '{int(online_seconds)} seconds'"
    else:
        fence, mapping, online_since = "", "%(operator)s", "%(online_since)s"
    blocked = "".join(
        f"\n  AND NOT EXISTS ({rule.orders('m', '%(application)s')}{fence})" for rule in BLOCKING
    )
    carrier = " AND m.carrier = %(carrier)s" if by_carrier else ""
    return f"""
FROM {MODEM} m
WHERE m.mapping = {mapping}{carrier} AND {orderable("m", online_since)}{blocked}"""


@cache
def _stock_sql(by_carrier: bool) -> str:
    """The orderable modems per operator, then for each rule the modems it blocks per
    (application, operator), apart from those an earlier rule blocks (NOT EXISTS): a
    modem two rules block is counted once. Under one rule an (application, modem) pair has
    at most one order: each rule has its unique constraint (orders.models.Order). Counted
    without a UNION or DISTINCT, which would sort every blocked pair of the whole history;
    the rule with the longest history (numbers that served) comes first, with no probe."""
    parts = ["SELECT m.mapping, NULL, COUNT(*) FROM orderable m GROUP BY m.mapping"]
    rules = list(reversed(BLOCKING))
    for index, rule in enumerate(rules):
        not_before = "".join(
            f" AND NOT EXISTS ({earlier.orders('m', 'b.application_id')})"
            for earlier in rules[:index]
        )
        parts.append(
            f"SELECT m.mapping, b.application_id, COUNT(*) FROM orderable m "
            f"JOIN {ORDER} b ON {rule.matches('b', 'm')}{not_before} "
            "GROUP BY m.mapping, b.application_id"
        )
    carrier = " AND m.carrier = %s" if by_carrier else ""
    online_modems = (
        f"SELECT id, mapping, phone_number FROM {MODEM} m WHERE {orderable('m', '%s')}{carrier}"
    )
    return f"WITH orderable AS ({online_modems})\n" + "\nUNION ALL\n".join(parts)


def stock(
    now: datetime, online_seconds: int, carrier: str | None = None
) -> Callable[[int, str], int]:
    """The stock of every (application, operator): its free modems (of the mobile carrier,
    if given), counted in one query, whatever the numbers of modems and applications."""
    online_since = as_stored(now - timedelta(seconds=online_seconds))
    with connection.cursor() as cursor:
        if carrier is None:
            cursor.execute(_stock_sql(by_carrier=False), [online_since])
        else:
            cursor.execute(_stock_sql(by_carrier=True), [online_since, carrier])
        rows = cursor.fetchall()
    orderable_by_operator: dict[str, int] = {}
    blocked: dict[tuple[int, str], int] = {}
    for mapping, application_id, count in rows:
        if application_id is None:
            orderable_by_operator[mapping] = count
        else:
            blocked[application_id, mapping] = blocked.get((application_id, mapping), 0) + count

    def free(application_id: int, operator: str) -> int:
        return orderable_by_operator.get(operator, 0) - blocked.get((application_id, operator), 0)

    return free
