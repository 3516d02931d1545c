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

    step = _setup(args.scenario, args.n, app)
    for _ in range(20):
        step()
    # CPU time, not wall time: waiting for PostgreSQL is not this process's cost.
    profiler = cProfile.Profile(time.process_time)
    statements: list[str] = []

    def record(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        step()
    started = time.process_time()
    profiler.enable()
    for _ in range(args.n):
        step()
    profiler.disable()
    spent = (time.process_time() - started) / args.n * 1000
    print(f"{args.scenario}: {spent:.2f} CPU ms per iteration (with the profiler on)")
    started = time.process_time()
    for _ in range(args.n):
        step()
    print(f"{args.scenario}: {(time.process_time() - started) / args.n * 1000:.2f} CPU ms without")
    print(f"{len(statements)} statements per iteration (and BEGIN/COMMIT):")
    for statement in statements:
        print("  ", statement[:200])
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).sort_stats(args.sort)
    stats.print_stats(args.top)
    if args.callees:
        stats.print_callees(args.callees)
    print(out.getvalue())


def _exists(db: Database) -> bool:
    with db.connect(autocommit=True, dbname="postgres") as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db.name])
        return found.fetchone() is not None


def _setup(scenario: str, n: int, app: Any) -> Callable[[], Any]:
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
    Modem.objects.update(last_heartbeat_at=None)  # earlier runs' modems: offline
    Modem.objects.bulk_create(modems)  # the only online modems: orders land on them
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
