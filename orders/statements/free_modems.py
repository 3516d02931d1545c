"""The free-modem rule (docs/API.md, "Stock rules"), written once: the pick that hands an
order a modem and the catalogue's stock both render it from here, so they cannot disagree.

A modem is free for an application when it is orderable (online, said it can order, not
disabled by staff, has a number, serves the operator) and nothing blocks it for the
application (`BLOCKING`): an order of the application, or its number resting from it.
"""

from functools import cache
from typing import NamedTuple

from modems.models import Modem, Operator
from orders.models import OPEN_STATUSES, USED_STATUSES, NumberRecord
from orders.statements.common import ORDER
from zerotp.db import on_postgresql

MODEM = Modem._meta.db_table
RECORDS = NumberRecord._meta.db_table


class Blocking(NamedTuple):
    """Rows of `table` for the application whose `column` matches the modem's and that meet
    `condition` (on the row `{b}`)."""

    table: str
    column: str
    modem_column: str
    condition: str

    def matches(self, row: str, modem: str, condition: str | None = None) -> str:
        """The row blocks the modem (for the row's application)."""
        met = (condition or self.condition).format(b=row)
        return f"{row}.{self.column} = {modem}.{self.modem_column} AND {met}"

    def rows(
        self,
        modem: str,
        application: str,
        relation: str | None = None,
        condition: str | None = None,
    ) -> str:
        """The rows (of `relation`, the table by default) of the application that block the
        modem; `condition` in place of the rule's own (the pick's exact rest)."""
        return (
            f"SELECT 1 FROM {relation or self.table} o WHERE o.application_id = {application} "
            f"AND {self.matches('o', modem, condition)}"
        )


def _statuses(statuses: tuple[str, ...]) -> str:
    return "{b}.status IN (" + ", ".join(f"'{status}'" for status in statuses) + ")"


# A number that failed NUMBER_REST_AFTER_FAILURES orders of an application in a row rests
# from it for NUMBER_REST_SECONDS after the last, as its record says. The pick reads the
# rule itself (`resting()`, exact to the second); the stock, which can only follow written
# columns, reads the column `resting`, which the expiry job writes from the same rule every
# minute (`rest_updates`, services.numbers_rest).
REST = Blocking(RECORDS, "phone_number", "phone_number", "{b}.resting")

# What blocks a modem for an application (each order rule has its partial unique
# constraint, so it matches at most one order per application and modem):
BLOCKING = (
    # the modem's open order, whatever number it was for;
    Blocking(ORDER, "modem_id", "id", _statuses(OPEN_STATUSES)),
    # the open order of the modem's number, on whichever modem the number was then (an
    # open order follows its number from modem to modem);
    Blocking(ORDER, "phone_number", "phone_number", _statuses(OPEN_STATUSES)),
    # an order the number received an SMS for: a number serves an application once, ever;
    Blocking(ORDER, "phone_number", "phone_number", _statuses(USED_STATUSES)),
    # the number resting from the application.
    REST,
)


def resting(record: str, after_failures: int, since: str) -> str:
    """The record's number rests now: it failed `after_failures` orders in a row, the last
    after `since` (now less NUMBER_REST_SECONDS). After its rest one more failure rests it
    again: it has still not delivered since. No failures given: no rest."""
    if after_failures <= 0:
        return "false"
    return (
        f"{record}.failed_in_a_row >= {int(after_failures)} AND {record}.last_failed_at > {since}"
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
def free_modems(
    operator: str, online_seconds: int, rest: tuple[int, int], by_carrier: bool = False
) -> str:
    """FROM and WHERE of the operator's free modems (`m`) for %(application)s; with
    `by_carrier`, only those of the mobile carrier %(carrier)s (modems.carriers). `rest`:
    (NUMBER_REST_AFTER_FAILURES, NUMBER_REST_SECONDS); no failures, no rest.

    On PostgreSQL the operator and the windows are written into the text rather than
    bound (one statement per operator): the plan PostgreSQL prepares once for all
    parameter values then estimates them as it does when planning for the values at hand,
    finds it no worse, and keeps it instead of planning the order statement again at every
    order, which cost more than running it (docs/PERFORMANCE.md). statement_timestamp() is
    the time the statement began, which is after the caller's `now`. Each NOT EXISTS ends
    in OFFSET 0, which keeps it a per-modem index probe: otherwise the generic plan turns
    them into anti-joins that read every open order of every application (6 ms, not 0.3)."""
    after_failures, rest_seconds = rest
    if on_postgresql() and operator in Operator.values:
        fence = " OFFSET 0"
        mapping = f"'{operator}'"
        online_since = f"statement_timestamp() - interval '{int(online_seconds)} seconds'"
        rest_since = f"statement_timestamp() - interval '{int(rest_seconds)} seconds'"
    else:
        fence, mapping = "", "%(operator)s"
        online_since, rest_since = "%(online_since)s", "%(rest_since)s"
    exact_rest = resting("{b}", after_failures, rest_since)  # not the flag: see REST
    blocked = "".join(
        f"\n  AND NOT EXISTS ({rule.rows('m', '%(application)s', condition=exact_rest)}{fence})"
        if rule is REST
        else f"\n  AND NOT EXISTS ({rule.rows('m', '%(application)s')}{fence})"
        for rule in BLOCKING
        if rule is not REST or after_failures > 0
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
    block counts once. Under one rule an (application, modem) pair has at most one row
    (each order rule has its unique constraint, a record is one per number and
    application), so nothing needs a DISTINCT, and nothing sorts the history."""
    key = "m.mapping AS operator, m.carrier AS carrier"
    parts = [
        f"SELECT 0 AS application_id, {key}, COUNT(*) AS modems FROM {modems} m "
        f"WHERE {flagged('m')} GROUP BY m.mapping, m.carrier"
    ]
    rules = list(reversed(BLOCKING))  # the resting numbers, then those that served, ...
    for index, rule in enumerate(rules):
        not_before = "".join(
            f" AND NOT EXISTS ({earlier.rows('m', 'b.application_id')})"
            for earlier in rules[:index]
        )
        parts.append(
            f"SELECT b.application_id AS application_id, {key}, COUNT(*) AS modems "
            f"FROM {modems} m JOIN {rule.table} b ON {rule.matches('b', 'm')}{not_before} "
            f"WHERE {flagged('m')} GROUP BY b.application_id, m.mapping, m.carrier"
        )
    return parts


def blocked(
    modem: str,
    application: str,
    table: str | None = None,
    relation: str | None = None,
    unless: str = "",
) -> str:
    """Some row blocks the modem for the application; one index probe per rule. With
    `table`, only that table's rules, read from `relation` in its place if given, leaving
    out the rows `unless` (a condition on `o`) names."""
    return (
        " OR ".join(
            f"EXISTS ({rule.rows(modem, application, relation)}{unless})"
            for rule in BLOCKING
            if table is None or rule.table == table
        )
        or "false"
    )


@cache
def rest_updates(after_failures: int) -> tuple[str, str]:
    """The job's two UPDATEs of the column `resting`: the rests that start, those that end,
    for %(since)s (now less NUMBER_REST_SECONDS)."""
    rest = resting("r", after_failures, "%(since)s")
    starting = (
        f"SELECT r.id FROM {RECORDS} r WHERE NOT r.resting AND r.failed_in_a_row > 0 AND {rest}"
    )
    ending = f"SELECT r.id FROM {RECORDS} r WHERE r.resting AND NOT COALESCE({rest}, false)"
    return (
        f"UPDATE {RECORDS} SET resting = true WHERE id IN ({starting})",
        f"UPDATE {RECORDS} SET resting = false WHERE id IN ({ending})",
    )


# Which candidate is likeliest to deliver: the one whose number failed the application
# fewest times in a row. A number serves an application once, so among free numbers its
# record for the application holds failures only; a number never tried ranks first with
# those that never failed, so new numbers are not starved by old ones.
_PREFERENCE = "COALESCE(r.failed_in_a_row, 0)"


@cache
def pick(
    operator: str,
    online_seconds: int,
    rest: tuple[int, int],
    candidates: int,
    by_carrier: bool = False,
    locking: str = "",
) -> str:
    """The id of the modem an order of %(application)s gets (`locking` locks it, skipping
    those others hold), or NULL. The candidates are the first `candidates` free modems
    from a point of the ids (%(start)s, a fraction), so that orders spread over every
    reseller's modems and every number gets tried; the order gets the candidate whose
    number is likeliest to deliver for the application (`_PREFERENCE`; ties: the first),
    unless %(explore)s (a share of orders): then the first, whatever its record, so a
    number that failed is tried again now and then. When no candidate is left past the
    point (or all are held), the first free modem. Only the candidates are ranked: a few
    index probes each, whatever the number of modems. One candidate: always the first
    free modem (no routing)."""
    free = free_modems(operator, online_seconds, rest, by_carrier)
    first = f"SELECT m.id {free}\nORDER BY m.id LIMIT 1{locking}"
    if candidates <= 1:
        return f"({first})"
    start = (
        f"m.id >= (SELECT MIN(id) + CAST(%(start)s * (MAX(id) - MIN(id)) AS BIGINT) FROM {MODEM})"
    )
    best = f"""SELECT m.id FROM {MODEM} m
LEFT JOIN {RECORDS} r ON r.phone_number = m.phone_number AND r.application_id = %(application)s
WHERE m.id IN (SELECT m.id {free} AND {start}\nORDER BY m.id LIMIT {int(candidates)})
ORDER BY CASE WHEN %(explore)s THEN m.id END, {_PREFERENCE}, m.id LIMIT 1{locking}"""
    return f"COALESCE(({best}), ({first}))"
