"""The result tables (printed and written to docs/PERFORMANCE.md) and the machine line."""

import os
import platform
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from bench.load import Measurement, percentile
from bench.time_to_otp import TimeToOtp

SPREAD_LIMIT = 1.5  # the issue: seeded and small ratios within 1.5x of each other
TWIN_LIMIT = 0.10  # the issue: an sms-activate scenario's ratio within 10% of its twin's


@dataclass
class Row:
    measurement: Measurement
    # The baseline measured around the scenario (in windows alternating with it).
    around: tuple[Measurement, Measurement]

    @property
    def ratio(self) -> float:
        """Throughput over the baseline's: the issue's measure."""
        baseline = sum(m.rate for m in self.around) / 2
        return self.measurement.rate / baseline if baseline else 0.0

    @property
    def cpu_ratio(self) -> float:
        """The same from CPU cost per iteration: steadier when neighbours are busy."""
        baseline = sum(m.cpu_rate for m in self.around) / 2
        return self.measurement.cpu_rate / baseline if baseline else 0.0

    @property
    def passed(self) -> bool:
        target = self.measurement.scenario.target
        return not self.flagged and (target is None or self.ratio >= target)

    @property
    def flagged(self) -> bool:
        return self.measurement.errors > 0 or self.measurement.exhausted


@dataclass
class DatabaseRun:
    name: str  # "small" or "seeded"
    sizes: str
    seeding: str
    baselines: list[Measurement]
    rows: list[Row] = field(default_factory=list)
    at_leasts: list["AtLeast"] = field(default_factory=list)
    time_to_otp: TimeToOtp | None = None

    def row(self, key: str) -> Row | None:
        return next((r for r in self.rows if r.measurement.scenario.key == key), None)


@dataclass(frozen=True)
class Spread:
    """A scenario's ratio on the seeded database over its ratio on the small one."""

    ratio: float
    cpu_ratio: float
    limit: float = SPREAD_LIMIT

    @property
    def holds(self) -> bool:
        return 1 / self.limit <= self.ratio <= self.limit


def spread(seeded: Row, small: DatabaseRun) -> Spread | None:
    scenario = seeded.measurement.scenario
    before = small.row(scenario.key)
    if before is None or not before.ratio or not before.cpu_ratio:
        return None
    return Spread(
        seeded.ratio / before.ratio, seeded.cpu_ratio / before.cpu_ratio, scenario.spread_limit
    )


def spreads_hold(runs: list[DatabaseRun]) -> bool:
    small = next((r for r in runs if r.name == "small"), None)
    seeded = next((r for r in runs if r.name == "seeded"), None)
    if small is None or seeded is None:
        return True
    values = [spread(row, small) for row in seeded.rows]
    return all(v is None or v.holds for v in values)


@dataclass(frozen=True)
class TwinRatio:
    """An sms-activate scenario's ratio over its REST twin's, on the same database."""

    scenario: str
    twin: str
    ratio: float
    cpu_ratio: float

    @property
    def holds(self) -> bool:
        return abs(self.ratio - 1) <= TWIN_LIMIT


def twin_ratios(run: DatabaseRun) -> list[TwinRatio]:
    """One per measured scenario whose twin was measured too."""
    found = []
    for row in run.rows:
        scenario = row.measurement.scenario
        twin = run.row(scenario.twin) if scenario.twin else None
        if twin is not None and twin.ratio and twin.cpu_ratio:
            found.append(
                TwinRatio(
                    scenario.key,
                    twin.measurement.scenario.key,
                    row.ratio / twin.ratio,
                    row.cpu_ratio / twin.cpu_ratio,
                )
            )
    return found


def twins_hold(runs: list[DatabaseRun]) -> bool:
    return all(t.holds for run in runs for t in twin_ratios(run))


@dataclass(frozen=True)
class AtLeast:
    """A scenario's throughput against another's that it must reach (one key at 16
    connections against 3: more concurrency must not give less), the two measured in
    windows alternating with each other so that the machine's drift moves both alike."""

    scenario: Measurement
    other: Measurement

    @property
    def holds(self) -> bool:
        errors = self.scenario.errors or self.other.errors
        return not errors and self.scenario.rate >= self.other.rate


def at_leasts_hold(runs: list[DatabaseRun]) -> bool:
    return all(a.holds for run in runs for a in run.at_leasts)


def own_baselines(run: DatabaseRun) -> list[str]:
    """The rows whose ratio divides by a baseline other than the table's first line."""
    lines = []
    for row in run.rows:
        scenario = row.measurement.scenario
        if scenario.baseline != "balance":
            around = row.around[0]
            lines.append(
                f"- {scenario.title}: ratio over {around.scenario.title} at the same "
                f"connections, {around.rate:.0f} req/s (p50 {around.percentile(50):.1f} ms)"
            )
    return lines


def _package(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def machine(postgres: str) -> str:
    return (
        f"{cpu_model()}, {os.cpu_count()} cores, {memory_gib():.0f} GiB; "
        f"PostgreSQL {postgres}; Python {platform.python_version()}; "
        f"Django {_package('Django')}; DRF {_package('djangorestframework')}; "
        f"gunicorn {_package('gunicorn')}; aiohttp {_package('aiohttp')}"
    )


def _errors(row: Row) -> str:
    m = row.measurement
    text = str(m.errors)
    if m.exhausted:
        text += " (ran out of pending orders: raise --sms-orders)"
    return text


def _verdict(row: Row) -> str:
    if row.flagged:
        return "**FAIL (errors)**"
    return "pass" if row.passed else "**FAIL**"


def table(run: DatabaseRun, small: DatabaseRun | None = None) -> list[str]:
    """One markdown table; with `small`, the seeded-vs-small columns too."""
    head = (
        "| Scenario | req/s | p50 ms | p99 ms | errors | CPU ms | others' CPU "
        "| ratio | CPU ratio | target | result |"
    )
    rule = "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    if small:
        head += " seeded / small (CPU) | within 1.5x (uncached catalogue 1.2x) |"
        rule += "---:|---|"
    lines = [head, rule]
    base = run.baselines
    if base:
        rates = [m.rate for m in base]
        pooled = [ms for m in base for ms in m.latencies_ms]
        lines.append(
            f"| {base[0].scenario.title} | {sum(rates) / len(rates):.0f} | "
            f"{percentile(pooled, 50):.1f} | {percentile(pooled, 99):.1f} | "
            f"{sum(m.errors for m in base)} | {sum(m.cpu_ms for m in base) / len(base):.2f} | "
            f"{sum(m.others_cpu for m in base) / len(base):.0%} | 1.00 | 1.00 | | "
            f"{len(base)} measurements, {min(rates):.0f}-{max(rates):.0f} req/s |"
            + (" | |" if small else "")
        )
    for row in run.rows:
        m = row.measurement
        target = "" if m.scenario.target is None else f">= {m.scenario.target:.2f}"
        line = (
            f"| {m.scenario.title} | {m.rate:.1f} | {m.percentile(50):.1f} | "
            f"{m.percentile(99):.1f} | {_errors(row)} | {m.cpu_ms:.2f} | {m.others_cpu:.0%} | "
            f"{row.ratio:.3f} | {row.cpu_ratio:.3f} | {target} | {_verdict(row)} |"
        )
        if small:
            value = spread(row, small)
            if value is None:
                line += " | |"
            else:
                verdict = "pass" if value.holds else "**FAIL**"
                line += f" {value.ratio:.2f} ({value.cpu_ratio:.2f}) | {verdict} |"
        lines.append(line)
    return lines


def error_notes(run: DatabaseRun) -> list[str]:
    notes = []
    for m in [*run.baselines, *(r.measurement for r in run.rows)]:
        for kind, count in m.error_kinds.most_common(3):
            notes.append(f"- {m.scenario.title}: {count} x `{kind}`")
    return notes


def section(run: DatabaseRun, small: DatabaseRun | None = None) -> list[str]:
    title = "Small database" if run.name == "small" else "Seeded database"
    lines = [
        f"## {title}",
        "",
        f"{run.sizes}. {run.seeding}",
        "",
        *table(run, small),
    ]
    twins = twin_ratios(run)
    if twins:
        lines += [
            "",
            f"sms-activate against REST (ratio over the twin's ratio, CPU ratio's in "
            f"brackets; the issue: within {TWIN_LIMIT:.0%}):",
            "",
            *(
                f"- {t.scenario}/{t.twin} = {t.ratio:.2f} ({t.cpu_ratio:.2f}), "
                f"within {TWIN_LIMIT:.0%}: {'yes' if t.holds else '**no**'}"
                for t in twins
            ),
        ]
    own = own_baselines(run)
    if own:
        lines += ["", "Scenarios with a baseline of their own:", "", *own]
    for check in run.at_leasts:
        mine, other = check.scenario, check.other
        lines += [
            "",
            f"{mine.scenario.title}: {mine.rate:.1f}/s against {other.rate:.1f}/s "
            f"for {other.scenario.title}, measured in alternating windows; at least as "
            f"many: {'yes' if check.holds else '**no**'}",
        ]
    if run.time_to_otp is not None:
        lines += ["", *run.time_to_otp.markdown()]
    notes = error_notes(run)
    if notes:
        lines += ["", "Errors seen (most frequent first):", "", *notes]
    return lines
