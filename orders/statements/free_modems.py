"""The free-modem rule (docs/API.md, "Stock rules"), written once: the pick that hands an
order a modem and the catalogue's stock both render it from here, so they cannot disagree.

A modem is free for an application when it is orderable (online, said it can order, not
disabled by staff, has a number, serves the operator) and no order of the application
blocks it (`BLOCKING`).
"""

from functools import cache
from typing import NamedTuple

from modems.models import Modem, Operator
from orders.models import OPEN_STATUSES, USED_STATUSES
from orders.statements.common import ORDER
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

    def orders(self, modem: str, application: str, orders: str = ORDER) -> str:
        """The orders (of the relation `orders`) of the application that block the modem."""
        return (
            f"SELECT 1 FROM {orders} o WHERE o.application_id = {application} "
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


def flagged(modem: str) -> str:
    """The orderable index's condition (`online` included, so silent modems are not
    walked): what the stock's counts keep to, as they can only follow written columns."""
    return (
        f"{modem}.online AND {modem}.can_order AND NOT {modem}.disabled "
        f"AND {modem}.phone_number IS NOT NULL"
    )


def orderable(modem: str, online_since: str) -> str:
    """The conditions on the modem alone, whatever the application and operator: the
    orderable index's, and the heartbeat's age, which is exact where `online` may lag by
    a minute (the pick checks both; the stock, the first only)."""
    return f"{flagged(modem)} AND {modem}.last_heartbeat_at >= {online_since}"


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


def count_parts(modems: str) -> list[str]:
    """SELECTs of (application_id, operator, carrier, modems) whose sum is the stock's
    counts for the modems of the relation `modems` (orderable by the index's condition):
    the orderable modems (application 0), then for each rule the modems it blocks per
    application, apart from those an earlier rule blocks (NOT EXISTS), so a modem two rules
    block counts once. Under one rule an (application, modem) pair has at most one order
    (each rule has its unique constraint), so nothing needs a DISTINCT, and nothing sorts
    the history."""
    key = "m.mapping AS operator, m.carrier AS carrier"
    parts = [
        f"SELECT 0 AS application_id, {key}, COUNT(*) AS modems FROM {modems} m "
        f"WHERE {flagged('m')} GROUP BY m.mapping, m.carrier"
    ]
    rules = list(reversed(BLOCKING))  # the longest history (numbers that served) first
    for index, rule in enumerate(rules):
        not_before = "".join(
            f" AND NOT EXISTS ({earlier.orders('m', 'b.application_id')})"
            for earlier in rules[:index]
        )
        parts.append(
            f"SELECT b.application_id AS application_id, {key}, COUNT(*) AS modems "
            f"FROM {modems} m JOIN {ORDER} b ON {rule.matches('b', 'm')}{not_before} "
            f"WHERE {flagged('m')} GROUP BY b.application_id, m.mapping, m.carrier"
        )
    return parts


def blocked(modem: str, application: str, orders: str = ORDER, unless: str = "") -> str:
    """Some order of the relation `orders` blocks the modem for the application (`unless`:
    a condition on `o` that leaves orders out); one index probe per rule."""
    return " OR ".join(
        f"EXISTS ({rule.orders(modem, application, orders)}{unless})" for rule in BLOCKING
    )
