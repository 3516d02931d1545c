"""Prepared statements for the hot paths' hand-written SQL (PostgreSQL).

Django leaves psycopg's prepared statements off, so PostgreSQL parses and plans every
statement each time it runs it. For the statements the hot paths write out (the order and
SMS statements, the one-statement ledger movements, the batch heartbeat) that cost more
than running them (docs/PERFORMANCE.md). `prepared(sql)` marks such a statement; the
cursor class below, which settings.py hands Django on PostgreSQL, prepares a marked
statement the first time a connection runs it. PostgreSQL then plans it five times for
the values at hand, and keeps one plan for all values from then on if that plan looks as
good (tests/test_query_budgets.py checks the order path's do).

Nothing else is prepared: a plan made for all values would not suit the ORM's long IN
lists (each row's value searched through the list one by one) or filters on booleans that
partial indexes depend on. A statement marked here must be such that one plan suits all
its values, and its text must not change with the values (they go in as parameters).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Self
from uuid import UUID

from django.conf import settings
from django.db import connection
from django.db.backends.postgresql.base import ServerBindingCursor
from psycopg.abc import Params, Query


def on_postgresql() -> bool:
    """The one place that asks which database this is; asked when a statement is built,
    never at import time (the settings may still change then, in tests)."""
    return connection.vendor == "postgresql"


def writes_in_one_statement() -> bool:
    """Whether a write and the money it moves are one statement: an order and its hold, a
    cancel and its refund, a ledger movement and its legs (PostgreSQL's data-modifying
    CTEs). Otherwise each is a transaction of several statements, the portable path
    SQLite always takes; ONE_STATEMENT_WRITES=false forces it on PostgreSQL too, so that
    the suite proves both paths there."""
    return on_postgresql() and settings.ONE_STATEMENT_WRITES


@contextmanager
def pipeline() -> Iterator[None]:
    """Send the statements executed inside one after the other without waiting for their
    results (PostgreSQL's pipeline mode), and a sync at the end of the block. With no
    transaction around them they run as one transaction, which the server commits on the
    sync: a lock the first takes is held until the last has run, not while the client
    reads results. Each statement still takes its own snapshot (READ COMMITTED) once the
    one before it has finished, so a statement after a lock sees everything committed
    before the lock was granted. Results are read after the block."""
    connection.ensure_connection()
    assert connection.connection is not None
    # An error surfaces when the block ends (the sync), outside the cursor's own wrapper:
    # Django's wrapper turns it into django.db's exception, as a cursor's would be.
    with connection.wrap_database_errors, connection.connection.pipeline():
        yield


# A value a statement's parameter may take: what Django's cursor adapts, as django-stubs'
# CursorWrapper.execute spells it (which also takes lists and tuples, for IN and arrays).
type SqlValue = bool | int | float | Decimal | str | bytes | date | datetime | UUID | None

_PREPARED: set[str] = set()


def prepared(sql: str) -> str:
    """Mark `sql` to be prepared on each connection that runs it; returns it unchanged."""
    _PREPARED.add(sql)
    return sql


# psycopg prepares nothing while its threshold is None (Django's setting), not even what
# is asked for; past this many runs it would prepare any statement by itself, which no
# statement here reaches: every execute below says whether to prepare.
PREPARE_THRESHOLD = 2**62


class PreparingCursor(ServerBindingCursor):
    """Django's server-binding cursor, preparing the statements `prepared` marked and no
    others."""

    def execute(
        self,
        query: Query,
        params: Params | None = None,
        *,
        prepare: bool | None = None,
        binary: bool | None = None,
    ) -> Self:
        if prepare is None:
            prepare = isinstance(query, str) and query in _PREPARED
        # django-stubs leave psycopg's Cursor out of ServerBindingCursor's bases.
        return super().execute(query, params, prepare=prepare, binary=binary)  # type: ignore[misc]
