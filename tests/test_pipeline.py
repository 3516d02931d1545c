"""zerotp.db.pipeline: statements sent together, one transaction, errors as Django's."""

import pytest
from django.db import DataError, connection, transaction

from zerotp.db import pipeline

pytestmark = [
    pytest.mark.postgres(why="psycopg's pipeline mode is PostgreSQL's"),
    pytest.mark.django_db,
]


def test_the_second_statement_reads_what_the_first_wrote() -> None:
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE piped (n int)")
        with pipeline():
            cursor.execute("INSERT INTO piped VALUES (%s)", [7])
            cursor.execute("SELECT n + 1 FROM piped")
        assert cursor.fetchone() == (8,)


def test_an_error_at_the_sync_is_djangos_with_the_drivers_cause() -> None:
    """A statement fails when the block ends; callers (billing's Movement.run) tell
    errors apart by the SQLSTATE of Django's exception's cause."""
    with connection.cursor() as cursor, pytest.raises(DataError) as raised:
        with transaction.atomic(), pipeline():
            cursor.execute("SELECT 1")
            cursor.execute("SELECT 1 / 0")
    assert getattr(raised.value.__cause__, "sqlstate", None) == "22012"
