"""Run the processes of a Procfile together and stop them the way a service manager expects
(`make serve`: scripts/serve.sh). Standard library only.

    python scripts/supervise.py [Procfile]

- Each line `name: command` runs as `sh -c 'exec command'`, in a process group of its own,
  with this environment; its output goes straight to ours, unprefixed (JSON log lines stay
  JSON).
- SIGTERM or SIGINT: each process's main process gets SIGTERM, and stops its own children
  the way it knows (gunicorn's master drains its workers; `manage.py jobqueue` its cluster).
  Whatever still runs STOP_SECONDS later is killed, process group and all.
- A process that exits by itself stops the others: the site is never left half up.
- Exit status: 0 after a stop that was asked for and that every process completed with
  status 0 (or by dying of that SIGTERM, if it came before the process could handle it);
  1 otherwise.

honcho 2.0 runs a Procfile too, but it exits 143 after a SIGTERM, sends SIGTERM to each whole
process group (gunicorn's workers and the job queue's then stop on their own, not through
their parents), and kills everything 5 s after the first process ends, while a job may run
for 50 s. `honcho start` still reads the same Procfile for a quick look.
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

# gunicorn drains for at most 10 s (zerotp/gunicorn.conf.py); a job may run for 50 s and
# `manage.py jobqueue` kills its cluster 60 s after the stop.
STOP_SECONDS = 70
LINE = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+)$")


def read_procfile(path: Path) -> dict[str, str]:
    processes = {}
    for line in path.read_text().splitlines():
        match = LINE.match(line.strip())
        if match:
            processes[match.group(1)] = match.group(2)
    if not processes:
        raise SystemExit(f"supervise: no process in {path}")
    return processes


def say(message: str) -> None:
    print(f"supervise: {message}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    procfile = Path(argv[1] if len(argv) > 1 else "Procfile")
    stop_asked: list[float] = []

    def ask_stop(signum: int, frame: FrameType | None) -> None:
        if not stop_asked:
            stop_asked.append(time.monotonic())

    signal.signal(signal.SIGTERM, ask_stop)
    signal.signal(signal.SIGINT, ask_stop)
    running: dict[str, subprocess.Popen[bytes]] = {}
    codes: dict[str, int] = {}
    for name, command in read_procfile(procfile).items():
        running[name] = subprocess.Popen(["/bin/sh", "-c", f"exec {command}"], process_group=0)  # noqa: S603
        say(f"{name} started (pid {running[name].pid}): {command}")

    stopping_since: float | None = None
    exited_unasked = False
    while running:
        time.sleep(0.1)
        for name, process in list(running.items()):
            code = process.poll()
            if code is None:
                continue
            del running[name]
            say(f"{name} exited with status {code}")
            # Killed by the SIGTERM it was sent (still starting, no handler yet): stopped.
            codes[name] = 0 if stopping_since is not None and code == -signal.SIGTERM else code
            if not stop_asked:
                exited_unasked = True
                say("stopping the others")
                stop_asked.append(time.monotonic())
        if stop_asked and stopping_since is None:
            stopping_since = stop_asked[0]
            for name, process in running.items():
                say(f"sending SIGTERM to {name} (pid {process.pid})")
                _signal(process.pid, signal.SIGTERM)
        if stopping_since is not None and time.monotonic() - stopping_since > STOP_SECONDS:
            for name, process in running.items():
                say(f"{name} still running {STOP_SECONDS} s after the stop: SIGKILL")
                _signal(-process.pid, signal.SIGKILL)
                process.wait()
                codes[name] = -signal.SIGKILL
            running.clear()
    clean = not exited_unasked and all(code == 0 for code in codes.values())
    return 0 if clean else 1


def _signal(pid: int, signum: int) -> None:
    """`pid` < 0 names a process group."""
    try:
        if pid < 0:
            os.killpg(-pid, signum)
        else:
            os.kill(pid, signum)
    except ProcessLookupError:
        pass


if __name__ == "__main__":
    sys.exit(main(sys.argv))
