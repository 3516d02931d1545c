"""One bench run: for each database, create, migrate, seed, check the ledger, optionally
EXPLAIN, serve and measure; then write docs/PERFORMANCE.md."""

import argparse
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import load, report, time_to_otp
from bench.cpu import CpuMeter, usage
from bench.db import Database
from bench.load import Measurement
from bench.project import ROOT, CommandFailed, manage, run
from bench.report import AtLeast, DatabaseRun, Row
from bench.seed import (
    BATCH,
    PENDING_PER_BUYER,
    Fixture,
    SeedReport,
    Sizes,
    describe,
    ledger_check_code,
    seed,
)
from bench.server import WORKERS, Server, gunicorn, production_env

# What the figures rest on; kept here so that every run writes it next to them.
HOW_THE_HOT_PATHS_RUN = [
    "## How the hot paths run",
    "",
    "Profiled in-process with `python -m bench.profile <scenario>` (CPU per iteration, "
    "statements, cProfile), then measured here.",
    "",
    "- **Heartbeat**: one `UPDATE ... FROM json_to_recordset(...)` for the whole batch, "
    "after one advisory lock per reseller (a reseller's batches queue; different "
    "resellers' run side by side) instead of row-locking a thousand modems. "
    "`last_heartbeat_at` is in no index and the modem table keeps 30% of each page free, "
    "so PostgreSQL updates the rows in place (HOT) and writes no index entry. Items are "
    "checked in one pass of type checks; the detailed per-item check only runs on a bad "
    "batch.",
    "- **Sync**: one unlocked read of `(uid, fields)` tuples; a batch that changes nothing "
    "writes nothing.",
    "- **Order create**: on PostgreSQL two statements sent together (psycopg's pipeline "
    "mode: one round trip, one transaction the server commits as soon as both have run): "
    "the first locks the buyer's wallet, the second, whose snapshot is therefore taken "
    "once the lock is held and sees every order of the buyer that moved money, passes "
    "the order's checks (`orders/statements/placing.CHECKS`: price, enabled, limit, scan "
    "guard, balance), puts the order on the first free modem (`FOR UPDATE SKIP LOCKED`, "
    "`ON CONFLICT DO NOTHING`) and books the hold through data-modifying CTEs whose legs "
    "run in lock order. One buyer's orders thus queue on the wallet for one statement "
    "each, never across a round trip to the client (the one-key scenarios). Anything it "
    "cannot decide alone (an error, a race) writes nothing and goes to the transaction "
    "that SQLite always uses (and PostgreSQL with `ONE_STATEMENT_WRITES=false`): the "
    "wallet lock, then one query for the same context and checks, then the order and the "
    "hold; when other transactions hold every free modem it picks, it gives up its locks "
    "and pauses before trying again. The pick walks the orderable index, which keeps to "
    "modems marked online (heartbeats set the mark, a job clears it a minute after they "
    "stop), so it never steps over modems whose agent went silent.",
    "- **Cancel**: one statement marks the order cancelled and books the refund; it checks "
    "its own ledger outcome and raises if the refund could not be booked, so it needs no "
    "transaction around it and holds the escrow row for that statement only.",
    "- **Inbound SMS**: modem lock, duplicate check, the line's open orders (with patterns "
    "and callback settings), SMS insert, completion, capture and message: written SQL, "
    "the capture one statement.",
    "- **Order status**: one written query joins the order, its messages and their SMS.",
    "- **Catalogue**: the stock is read from counts that database triggers keep as modems "
    "and orders change, rendered from the pick's own free-modem rule "
    "(`orders/statements/stock_counts.py`): one query over a few hundred rows, whatever "
    "the modems and the history. One cached copy serves every worker for two seconds; "
    "when it is due, one worker computes the next while the others answer with the copy.",
    "- **Everywhere on PostgreSQL**: parameters are bound by the server, and the hot "
    "paths' hand-written statements (order, cancel, SMS, ledger movements, heartbeat, "
    "order status) are prepared on a connection's first use (`zerotp/db.py`; Django "
    "leaves psycopg's prepared statements off), so PostgreSQL stops parsing them and, "
    "once a plan for all parameter values estimates as well as the plans for the values "
    "at hand, planning them. The order statement writes the operator and the online "
    "window into its text for that reason; `tests/test_query_budgets.py` checks that the "
    "order and cancel statements run on such a plan. Planning the order statement anew "
    "cost more than running it. The ORM's statements are not prepared: a plan for all "
    "values searches long IN lists one by one (the sync's read of 1,000 uids took 30 ms "
    "instead of 0.5). Statements whose generic plan could go wrong keep their probes per "
    "row (`OFFSET 0` in the free-modem `NOT EXISTS`). "
    "Balances update in place (ledger accounts at fillfactor 50), and indexes nothing "
    "reads are gone from the order, SMS and ledger-entry tables.",
    "- **Query budgets** (`tests/test_query_budgets.py`): heartbeat and sync cost the same "
    "for 1 and 1,000 modems, the catalogue the same for 5 and 50 applications; order "
    "create, status, cancel and inbound SMS have exact budgets per database.",
    "",
]

BENCH_BUYERS_PER_CONNECTION = 4
MIN_BENCH_RESELLERS = 32
STATUS_ORDERS = 1000
TIME_TO_OTP = "time_to_otp"  # selectable with --scenarios, like a scenario


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


class Suite:
    def __init__(
        self,
        args: argparse.Namespace,
        db: Database,
        workdir: Path,
        command: str,
        log: Callable[[str], None],
    ) -> None:
        self.args, self.db, self.workdir, self.command, self.log = args, db, workdir, command, log
        self.selected = {s.strip() for s in args.scenarios.split(",") if s.strip()}

    # --- sizes -----------------------------------------------------------------------------
    def sizes(self, name: str) -> Sizes:
        a = self.args
        bench_buyers = max(64, BENCH_BUYERS_PER_CONNECTION * a.connections)
        bench_resellers = max(MIN_BENCH_RESELLERS, a.connections)
        common = {
            "apps": a.apps,
            "bench_buyers": bench_buyers,
            "bench_resellers": bench_resellers,
            "sms_orders": a.sms_orders,
            "status_orders": STATUS_ORDERS,
        }
        if name == "small":
            return Sizes(
                buyers=bench_buyers + -(-a.sms_orders // PENDING_PER_BUYER),
                resellers=bench_resellers,
                modems=bench_resellers * BATCH,
                orders=0,
                **common,
            )
        return Sizes(
            buyers=a.buyers, resellers=a.resellers, modems=a.modems, orders=a.orders, **common
        )

    @staticmethod
    def describe_sizes(sizes: Sizes) -> str:
        return (
            f"{sizes.buyers:,} buyers, {sizes.resellers:,} resellers, {sizes.modems:,} modems, "
            f"{sizes.apps} applications, {sizes.orders:,} historical orders; the bench's own "
            f"{sizes.sms_orders:,} pending orders (inbound SMS, {PENDING_PER_BUYER} per buyer) "
            f"and {sizes.status_orders:,} finished ones (order status)"
        )

    # --- the run ---------------------------------------------------------------------------
    def run(self) -> int:
        names = ["small"] if self.args.small else ["seeded"] if self.args.seeded else []
        names = names or ["small", "seeded"]
        known = {s.key for s in load.scenarios(Fixture.empty())} | {TIME_TO_OTP}
        if self.selected - known:
            self.log(f"unknown scenarios {sorted(self.selected - known)}; known: {sorted(known)}")
            return 2
        for name in names:
            problems = self.sizes(name).problems()
            if problems:
                self.log(f"bad sizes for the {name} database: {'; '.join(problems)}")
                return 2
        runs: list[DatabaseRun] = []
        explained = ""
        for name in names:
            db_run, findings = self.database(name, explain=self.args.explain and name == names[-1])
            runs.append(db_run)
            explained = findings or explained
        self.write(runs, explained)
        rows = [row for db_run in runs for row in db_run.rows]
        if any(row.flagged for row in rows):
            return 1
        held = (
            report.spreads_hold(runs)
            and report.twins_hold(runs)
            and report.at_leasts_hold(runs)
            and all(r.time_to_otp is None or r.time_to_otp.passed for r in runs)
        )
        if self.args.strict and not (all(row.passed for row in rows) and held):
            return 1
        return 0

    def database(self, name: str, *, explain: bool) -> tuple[DatabaseRun, str]:
        sizes = self.sizes(name)
        self.log(f"{name} database: {self.describe_sizes(sizes)}")
        self.db.create()
        env = production_env(self.db.url)
        manage("migrate", "--noinput", "-v0", env=env)
        manage("seed_demo", env=env)
        self.log("migrated, demo catalogue loaded; seeding with COPY")
        seeded = seed(self.db, sizes, self.log)
        self.log(f"seeded: {describe(seeded.rows)}")
        try:
            checked = manage("shell", "-c", ledger_check_code(), env=env)
        except CommandFailed as exc:
            raise CommandFailed(f"the seeded ledger is inconsistent: {exc}") from None
        self.log(f"ledger_differences(): {checked.strip().splitlines()[-1]}")
        fixture_path = self.workdir / f"{name}.json"
        seeded.fixture.save(fixture_path)
        findings = self.explain(name, env, fixture_path) if explain else ""
        self.db.settle()
        db_run = self.measure(name, sizes, seeded, env)
        return db_run, findings

    def measure(
        self, name: str, sizes: Sizes, seeded: SeedReport, env: dict[str, str]
    ) -> DatabaseRun:
        scenarios = {s.key: s for s in load.scenarios(seeded.fixture)}
        baselines = {s.baseline for s in scenarios.values()}
        chosen = [
            s
            for s in scenarios.values()
            if s.key not in baselines and (not self.selected or s.key in self.selected)
        ]
        total = sum(seeded.seconds.values())
        steps = "; ".join(f"{step} {seconds:.1f} s" for step, seconds in seeded.seconds.items())
        seeding = f"Seeded with COPY in {total:.1f} s ({steps})."
        db_run = DatabaseRun(name, self.describe_sizes(sizes), seeding, [])
        # The scenarios that need settings of their own (the uncached catalogue) get a
        # server of their own, after the others; the time to OTP runs last on the first.
        groups: dict[tuple[tuple[str, str], ...], list[load.Scenario]] = {}
        for scenario in chosen:
            groups.setdefault(tuple(sorted(scenario.server_env.items())), []).append(scenario)
        if not groups and self.wants(TIME_TO_OTP):
            groups[()] = []
        for index, (overrides, group) in enumerate(sorted(groups.items())):
            log_name = f"gunicorn-{name}{'-' + str(index) if index else ''}.log"
            with gunicorn(env | dict(overrides), self.workdir / log_name) as server:
                shown_env = ", ".join(f"{k}={v}" for k, v in overrides) or "the bench's settings"
                self.log(f"gunicorn answers on {server.url} ({shown_env}); measuring")
                self.measure_on(server, scenarios, group, db_run)
                if not overrides and self.wants(TIME_TO_OTP):
                    db_run.time_to_otp = time_to_otp.measure(
                        server.url,
                        seeded.fixture,
                        env,
                        self.workdir,
                        self.log,
                        connections=self.args.connections,
                    )
                    self.db.settle()
        return db_run

    def wants(self, key: str) -> bool:
        return not self.selected or key in self.selected

    def measure_on(
        self,
        server: Server,
        scenarios: dict[str, load.Scenario],
        chosen: list[load.Scenario],
        db_run: DatabaseRun,
    ) -> None:
        a = self.args
        meter = CpuMeter(self.db, os.getpid(), server.pid)
        warmed: set[str] = set()

        def measure(scenario: load.Scenario, duration: float) -> load.Measurement:
            # The full warm-up the first time a scenario runs, a short one after.
            warmup = a.warmup if scenario.key not in warmed else min(a.warmup, 0.5)
            warmed.add(scenario.key)
            before = meter.snapshot()
            m = load.measure(
                scenario,
                server.url,
                connections=scenario.connections or a.connections,
                warmup=warmup,
                duration=duration,
            )
            used = usage(before, meter.snapshot())
            m.others_cpu = used.others_share
            each = 1000 / m.iterations if m.iterations else 0.0
            m.cpu_ms = used.ours_seconds * each
            split = ", ".join(
                f"{role} {seconds * each:.2f}" for role, seconds in sorted(used.by_role.items())
            )
            self.log(
                f"  {scenario.title}: {m.rate:.1f}/s, p50 {m.percentile(50):.1f} ms, "
                f"p99 {m.percentile(99):.1f} ms, {m.errors} errors, "
                f"{m.cpu_ms:.2f} CPU ms each ({split}), others' CPU {m.others_cpu:.0%}"
            )
            return m

        def alternating(first: load.Scenario, second: load.Scenario) -> tuple[Measurement, ...]:
            """The two in alternating windows, so that the machine's speed, which drifts by
            a third over tens of seconds here, moves both figures alike."""
            rounds: tuple[list[Measurement], list[Measurement]] = ([], [])
            for _ in range(a.rounds):
                rounds[0].append(measure(first, a.duration / a.rounds))
                rounds[1].append(measure(second, a.duration / a.rounds))
            self.db.settle()
            return load.merged(rounds[0]), load.merged(rounds[1])

        for scenario in chosen:
            # Against its own baseline, at its own connections (the one-key scenarios: the
            # same key's balance, at 3 or 16).
            baseline = scenarios[scenario.baseline].at(scenario.connections)
            around, measured = alternating(baseline, scenario)
            self.log(
                f"  => {scenario.title}: {measured.rate:.1f}/s against the baseline's "
                f"{around.rate:.1f}/s, {measured.cpu_ms:.2f} against {around.cpu_ms:.2f} "
                "CPU ms"
            )
            if baseline.key == "balance" and not scenario.connections and not scenario.server_env:
                db_run.baselines.append(around)
            db_run.rows.append(Row(measured, (around, around)))
        for scenario in chosen:
            other = next((s for s in chosen if s.key == scenario.at_least), None)
            if other is not None:
                measured_other, measured = alternating(other, scenario)
                db_run.at_leasts.append(AtLeast(measured, measured_other))

    def explain(self, name: str, env: dict[str, str], fixture_path: Path) -> str:
        self.log(f"EXPLAIN ANALYZE of every query of each scenario on the {name} database")
        header = (
            f"# EXPLAIN ANALYZE of the hot paths ({name} database)\n\n"
            f"Written by `{self.command}` on {self.now()}: each scenario's "
            "requests ran once through the real views (test client) in a transaction that "
            "was rolled back, and every SELECT/UPDATE they issued was explained. Sequential "
            "scans on tables over 10,000 rows are listed under Findings."
        )
        out = manage(
            "shell",
            "-c",
            "from bench.explain import main; main()",
            env={
                **env,
                "BENCH_FIXTURE": str(fixture_path),
                "BENCH_EXPLAIN": str(self.args.explain_output),
                "BENCH_EXPLAIN_HEADER": header,
            },
        )
        findings = "\n".join(
            line for line in out.splitlines() if line and "imported automatically" not in line
        )
        print(findings, flush=True)
        self.log(f"wrote {shown(self.args.explain_output)}")
        return findings

    # --- the report -----------------------------------------------------------------------
    @staticmethod
    def now() -> str:
        return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")

    def write(self, runs: list[DatabaseRun], explained: str) -> None:
        a = self.args
        small = next((r for r in runs if r.name == "small"), None)
        sections = [report.section(r, small if r.name == "seeded" else None) for r in runs]
        shown_settings = ", ".join(
            f"{name}={value}"
            for name, value in production_env(self.db.url).items()
            if name not in ("DATABASE_URL", "SECRET_KEY")
        )
        lines = [
            "# Performance",
            "",
            "Written by `make bench` (`python -m bench.run`); run it again rather than "
            "editing this file.",
            "",
            f"- Command: `{self.command}`",
            f"- Date: {self.now()}",
            f"- Machine: {report.machine(self.db.server_version())}",
            f"- Server: gunicorn `zerotp.wsgi -k sync -w {WORKERS}` on 127.0.0.1 with "
            f"{shown_settings} (modems stay online: the seed stamps their heartbeat once)",
            f"- Load: aiohttp, {a.connections} connections from the same machine; per "
            f"scenario {a.duration:g} s measured in {a.rounds} windows, each after the "
            f"baseline's window of the same length ({a.warmup:g} s warm-up the first time a "
            "scenario runs, 0.5 s after)",
            "",
            "Absolute figures on a shared 2-core machine are noise; the ratios are the result. "
            "**ratio** divides a scenario's throughput by the baseline's "
            "(`GET /api/v1/balance`: authentication plus one read), measured in windows "
            "alternating with the scenario's, so that the machine's speed, which drifts by a "
            "third over tens of seconds here, moves both figures alike; the targets and the "
            "pass/fail marks apply to it. Throughput counts successful "
            "iterations completed in the measured window; p50 and p99 are over the same "
            "iterations. Any non-2xx answer, or a 2xx whose body shows the work was not done, "
            "is an error, and a scenario with errors fails whatever its ratio. The "
            "sms-activate scenarios are also compared with their REST twins: their ratio over "
            "the twin's, which the issue wants within 10% of 1.",
            "",
            "**CPU ms** is the CPU time the client, gunicorn and the bench database's "
            "PostgreSQL backends spent per iteration; **CPU ratio** is the baseline's CPU ms "
            "over the scenario's, i.e. the throughput ratio the machine would give if the bench "
            "had it to itself and every scenario were CPU-bound. **Others' CPU** is the share "
            "of the whole machine that other processes used during the measurement. When it is "
            "high, a neighbour was busy: trust the CPU ratio over the throughput ratio. Before "
            "the first scenario and between scenarios the database is VACUUMed and "
            "CHECKPOINTed, so that one scenario's dead rows do not slow the next and the "
            "seed's writes do not go to disk during the measurements.",
            "",
        ]
        for db_section in sections:
            lines += [*db_section, ""]
        lines += [
            "## Scenarios",
            "",
            "- `GET /api/v1/balance`: the baseline; bench buyers' API keys in turn.",
            "- `GET /api/v1/services`: the public catalogue with stock per operator.",
            "- `GET /api/v1/services`, uncached: the same on a server of its own with "
            "`CATALOGUE_CACHE_SECONDS=0`, so every request computes the stock; its seeded / "
            "small spread must stay within 1.2x (the history must cost it nothing).",
            "- `GET /api/v1/orders/{id}`: a finished order with one SMS, the buyer's own.",
            "- `GET /stubs/handler_api.php` getStatus: the same orders through the "
            "sms-activate protocol (`?api_key=...&action=getStatus&id=...`); the answer must "
            "be `STATUS_OK:<code>`.",
            "- `POST /api/v1/orders` + cancel: one iteration is both (201, then 200 "
            "cancelled); ratio in iterations per second. The application is one the seed "
            "generates, whose normal pool (the one ordered) is its cheapest.",
            "- getNumber + setStatus 8: the same through the sms-activate protocol, by the "
            "application's service code (`ACCESS_NUMBER:<id>:<phone>`, then "
            "`ACCESS_CANCEL`); getNumber takes the cheapest pool with stock, the same normal "
            "pool.",
            "- One API key: the order + cancel above with every connection using the first "
            "bench buyer's key (one developer's bot), at 3 and at 16 connections, each against "
            "`GET /api/v1/balance` with the same key at the same connections; then the two in "
            "windows alternating with each other, as 16 connections must give at least the "
            "throughput of 3.",
            "- heartbeat: 1,000 modems of one reseller per request; each connection has its own "
            "reseller, so concurrent batches do not lock the same rows.",
            "- sync: the same 1,000 modems exactly as stored; the answer must say 0 created, "
            "0 updated.",
            "- inbound-sms: each request completes one seeded pending order on its own modem "
            "(an application without sender patterns); the answer must say matched.",
            "",
            *HOW_THE_HOT_PATHS_RUN,
        ]
        if explained:
            lines += [
                "## EXPLAIN findings",
                "",
                f"Details in `{shown(a.explain_output)}`.",
                "",
                *[f"- {line}" for line in explained.splitlines()],
                "",
            ]
        lines += self.otp_section()
        a.output.parent.mkdir(parents=True, exist_ok=True)
        a.output.write_text("\n".join(lines).rstrip() + "\n")
        for db_run in runs:
            print(
                "\n" + "\n".join(report.section(db_run, small if db_run.name == "seeded" else None))
            )
        self.log(f"wrote {shown(a.output)}")

    def otp_section(self) -> list[str]:
        if not (ROOT / "bench" / "otp.py").exists():
            return []
        self.log("running python -m bench.otp")
        try:
            out = run([sys.executable, "-m", "bench.otp"]).strip()
        except CommandFailed as exc:
            out = f"## OTP extraction\n\n`python -m bench.otp` failed:\n\n```\n{exc}\n```"
        if not out.startswith("#"):
            out = "## OTP extraction (`python -m bench.otp`)\n\n" + out
        print("\n" + out, flush=True)
        return [out, ""]
