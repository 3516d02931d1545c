"""How much of the machine other processes took during a measurement.

On a shared 2-core machine a neighbour's test suite moves every figure. The bench counts
the CPU time of its own processes (itself, gunicorn's process group, the PostgreSQL
backends connected to the bench database) against the machine's busy time from
/proc/stat; what is left was someone else's, and the report shows it next to each figure.
"""

import os
from dataclasses import dataclass
from pathlib import Path

from bench.db import Database


def _machine() -> tuple[int, int]:
    """Busy and total jiffies of all CPUs since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = fields[3] + fields[4]  # idle and iowait
    return sum(fields) - idle, sum(fields)


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()  # the fields after "(comm)", from state on


def _jiffies(fields: list[str]) -> int:
    return int(fields[11]) + int(fields[12])  # utime and stime


@dataclass(frozen=True)
class Snapshot:
    busy: int
    total: int
    ours: dict[int, int]  # pid -> CPU jiffies so far
    roles: dict[int, str]  # pid -> client, web or db


class CpuMeter:
    def __init__(self, db: Database, own_pid: int, server_group: int) -> None:
        self.db, self.own_pid, self.server_group = db, own_pid, server_group

    def _our_pids(self) -> dict[int, str]:
        """Our processes and their roles: the load generator, the web server, the database."""
        pids = {self.own_pid: "client"}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                fields = _stat(int(entry.name))
                if fields is not None and int(fields[2]) == self.server_group:
                    pids[int(entry.name)] = "web"
        with self.db.connect(autocommit=True, dbname="postgres") as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", [self.db.name]
            ).fetchall()
        return pids | {int(row[0]): "db" for row in rows}

    def snapshot(self) -> Snapshot:
        ours, roles = {}, {}
        for pid, role in self._our_pids().items():
            fields = _stat(pid)
            if fields is not None:
                ours[pid], roles[pid] = _jiffies(fields), role
        busy, total = _machine()
        return Snapshot(busy, total, ours, roles)


@dataclass(frozen=True)
class Usage:
    ours_seconds: float  # CPU time of the bench's own processes between two snapshots
    others_share: float  # the share of the whole machine (all cores) others used, 0 to 1
    by_role: dict[str, float]  # ours_seconds split: client, web, db


def usage(start: Snapshot, end: Snapshot) -> Usage:
    """What happened between two snapshots. A process that appeared in between counts in
    full; one that ended in between is lost (gunicorn's workers and their database
    connections live through a measurement)."""
    tick = os.sysconf("SC_CLK_TCK")
    by_role: dict[str, float] = {}
    for pid, jiffies in end.ours.items():
        role = end.roles[pid]
        by_role[role] = by_role.get(role, 0.0) + (jiffies - start.ours.get(pid, 0)) / tick
    ours = sum(by_role.values())
    total = end.total - start.total
    others = max(0.0, (end.busy - start.busy - ours * tick) / total) if total > 0 else 0.0
    return Usage(ours, others, by_role)
