"""The bench's own PostgreSQL database: created fresh, dropped at the end (it is ours)."""

from dataclasses import dataclass

import psycopg
from psycopg import sql


@dataclass(frozen=True)
class Database:
    name: str
    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "postgres"

    @property
    def url(self) -> str:
        """The DATABASE_URL the site and manage.py read."""
        return f"postgres://{self.user}@{self.host}:{self.port}/{self.name}"

    def connect(self, *, autocommit: bool = False, dbname: str | None = None) -> psycopg.Connection:
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            dbname=dbname or self.name,
            autocommit=autocommit,
        )

    def _maintenance(self, statement: sql.Composable) -> None:
        with self.connect(autocommit=True, dbname="postgres") as conn:
            conn.execute(statement)

    def create(self) -> None:
        """Drop the database if a previous run left it, then create it empty."""
        self.drop()
        self._maintenance(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))

    def drop(self) -> None:
        self._maintenance(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
        )

    def settle(self) -> None:
        """Before a measurement: clear the dead row versions a write scenario left, so that
        the next scenario (and its baseline) does not walk them (autovacuum would, given a
        minute), and write out what the seed or the last scenario left in memory. Without
        the CHECKPOINT, the seed's gigabyte of writes goes to disk over the next minutes,
        spread by PostgreSQL, while the seeded database's scenarios are measured."""
        with self.connect(autocommit=True) as conn:
            conn.execute("VACUUM")
            conn.execute("CHECKPOINT")

    def server_version(self) -> str:
        with self.connect(autocommit=True, dbname="postgres") as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "unknown"
