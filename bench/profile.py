"""Profile one hot path in-process: `python -m bench.profile order_cycle [-n 500]`.

Creates (or reuses) a small PostgreSQL database, calls the WSGI application directly
(no HTTP, no client) with the bench's production settings, and prints the CPU time per
iteration, the SQL statements per iteration and the top of a cProfile by own time. For
finding where a scenario's time goes; `make bench` is what measures it.
"""

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.db import Database
from bench.payloads import heartbeat_body, sms_body, sync_body
from bench.project import manage
from bench.server import production_env

SCENARIOS = ("balance", "services", "order_status", "order_cycle", "heartbeat", "sync", "sms")


def _call(app: Any, method: str, path: str, headers: dict[str, str], body: Any = None) -> dict:
    raw = b"" if body is None else json.dumps(body).encode()
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "HTTP_HOST": "127.0.0.1",
        "REMOTE_ADDR": "127.0.0.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(raw),
        "wsgi.errors": sys.stderr,
        "CONTENT_LENGTH": str(len(raw)),
        "CONTENT_TYPE": "application/json",
    }
    for name, value in headers.items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    status: list[str] = []
    chunks = app(environ, lambda s, h, exc_info=None: status.append(s))
    content = b"".join(chunks)
    if hasattr(chunks, "close"):
        chunks.close()
    if not status[0].startswith("2"):
        raise RuntimeError(f"{method} {path}: {status[0]} {content[:300]!r}")
    return json.loads(content) if content else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=SCENARIOS)
    parser.add_argument("-n", type=int, default=300)
    parser.add_argument("--db-name", default="zerotp_profile")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--fresh", action="store_true", help="drop and recreate the database")
    parser.add_argument("--callees", help="also print what this function calls (a name)")
    parser.add_argument(
        "--session",
        action="append",
        default=[],
        help="SQL run on the connection first, to try a setting (SET synchronous_commit = off)",
    )
    args = parser.parse_args()

    db = Database(args.db_name)
    env = production_env(db.url)
    if args.fresh or not _exists(db):
        db.create()
        manage("migrate", "--no-input", env=env)
        manage("seed_demo", env=env)
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zerotp.settings")
    import django

    django.setup()
    from django.db import connection

    from zerotp.wsgi import application as app

    # One backend for the whole run, so that its CPU time can be read at the end.
    connection.settings_dict["CONN_MAX_AGE"] = None

    with connection.cursor() as cursor:
        for statement in args.session:
            cursor.execute(statement)
    step = _setup(args.scenario, args.n, app)
    for _ in range(20):
        step()
    backend = _backend_cpu(connection)
    # CPU time, not wall time: waiting for PostgreSQL is not this process's cost.
    started, db_started = time.process_time(), backend()
    for _ in range(args.n):
        step()
    web_ms = (time.process_time() - started) / args.n * 1000
    db_ms = (backend() - db_started) / args.n * 1000
    print(f"{args.scenario}: {web_ms:.2f} CPU ms per iteration here, {db_ms:.2f} in PostgreSQL")

    # Each statement's share of the backend's time (its position in the iteration).
    statements: list[str] = []
    spent: list[float] = []

    def record(execute, sql, params, many, context):
        index = len(statements)
        before = backend()
        try:
            return execute(sql, params, many, context)
        finally:
            if index >= len(spent):
                spent.append(0.0)
            spent[index] += backend() - before
            statements.append(sql)

    for _ in range(args.n):
        statements.clear()
        with connection.execute_wrapper(record):
            step()
    print(f"{len(statements)} statements per iteration (and BEGIN/COMMIT), PostgreSQL CPU ms:")
    for statement, seconds in zip(statements, spent, strict=False):
        print(f"  {seconds / args.n * 1000:6.3f}  {' '.join(statement.split())[:160]}")

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans, custom_plans, left(regexp_replace(statement, '\\s+', ' ', 'g'),"
            " 100) FROM pg_prepared_statements ORDER BY generic_plans + custom_plans DESC"
        )
        prepared = cursor.fetchall()
    print(f"{len(prepared)} statements prepared on the connection (generic plans, custom plans):")
    for generic, custom, statement in prepared[:10]:
        print(f"  {generic:6} {custom:6}  {statement}")

    profiler = cProfile.Profile(time.process_time)
    started = time.process_time()
    profiler.enable()
    for _ in range(args.n):
        step()
    profiler.disable()
    with_profiler = (time.process_time() - started) / args.n * 1000
    print(f"{args.scenario}: {with_profiler:.2f} CPU ms per iteration with the profiler on")
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).sort_stats(args.sort)
    stats.print_stats(args.top)
    if args.callees:
        stats.print_callees(args.callees)
    print(out.getvalue())


def _backend_cpu(connection: Any) -> Callable[[], float]:
    """The CPU seconds so far of this connection's PostgreSQL backend (same machine)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    schedstat = Path(f"/proc/{pid}/schedstat")

    def seconds() -> float:
        return int(schedstat.read_text().split()[0]) / 1e9  # time on a CPU, in ns

    return seconds


def _exists(db: Database) -> bool:
    with db.connect(autocommit=True, dbname="postgres") as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db.name])
        return found.fetchone() is not None


def _setup(scenario: str, n: int, app: Any) -> Callable[[], Any]:
    from django.db import connection
    from django.utils import timezone

    from accounts.models import ApiKey, User
    from accounts.services import key_issue
    from billing.services import topup
    from modems.models import Modem
    from orders.models import Application, ApplicationPrice

    stamp = time.time_ns()
    buyer = User.objects.create_user(email=f"b{stamp}@p.local", password=None)
    reseller = User.objects.create_user(email=f"r{stamp}@p.local", password=None, is_reseller=True)
    topup(user=buyer, amount=10**12)
    api = {"X-API-KEY": key_issue(user=buyer, kind=ApiKey.Kind.API).key}
    agent = {"X-AGENT-KEY": key_issue(user=reseller, kind=ApiKey.Kind.AGENT).key}
    # Without sender patterns, so that any SMS matches it.
    app_row = Application.objects.create(name="Profile", code=f"profile-{stamp}")
    ApplicationPrice.objects.create(application=app_row, operator="normal", price=1000)
    now = timezone.now()
    count = 1000 if scenario in ("heartbeat", "sync") else 2 * n + 100
    modems = [
        Modem(
            reseller=reseller,
            uid=f"p{stamp}-{i}",
            phone_number=f"62{stamp % 10**8:08d}{i:05d}",
            provider="telkomsel",
            signal=20,
            last_heartbeat_at=now,
        )
        for i in range(count)
    ]
    # Earlier runs' modems out of the orderable index, so that picks do not walk them.
    Modem.objects.update(disabled=True)
    Modem.objects.bulk_create(modems)  # the only online modems: orders land on them
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # as autovacuum would, given a minute
    stored = [(m.uid, m.phone_number, m.provider, m.signal, m.mapping) for m in modems]
    order = {"application_id": app_row.pk, "operator": "normal"}

    if scenario == "balance":
        return lambda: _call(app, "GET", "/api/v1/balance", api)
    if scenario == "services":
        return lambda: _call(app, "GET", "/api/v1/services", {})
    if scenario == "order_status":
        order_id = _call(app, "POST", "/api/v1/orders", api, order)["order_id"]
        return lambda: _call(app, "GET", f"/api/v1/orders/{order_id}", api)
    if scenario == "order_cycle":

        def cycle() -> None:
            created = _call(app, "POST", "/api/v1/orders", api, order)
            _call(app, "POST", f"/api/v1/orders/{created['order_id']}/cancel", api)

        return cycle
    if scenario == "heartbeat":
        body = heartbeat_body(stored)
        return lambda: _call(app, "POST", "/api/modem/heartbeat", agent, body)
    if scenario == "sync":
        body = sync_body(stored)
        return lambda: _call(app, "POST", "/api/modem/sync", agent, body)
    # sms: every modem gets a pending order first; each iteration completes one of them.
    by_phone = {m[1]: m for m in stored}
    pending = iter(
        [
            by_phone[_call(app, "POST", "/api/v1/orders", api, order)["phone_number"]]
            for _ in range(2 * n + 40)
        ]
    )
    codes = iter(range(100000, 999999))

    def sms() -> None:
        uid, phone = next(pending)[:2]
        body = sms_body(uid, phone, next(codes))
        answer = _call(app, "POST", "/api/modem/inbound-sms", agent, body)
        assert answer["matched"], answer

    return sms


if __name__ == "__main__":
    main()
