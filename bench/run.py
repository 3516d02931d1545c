"""`make bench`: seed a fresh PostgreSQL database, serve the site under gunicorn with
production settings, drive it with an asyncio load generator and write the ratios of each
scenario's throughput to the baseline's to docs/PERFORMANCE.md.

Without --small or --seeded it runs both, one after the other, on the same database name
(dropped and created again in between). `--help` lists the flags; see docs/PERFORMANCE.md
for what each scenario does.
"""

import argparse
import importlib.metadata
import os
import shlex
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import psycopg

from bench.db import Database
from bench.project import ROOT, CommandFailed, run

REQUIREMENTS = ROOT / "requirements-bench.txt"
STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f}s] {message}", flush=True)


def ensure_requirements() -> None:
    """Install the pinned load-generator packages into this venv when one is missing or at
    another version."""
    stale = []
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, _, pinned = line.partition("==")
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = None
        if installed != pinned:
            stale.append(line)
    if stale:
        log(f"installing {', '.join(stale)} from {REQUIREMENTS.name}")
        run([sys.executable, "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)])


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Seed PostgreSQL, serve with gunicorn, measure throughput ratios.",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--small", action="store_true", help="only the small database (no history)")
    which.add_argument(
        "--seeded", action="store_true", help="only the seeded database (with history)"
    )
    sizes = parser.add_argument_group("seeded database sizes")
    sizes.add_argument("--resellers", type=int, default=1000)
    sizes.add_argument("--modems", type=int, default=100_000)
    sizes.add_argument("--apps", type=int, default=50, help="applications (both databases)")
    sizes.add_argument("--orders", type=int, default=1_000_000, help="historical orders")
    sizes.add_argument("--buyers", type=int, default=10_000)
    sizes.add_argument(
        "--scale",
        type=int,
        default=1,
        help="multiply the seeded database's resellers, modems, orders and buyers (10: "
        "10,000 resellers, 1,000,000 modems, 10,000,000 orders); the report then goes to "
        "docs/PERFORMANCE-SCALE<n>.md unless --output says otherwise",
    )
    load = parser.add_argument_group("load")
    load.add_argument("--duration", type=float, default=10.0, help="seconds measured")
    load.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    load.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="windows the measured seconds are cut into, alternating with the baseline's",
    )
    load.add_argument("--connections", type=int, default=16, help="concurrent connections")
    load.add_argument(
        "--scenarios",
        default="",
        help="comma-separated subset (services, order_status, activation_status, order_cycle, "
        "activation_cycle, heartbeat, sync, inbound_sms); the baseline always runs",
    )
    load.add_argument(
        "--sms-orders",
        type=int,
        default=20_000,
        help="pending orders seeded for the inbound-SMS scenario (one per request)",
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="also EXPLAIN ANALYZE every query of each scenario on the last database of the "
        "run (the seeded one by default), before the load; see --explain-output",
    )
    parser.add_argument("--keep", action="store_true", help="keep the last database")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when a target, a seeded-vs-small spread, an sms-activate twin, the one-key "
        "16-against-3 check or the time to OTP fails (errors always do)",
    )
    parser.add_argument(
        "--db-name",
        default="zerotp_bench",
        help="the database on 127.0.0.1:5432 (user postgres) that the bench drops and creates",
    )
    parser.add_argument(
        "--output", type=Path, help="where the tables go (default docs/PERFORMANCE.md)"
    )
    parser.add_argument(
        "--explain-output",
        type=Path,
        help="where the plans go (default docs/PERFORMANCE-EXPLAIN.md)",
    )
    args = parser.parse_args(argv)
    if args.scale < 1:
        parser.error("--scale must be 1 or more")
    for size in ("resellers", "modems", "orders", "buyers"):
        setattr(args, size, getattr(args, size) * args.scale)
    name = "PERFORMANCE" if args.scale == 1 else f"PERFORMANCE-SCALE{args.scale}"
    args.output = args.output or ROOT / "docs" / f"{name}.md"
    args.explain_output = args.explain_output or ROOT / "docs" / f"{name}-EXPLAIN.md"
    return args


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks: server, database


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if Path(sys.prefix).resolve() != (ROOT / ".venv").resolve():
        print("Run it with the project's venv: .venv/bin/python -m bench.run (make bench).")
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    ensure_requirements()
    from bench.suite import Suite  # imports aiohttp, installed just above

    db = Database(args.db_name)
    try:
        postgres = db.server_version()
    except psycopg.OperationalError as exc:
        log(f"PostgreSQL does not answer on {db.host}:{db.port} as {db.user}: {exc}")
        return 2
    log(f"PostgreSQL {postgres} on {db.host}:{db.port}; bench database {db.name}")
    command = shlex.join([".venv/bin/python", "-m", "bench.run", *argv])
    try:
        with tempfile.TemporaryDirectory(prefix="zerotp-bench-") as workdir:
            return Suite(args, db, Path(workdir), command, log).run()
    except CommandFailed as exc:
        log(f"failed: {exc}")
        return 1
    finally:
        if args.keep:
            log(f"kept the database: DATABASE_URL={db.url}")
        else:
            try:
                db.drop()
                log(f"dropped {db.name}")
            except psycopg.Error as exc:
                log(f"could not drop {db.name}: {exc}")


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
