"""What every statement module shares: table names, status lists, and the conversions
between the database's values and the models'."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, overload

from django.db import connection
from django.db.models import Field, Model

from orders.models import OPEN_STATUSES, USED_STATUSES, Order, OrderStatus

ORDER = Order._meta.db_table
OPEN = "('{}', '{}')".format(*OPEN_STATUSES)  # pending, completed: the order holds its number
USED = "('{}', '{}')".format(*USED_STATUSES)  # completed, finished: the order received an SMS
PENDING = f"'{OrderStatus.PENDING}'"
ORDER_FIELDS = [f.attname for f in Order._meta.concrete_fields]


def as_stored(moment: datetime) -> Any:
    """A datetime as the database stores it (SQLite: naive UTC text)."""
    return connection.ops.adapt_datetimefield_value(moment)


@overload
def aware(moment: datetime) -> datetime: ...
@overload
def aware(moment: None) -> None: ...
def aware(moment: datetime | None) -> datetime | None:
    """A datetime from a raw cursor: SQLite hands them back naive (stored in UTC)."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def column_of(field: Field) -> str:
    """A concrete field's column (the stubs allow None, which only other fields have)."""
    assert field.column is not None
    return field.column


def row_lock(clause: str) -> str:
    """A locking clause (FOR UPDATE ...) where the database has one; SQLite needs none:
    it runs one writer at a time."""
    return f" {clause}" if connection.features.has_select_for_update else ""


def loaded[M: Model](model: type[M], names: Sequence[str], values: Sequence[Any]) -> M:
    """A model instance from a raw row, as the ORM would load it (fields not named are
    deferred: read from the database if ever used)."""
    values = [aware(v) if isinstance(v, datetime) else v for v in values]
    return model.from_db(connection.alias, list(names), values)


@dataclass(frozen=True)
class KeptCounts:
    """A table of counts that database triggers keep (the stock, the deliverability), with
    its table of changes: PostgreSQL's triggers only insert changes, so that writers never
    wait on a count row, and readers fold them in; SQLite's add to the counts directly."""

    table: str
    changes: str
    key: str
    count: str

    def add(self, rows: str) -> str:
        """Add the (key..., count) rows of a query to the counts, in key order: two
        statements adding to the same rows never wait for each other in a circle."""
        table, key, count = self.table, self.key, self.count
        return (
            f"INSERT INTO {table} ({key}, {count})\n{rows} ORDER BY {key}\n"
            f"ON CONFLICT ({key}) DO UPDATE SET {count} = {table}.{count} + excluded.{count}"
        )

    @cached_property
    def both(self) -> str:
        """The counts and the changes not folded in yet, for one statement (one snapshot)
        to sum."""
        columns = f"{self.key}, {self.count}"
        return f"SELECT {columns} FROM {self.table} UNION ALL SELECT {columns} FROM {self.changes}"

    @cached_property
    def _fold(self) -> str:
        key, count = self.key, self.count
        moved = f"SELECT {key}, SUM({count}) FROM moved GROUP BY {key} HAVING SUM({count}) <> 0"
        deleted = f"WITH moved AS (DELETE FROM {self.changes} RETURNING {key}, {count})\n"
        return deleted + self.add(moved)

    def fold(self) -> None:
        """Move the changes into the counts (PostgreSQL), in one statement: a reader sees
        each change in one table or the other. A fold running at once waits for the rows
        this one deletes, then skips them."""
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(self._fold)
