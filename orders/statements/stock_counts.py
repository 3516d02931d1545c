"""The catalogue's stock as counts that database triggers keep (`StockCount`), so that
`GET /api/v1/services` reads a few hundred rows instead of joining every orderable modem
with the orders that block it, which grows with the modems and the history.

Every statement that changes the modems or the orders a count depends on adds its delta:
the counts (`free_modems.count_parts`, the free-modem rule's own text) of the rows after
the change less those before it. A modem's contribution depends on its own row and the
orders; an order's change touches only the modems of its id and number, and only its
application's counts. Triggers rather than calls in the services, because every write
counts (the heartbeat's and sync's SQL, the expiry job, the admin, a fixture's
`.update()`): none can forget.

PostgreSQL runs one trigger per statement (per row for a modem's update), and only inserts
the delta as `StockCountChange` rows: concurrent orders never wait for each other on a
count row, nor hold one while they wait for the escrow row. Reading the stock moves the
changes into the counts, then reads both in one statement. SQLite has row triggers only,
which run as each row changes, and add to the counts directly (one writer at a time).

The counts follow `online`, not the heartbeat's age, so a modem whose agent went silent
stays in the stock until the minute job marks it offline; the pick checks the age itself.
The triggers are rendered from the rule when a migration installs them: a migration that
changes the rule, or the columns it reads, calls `install` again.
"""

from collections.abc import Callable
from typing import NamedTuple

from django.db import connection
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

from orders.models import StockCount, StockCountChange
from orders.statements.common import ORDER, KeptCounts
from orders.statements.free_modems import (
    BLOCKING,
    MODEM,
    RECORDS,
    blocked,
    count_parts,
    flagged,
)

STOCK = StockCount._meta.db_table
CHANGES = StockCountChange._meta.db_table
KEY = "application_id, operator, carrier"
KEPT = KeptCounts(STOCK, CHANGES, KEY, "modems")
# The columns the rule reads: a change to any other leaves the counts as they are.
MODEM_COLUMNS = ("id", "mapping", "carrier", "phone_number", "online", "can_order", "disabled")
ORDER_COLUMNS = ("id", "application_id", "modem_id", "phone_number", "status")
RECORD_COLUMNS = ("id", "application_id", "phone_number", "resting")
TRIGGER = "zerotp_stock"
Delta = Callable[[str | None, str | None, str], str]  # (old rows, new rows, vendor) -> SQL


def _columns(alias: str, columns: tuple[str, ...]) -> str:
    return ", ".join(f"{alias}.{column} AS {column}" for column in columns)


def _add(after: list[str], before: list[str], vendor: str) -> str:
    """Add to the counts the `after` counts less the `before` ones: on PostgreSQL, as
    changes that reading the stock adds in (no trigger waits for a count row)."""
    parts = after + [f"SELECT {KEY}, -modems AS modems FROM ({part}) gone" for part in before]
    union = "\nUNION ALL\n".join(parts)
    rows = f"SELECT {KEY}, SUM(modems) FROM ({union}) delta GROUP BY {KEY} HAVING SUM(modems) <> 0"
    if vendor == "postgresql":
        return f"INSERT INTO {CHANGES} ({KEY}, modems)\n{rows}"
    return KEPT.add(rows)


def _differ(old: str, new: str, columns: tuple[str, ...], vendor: str) -> str:
    distinct = "IS DISTINCT FROM" if vendor == "postgresql" else "IS NOT"
    return "(" + " OR ".join(f"{old}.{c} {distinct} {new}.{c}" for c in columns) + ")"


def _modem_delta(old: str | None, new: str | None, vendor: str) -> str:
    """The delta of modems changed from the relation `old` to `new` (None: none); the
    orders are the same before and after."""
    return _add(count_parts(new) if new else [], count_parts(old) if old else [], vendor)


def _rows_delta(table: str) -> Delta:
    """The delta of rows of `table` (orders, or numbers' records) changed from the relation
    `old` to `new`: for each orderable modem they can block (by the columns of the
    table's rules) and each of their applications, whether something blocks it now, less
    whether something did before (the table now but the new rows, the old rows, and the
    other tables, which the statement left as they were)."""
    rules = [rule for rule in BLOCKING if rule.table == table]
    matched = sorted({(rule.column, rule.modem_column) for rule in rules})
    others = [other for other in dict.fromkeys(rule.table for rule in BLOCKING) if other != table]

    def delta(old: str | None, new: str | None, vendor: str) -> str:
        sides = [side for side in (old, new) if side]
        read = ", ".join(["application_id", *dict.fromkeys(column for column, _ in matched)])
        changed = " UNION ALL ".join(f"SELECT {read} FROM {side} c" for side in sides)
        columns = ", ".join(f"m.{column}" for column in MODEM_COLUMNS)
        modems = (
            "("
            + " UNION ".join(
                f"SELECT {columns} FROM {MODEM} m "
                f"WHERE m.{modem_column} IN (SELECT {column} FROM ({changed}) c)"
                for column, modem_column in matched
            )
            + ")"
        )
        application = "a.application_id"
        unless = f" AND o.id NOT IN (SELECT id FROM {new} n)" if new else ""
        before = [blocked("m", application, table, unless=unless)]
        before += [blocked("m", application, other) for other in others]
        if old:
            before.append(blocked("m", application, table, old))
        now = f"CASE WHEN {blocked('m', application)} THEN 1 ELSE 0 END"
        then = f"CASE WHEN {' OR '.join(before)} THEN 1 ELSE 0 END"
        counted = (
            f"SELECT {application} AS application_id, m.mapping AS operator, "
            f"m.carrier AS carrier, SUM({now} - {then}) AS modems "
            f"FROM {modems} m CROSS JOIN (SELECT DISTINCT application_id FROM ({changed}) c) a "
            f"WHERE {flagged('m')} GROUP BY {application}, m.mapping, m.carrier"
        )
        return _add([counted], [], vendor)

    return delta


def _one_row(side: str, columns: tuple[str, ...]) -> str:
    """A row trigger's OLD or NEW as a relation."""
    return f"(SELECT {_columns(side, columns)})"


def _after_locking_what_blocks_the_modem(delta: Delta) -> Delta:
    """A modem's delta reads its orders, and an order's delta reads its modems: each in its
    own snapshot, so a cancel and a modem coming online at once would each miss the other
    and count the modem blocked for good. The modem's trigger first locks the orders (and
    numbers' records) that block it (a cancel in flight: wait for it, then read it as it
    ended; one not started yet: it waits for this modem's transaction, then reads the
    modem as it ends). An order is created on a modem the pick has locked, so a modem's
    update waits for it anyway. Modems change rarely (a heartbeat changes what is counted
    only when one comes back or goes), orders often: the waiting falls on the rare side."""

    def locked_first(old: str | None, new: str | None, vendor: str) -> str:
        locks = [
            f"PERFORM 1 FROM {rule.table} o WHERE {rule.matches('o', side)} FOR SHARE"
            for side in ("OLD", "NEW")
            for rule in BLOCKING
        ]
        return ";\n".join([*locks, delta(old, new, vendor)])

    return locked_first


class Counted(NamedTuple):
    """A table the counts depend on, and how its triggers run: `when`, the condition of
    each event whose trigger runs per row (on PostgreSQL; SQLite's all run per row)."""

    table: str
    columns: tuple[str, ...]  # the columns the rule reads: a change to any other counts nothing
    delta: Delta
    when: dict[str, str]


def _tables(vendor: str) -> list[Counted]:
    return [
        # A heartbeat rewrites a thousand modems, almost always leaving the counted
        # columns as they were: a row trigger's condition skips those without capturing
        # any row.
        Counted(
            MODEM,
            MODEM_COLUMNS,
            _modem_delta,
            {"update": _differ("OLD", "NEW", MODEM_COLUMNS, vendor)},
        ),
        Counted(ORDER, ORDER_COLUMNS, _rows_delta(ORDER), {}),
        # Every decided order writes its number's records; only a rest's start or end,
        # which the minute job writes, counts.
        Counted(
            RECORDS,
            RECORD_COLUMNS,
            _rows_delta(RECORDS),
            {
                "insert": "NEW.resting",
                "update": _differ("OLD", "NEW", RECORD_COLUMNS, vendor),
                "delete": "OLD.resting",
            },
        ),
    ]


def _postgresql(counted: Counted) -> list[str]:
    """One trigger per statement and event, with its transition tables, unless it runs
    per row (`when`)."""
    table, columns = counted.table, counted.columns
    statements = []
    for event, old, new in (
        ("insert", None, "new_rows"),
        ("update", "old_rows", "new_rows"),
        ("delete", "old_rows", None),
    ):
        name = f"{TRIGGER}_{table}_{event}"
        referencing = " ".join(
            f"{side} TABLE AS {side}_rows" for side, rows in (("old", old), ("new", new)) if rows
        )
        level = f"REFERENCING {referencing} FOR EACH STATEMENT"
        body = counted.delta
        if event in counted.when:
            level = f"FOR EACH ROW WHEN ({counted.when[event]})"
            old = _one_row("OLD", columns) if old else None
            new = _one_row("NEW", columns) if new else None
            if table == MODEM:
                body = _after_locking_what_blocks_the_modem(body)
        elif event == "update":
            # Only the rows whose counted columns changed (PostgreSQL takes no column list
            # with transition tables).
            pairs = (
                "old_rows o JOIN new_rows n ON n.id = o.id "
                f"WHERE {_differ('o', 'n', columns, 'postgresql')}"
            )
            old = f"(SELECT {_columns('o', columns)} FROM {pairs})"
            new = f"(SELECT {_columns('n', columns)} FROM {pairs})"
        statements += [
            f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            f"BEGIN\n{body(old, new, 'postgresql')};\nRETURN NULL;\nEND $$",
            f"DROP TRIGGER IF EXISTS {name} ON {table}",
            f"CREATE TRIGGER {name} AFTER {event.upper()} ON {table} {level} "
            f"EXECUTE FUNCTION {name}()",
        ]
    return statements


def _sqlite(counted: Counted) -> list[str]:
    """One trigger per row and event; OLD and NEW as one-row relations."""
    table, columns = counted.table, counted.columns
    old, new = _one_row("OLD", columns), _one_row("NEW", columns)
    when = {"update": _differ("OLD", "NEW", columns, "sqlite")} | counted.when
    statements = []
    for event, before, after in (
        ("insert", None, new),
        ("update", old, new),
        ("delete", old, None),
    ):
        name = f"{TRIGGER}_{table}_{event}"
        condition = f" WHEN {when[event]}" if event in when else ""
        statements += [
            f"DROP TRIGGER IF EXISTS {name}",
            f"CREATE TRIGGER {name} AFTER {event.upper()} ON {table} FOR EACH ROW{condition}\n"
            f"BEGIN\n{counted.delta(before, after, 'sqlite')};\nEND",
        ]
    return statements


def counted() -> str:
    """The counts as they should be, from scratch, in the counts table's shape."""
    union = "\nUNION ALL\n".join(count_parts(MODEM))
    return f"SELECT {KEY}, SUM(modems) FROM ({union}) counted GROUP BY {KEY}"


def recount() -> list[str]:
    """Count from scratch: after a migration, or a load with the triggers off."""
    return [
        f"DELETE FROM {CHANGES}",
        f"DELETE FROM {STOCK}",
        f"INSERT INTO {STOCK} ({KEY}, modems) {counted()}",
    ]


def install(schema_editor: BaseDatabaseSchemaEditor) -> None:
    """(Re)create the triggers from the rule as it is now, and count from scratch."""
    vendor = schema_editor.connection.vendor
    render = _postgresql if vendor == "postgresql" else _sqlite
    statements = [statement for counted in _tables(vendor) for statement in render(counted)]
    for statement in statements + recount():
        schema_editor.execute(statement, params=None)


def uninstall(schema_editor: BaseDatabaseSchemaEditor) -> None:
    postgresql = schema_editor.connection.vendor == "postgresql"
    for table in (MODEM, ORDER, RECORDS):
        for event in ("insert", "update", "delete"):
            name = f"{TRIGGER}_{table}_{event}"
            if postgresql:
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
                schema_editor.execute(f"DROP FUNCTION IF EXISTS {name}()")
            else:
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}")


def stock_differences() -> list[str]:
    """Where the kept counts differ from a count from scratch (none, unless a trigger
    missed a change): checked after every test."""
    with connection.cursor() as cursor:
        cursor.execute(counted())
        expected = {tuple(row[:3]): row[3] for row in cursor.fetchall() if row[3]}
        cursor.execute(f"SELECT {KEY}, SUM(modems) FROM ({KEPT.both}) kept GROUP BY {KEY}")
        kept = {tuple(row[:3]): row[3] for row in cursor.fetchall() if row[3]}
    return [
        f"application {key[0]}, {key[1]}, {key[2] or 'no carrier'}: "
        f"kept {kept.get(key, 0)}, counted {expected.get(key, 0)}"
        for key in sorted(kept.keys() | expected.keys())
        if kept.get(key, 0) != expected.get(key, 0)
    ]


def stock(carrier: str | None = None) -> Callable[[int, str], int]:
    """The stock of every (application, operator): its orderable modems (of the mobile
    carrier, if given) less those an order of the application blocks, from the kept counts:
    a few hundred rows, whatever the numbers of modems and orders. On PostgreSQL the
    changes since the last read are moved into the counts first, which keeps them few."""
    KEPT.fold()
    only = " WHERE carrier = %s" if carrier is not None else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT application_id, operator, SUM(modems) FROM ({KEPT.both}) kept{only} "
            "GROUP BY application_id, operator",
            [carrier] if carrier is not None else [],
        )
        rows = cursor.fetchall()
    orderable_by_operator: dict[str, int] = {}
    blocked: dict[tuple[int, str], int] = {}
    for application_id, operator, count in rows:
        if application_id == 0:
            orderable_by_operator[operator] = count
        else:
            blocked[application_id, operator] = count

    def free(application_id: int, operator: str) -> int:
        return orderable_by_operator.get(operator, 0) - blocked.get((application_id, operator), 0)

    return free
