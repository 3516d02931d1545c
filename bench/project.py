"""Running the project's own commands (manage.py, gunicorn, pip) from the bench."""

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the project's .venv/bin when run as `make bench` does


class CommandFailed(RuntimeError):
    pass


def run(
    command: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 1800
) -> str:
    """Run a command in the project folder; its stdout, or CommandFailed with its output."""
    done = subprocess.run(  # noqa: S603 (our own fixed commands)
        list(command),
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise CommandFailed(
            f"{' '.join(command[:4])} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done.stdout


def manage(*args: str, env: Mapping[str, str]) -> str:
    return run([sys.executable, "manage.py", *args], env=env)


def popen(command: Sequence[str], *, env: Mapping[str, str], log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(  # noqa: S603 (our own fixed commands)
            list(command),
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
