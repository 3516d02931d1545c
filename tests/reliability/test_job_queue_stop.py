"""`manage.py jobqueue` (the Procfile's worker) stops cleanly when its whole process group
gets SIGTERM, as honcho, a terminal's job control or `kill -TERM -PGID` send it (opt-in with
the serve tests: ZEROTP_SERVE_TESTS=1).

Plain `manage.py qcluster` hangs there until SIGKILL: the signal kills the sentinel while it
waits on the stop event, and the parent then waits forever for it to acknowledge the wake-up
(zerotp/management/commands/jobqueue.py says why). Here a job is running when the signal
comes: it is finished and recorded, every process exits within seconds, the command exits 0.

The cluster runs on a SQLite file of its own, whatever database the suite uses."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.processes import alive, descendants, kill_tree

pytestmark = [
    pytest.mark.serve,
    pytest.mark.skipif(
        os.environ.get("ZEROTP_SERVE_TESTS") != "1",
        reason="starts the job queue as real processes (about 20 s); run with ZEROTP_SERVE_TESTS=1",
    ),
]

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python")
JOB_SECONDS = 2.0
STOP_BOUND = 10.0


def slow_job(marker: str) -> str:
    """The job the cluster is running when it is told to stop."""
    Path(marker + ".started").touch()
    time.sleep(JOB_SECONDS)
    Path(marker + ".finished").touch()
    return "done"


def wait_for(condition: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"no {what} after {seconds} s"
        time.sleep(0.1)


def test_sigterm_to_the_process_group_finishes_the_job_and_stops_every_process(
    tmp_path: Path,
) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("REDIS_URL", "DJANGO_SETTINGS_MODULE")
    }
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'queue.sqlite3'}", Q_WORKERS="2")
    marker = str(tmp_path / "job")
    subprocess.run([PYTHON, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    subprocess.run(
        [
            PYTHON,
            "manage.py",
            "shell",
            "-c",
            "from django_q.tasks import async_task; "
            f"async_task('tests.reliability.test_job_queue_stop.slow_job', {marker!r})",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    log = tmp_path / "jobqueue.log"
    with log.open("wb") as out:
        queue = subprocess.Popen(
            [PYTHON, "manage.py", "jobqueue"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(Path(marker + ".started").exists, 60, "job started")
        processes = descendants(queue.pid)
        # qcluster's parent, sentinel, monitor, pusher, two workers
        assert len(processes) >= 6, log.read_text()

        started = time.monotonic()
        os.killpg(queue.pid, signal.SIGTERM)
        code = queue.wait(timeout=JOB_SECONDS + STOP_BOUND)
        took = time.monotonic() - started
        wait_for(lambda: not any(alive(pid) for pid in processes), 5, "exit of every process")
    finally:
        kill_tree(queue)

    assert code == 0, log.read_text()
    assert Path(marker + ".finished").exists(), "the running job was cut off"
    assert took < JOB_SECONDS + STOP_BOUND
    # Successes are not stored (Q_CLUSTER save_limit -1): the job log records each job.
    finished = [
        line
        for line in map(_json_or_none, log.read_text().splitlines())
        if line and line.get("logger") == "zerotp.job"
    ]
    assert [(j["task"], j["outcome"]) for j in finished] == [
        ("tests.reliability.test_job_queue_stop.slow_job", "success")
    ], log.read_text()


def _json_or_none(line: str) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
