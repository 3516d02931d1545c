"""EXPLAIN ANALYZE of the queries each scenario runs, captured from the real code.

Runs inside Django (`manage.py shell`, see `bench.run`): each scenario's requests go
through the test client (the real URLs, views and services) inside one transaction that
is rolled back at the end, under CaptureQueriesContext. Each captured SELECT, UPDATE or
DELETE is then run again as EXPLAIN (ANALYZE, BUFFERS) in a savepoint that is rolled
back too, so the database is left as the seed made it (the half-offline case commits
its change, as the offline job would, and puts every modem back after). The SQL therefore
follows the application code as it changes: nothing here restates a query.
"""

import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BIG_TABLE_ROWS = 10_000
SQL_SHOWN = 2500  # characters of each statement printed (a 1,000-modem batch is long)
PLAN_LINE_SHOWN = 300  # characters of each plan line (a filter may list 1,000 uids)
_SEQ_SCAN = re.compile(r"Seq Scan on (\w+)")
_EXECUTION = re.compile(r"Execution Time: ([\d.]+) ms")
_JIT = re.compile(r"JIT:\n(?:.*\n)*?\s*Timing: .*Total ([\d.]+) ms")
_EXPLAINED = ("SELECT", "WITH", "UPDATE", "DELETE")


@dataclass
class Explained:
    sql: str
    plan: str
    ms: float
    seq_scans: list[str] = field(default_factory=list)
    jit_ms: float = 0.0


@dataclass
class ScenarioPlans:
    title: str
    status: int
    queries: list[Explained]


def _explain(sql: str, big: dict[str, int]) -> Explained:
    from django.db import DatabaseError, connection, transaction

    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
                plan = "\n".join(row[0] for row in cursor.fetchall())
            transaction.set_rollback(True)
    except DatabaseError as exc:
        return Explained(sql, f"EXPLAIN failed: {exc}", 0.0)
    timing = _EXECUTION.search(plan)
    scans = sorted({t for t in _SEQ_SCAN.findall(plan) if big.get(t, 0) >= BIG_TABLE_ROWS})
    jit = _JIT.search(plan)
    return Explained(
        sql,
        plan,
        float(timing.group(1)) if timing else 0.0,
        scans,
        float(jit.group(1)) if jit else 0.0,
    )


def _capture(
    title: str, request: Callable[[], Any], big: dict[str, int]
) -> tuple[ScenarioPlans, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = request()
    statements = [
        q["sql"]
        for q in captured.captured_queries
        if q["sql"].lstrip().upper().startswith(_EXPLAINED)
    ]
    plans = [_explain(sql, big) for sql in statements]
    return ScenarioPlans(title, response.status_code, plans), response


def _table_rows() -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, reltuples::bigint FROM pg_class "
            "WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace"
        )
        return {name: int(rows) for name, rows in cursor.fetchall()}


def collect(fixture_path: Path) -> tuple[list[ScenarioPlans], dict[str, int]]:
    from django.core.cache import cache
    from django.db import transaction
    from rest_framework.test import APIClient

    from bench.payloads import heartbeat_body, sms_body, sync_body
    from bench.seed import Fixture

    fixture = Fixture.load(fixture_path)
    big = _table_rows()
    client = APIClient(SERVER_NAME="127.0.0.1")
    buyer = {"HTTP_X_API_KEY": fixture.buyer_keys[0]}
    agent = {"HTTP_X_AGENT_KEY": fixture.agent_keys[0]}
    reseller, uid, phone = fixture.sms_targets[-1]
    results: list[ScenarioPlans] = []

    def post(path: str, body: Any, headers: dict[str, str]) -> Any:
        return client.post(path, body, format="json", **headers)

    with transaction.atomic():
        cache.clear()  # the catalogue is computed, not read from a cache
        order_body = {"application_id": fixture.order_app_id, "operator": "normal"}
        status_id = fixture.status_orders[0][0]
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("GET /api/v1/balance (baseline)", lambda: client.get("/api/v1/balance", **buyer)),
            ("GET /api/v1/services", lambda: client.get("/api/v1/services")),
            ("GET /api/v1/orders/{id}", lambda: client.get(f"/api/v1/orders/{status_id}", **buyer)),
        ]
        results += [_capture(title, request, big)[0] for title, request in steps]
        created, response = _capture(
            "POST /api/v1/orders", lambda: post("/api/v1/orders", order_body, buyer), big
        )
        results.append(created)
        order_id = response.json()["order_id"] if response.status_code == 201 else 0
        sms_agent = {"HTTP_X_AGENT_KEY": fixture.agent_keys[reseller]}
        steps = [
            (
                "POST /api/v1/orders/{id}/cancel",
                lambda: post(f"/api/v1/orders/{order_id}/cancel", {}, buyer),
            ),
            (
                "POST /api/modem/heartbeat (1,000 modems)",
                lambda: post("/api/modem/heartbeat", heartbeat_body(fixture.modems[0]), agent),
            ),
            (
                "POST /api/modem/sync (1,000 unchanged)",
                lambda: post("/api/modem/sync", sync_body(fixture.modems[0]), agent),
            ),
            (
                "POST /api/modem/inbound-sms",
                lambda: post("/api/modem/inbound-sms", sms_body(uid, phone, 123456), sms_agent),
            ),
        ]
        results += [_capture(title, request, big)[0] for title, request in steps]
        transaction.set_rollback(True)
    return results, big


HALF_OFFLINE = "POST /api/v1/orders, the first half of the modems offline"


def half_offline(fixture_path: Path, big: dict[str, int]) -> ScenarioPlans:
    """The order once the half of the modems the pick meets first (the lowest ids) went
    silent and the offline job marked them, committed and vacuumed as they would be in a
    running site (in the same transaction, the index would still hand out each one's old
    entry): the pick must not walk them. Every modem is then put back as it was."""
    from django.db import connection, transaction
    from rest_framework.test import APIClient

    from bench.seed import Fixture

    fixture = Fixture.load(fixture_path)
    client = APIClient(SERVER_NAME="127.0.0.1")
    body = {"application_id": fixture.order_app_id, "operator": "normal"}
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE bench_silenced AS SELECT id, online, last_heartbeat_at "
            "FROM modems_modem WHERE id <= (SELECT percentile_disc(0.5) WITHIN GROUP "
            "(ORDER BY id) FROM modems_modem)"
        )
        # The stock's triggers are off for the two mass updates, which cancel out: they
        # would take half the modems out of the counts and put them back, row by row.
        cursor.execute("SET session_replication_role = replica")
        cursor.execute(
            "UPDATE modems_modem m SET online = false, "
            "last_heartbeat_at = now() - interval '30 days' FROM bench_silenced s "
            "WHERE m.id = s.id"
        )
        cursor.execute("RESET session_replication_role")
        cursor.execute("VACUUM (ANALYZE) modems_modem")
        try:
            with transaction.atomic():
                plans, _ = _capture(
                    HALF_OFFLINE,
                    lambda: client.post(
                        "/api/v1/orders",
                        body,
                        format="json",
                        HTTP_X_API_KEY=fixture.buyer_keys[0],
                    ),
                    big,
                )
                transaction.set_rollback(True)
        finally:
            cursor.execute("SET session_replication_role = replica")
            cursor.execute(
                "UPDATE modems_modem m SET online = s.online, "
                "last_heartbeat_at = s.last_heartbeat_at FROM bench_silenced s "
                "WHERE m.id = s.id"
            )
            cursor.execute("RESET session_replication_role")
            cursor.execute("DROP TABLE bench_silenced")
            cursor.execute("VACUUM (ANALYZE) modems_modem")
    return plans


def findings(results: list[ScenarioPlans], big: dict[str, int]) -> list[str]:
    lines = []
    for scenario in results:
        if scenario.status >= 300:
            lines.append(f"{scenario.title}: answered {scenario.status}, plans may be partial")
        for n, query in enumerate(scenario.queries, 1):
            for table in query.seq_scans:
                lines.append(
                    f"{scenario.title}, query {n} ({query.ms:.1f} ms): sequential scan on "
                    f"{table} ({big.get(table, 0):,} rows)"
                )
            if query.jit_ms:
                lines.append(
                    f"{scenario.title}, query {n}: JIT compilation took {query.jit_ms:.1f} ms "
                    f"of its {query.ms:.1f} ms"
                )
        slowest = max(scenario.queries, key=lambda q: q.ms, default=None)
        if slowest is not None:
            n = scenario.queries.index(slowest) + 1
            total = sum(q.ms for q in scenario.queries)
            lines.append(
                f"{scenario.title}: {len(scenario.queries)} queries explained, "
                f"{total:.1f} ms in all, slowest query {n} at {slowest.ms:.1f} ms"
            )
    return lines


def _shown(sql: str) -> str:
    import sqlparse

    text = sqlparse.format(sql, reindent=True) if len(sql) < 20_000 else sql
    return text if len(text) <= SQL_SHOWN else text[:SQL_SHOWN] + "\n... (cut)"


def _plan_shown(plan: str) -> str:
    return "\n".join(
        line if len(line) <= PLAN_LINE_SHOWN else line[:PLAN_LINE_SHOWN] + " ... (cut)"
        for line in plan.splitlines()
    )


def markdown(results: list[ScenarioPlans], big: dict[str, int], header: str) -> str:
    out = [header, "", "## Findings", ""]
    out += [f"- {line}" for line in findings(results, big)]
    for scenario in results:
        out += ["", f"## {scenario.title} (answered {scenario.status})"]
        for n, query in enumerate(scenario.queries, 1):
            scans = f"; sequential scan on {', '.join(query.seq_scans)}" if query.seq_scans else ""
            out += [
                "",
                f"### Query {n}: {query.ms:.2f} ms{scans}",
                "",
                "```sql",
                _shown(query.sql),
                "```",
                "",
                "```",
                _plan_shown(query.plan),
                "```",
            ]
    return "\n".join(out) + "\n"


def main() -> None:
    """Entry point inside `manage.py shell`: BENCH_FIXTURE names the fixture, BENCH_EXPLAIN
    the markdown file to write, BENCH_EXPLAIN_HEADER its first lines."""
    results, big = collect(Path(os.environ["BENCH_FIXTURE"]))
    results.append(half_offline(Path(os.environ["BENCH_FIXTURE"]), big))
    Path(os.environ["BENCH_EXPLAIN"]).write_text(
        markdown(results, big, os.environ.get("BENCH_EXPLAIN_HEADER", "# EXPLAIN"))
    )
    sys.stdout.write("\n".join(findings(results, big)) + "\n")
