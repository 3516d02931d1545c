"""`make agent`: dist/zerotp-agent.pyz, the one file a reseller downloads, runs on a plain
Python 3.10+ with none of the project's packages around it.

So the archive is built by scripts/build_agent.py (as `make agent` does) and run by the
oldest Python among python3.10, python3.11 and python3 on PATH (and pyenv's 3.10 and
3.11) that is not a virtual environment: the oldest, because the archive promises 3.10+
and what breaks on an old Python (syntax, a module new in 3.11 such as tomllib) only
shows there; not a venv, because everything the agent needs must come from inside the
archive. It runs from a directory outside the repository, so that the repository's own
`agent` package cannot be imported instead of the archive's."""

import functools
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "scripts" / "build_agent.py"
# pyenv keeps older Pythons out of PATH (its shims run only the selected one): ask them too.
PYENV = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
CANDIDATES = (
    *sorted(str(path) for path in PYENV.glob("3.1[01].*/bin/python3")),
    "python3.10",
    "python3.11",
    "python3",
)
SUBCOMMANDS = ("run", "status", "simulate", "smsgate")
# Prints the version and whether this is a virtual environment (sys.prefix differs).
PROBE = "import sys; print(*sys.version_info[:2], int(sys.prefix != sys.base_prefix))"


@functools.cache
def oldest_plain_python() -> str | None:
    """The oldest working Python >= 3.10 among CANDIDATES on PATH, outside any venv. A name
    on PATH may still not run (a pyenv shim for a version not selected): each is asked."""
    found: list[tuple[tuple[int, int], str]] = []
    for name in CANDIDATES:
        path = shutil.which(name)
        if path is None:
            continue
        try:
            probe = subprocess.run(
                [path, "-I", "-c", PROBE], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode != 0:
            continue
        major, minor, in_venv = (int(part) for part in probe.stdout.split())
        if (major, minor) >= (3, 10) and not in_venv:
            found.append(((major, minor), path))
    return min(found)[1] if found else None


@pytest.fixture(scope="module")
def python() -> str:
    path = oldest_plain_python()
    if path is None:
        pytest.skip(
            f"no Python 3.10+ outside a virtual environment among {', '.join(CANDIDATES)} "
            "on PATH: the archive must be run by a plain Python to prove it needs nothing else"
        )
    return path


@pytest.fixture(scope="module")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("dist") / "zerotp-agent.pyz"
    built = subprocess.run(
        [sys.executable, str(BUILD), "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert built.returncode == 0, built.stderr
    assert output.is_file()
    return output


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A working directory outside the repository, with nothing in it."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    assert ROOT not in folder.parents
    return folder


def run_pyz(python: str, pyz: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    # -I: isolated mode, no PYTHONPATH, no user site-packages, no current directory on sys.path.
    return subprocess.run(
        [python, "-I", str(pyz), *args], capture_output=True, text=True, timeout=60, cwd=cwd
    )


def test_the_archive_holds_the_agent_and_its_dependencies_and_no_tests(pyz: Path) -> None:
    import zipfile

    with zipfile.ZipFile(pyz) as archive:
        names = set(archive.namelist())
        main = archive.read("__main__.py").decode()
    assert "from agent.cli import main" in main
    assert {"agent/__init__.py", "serial/__init__.py", "tomli/__init__.py"} <= names
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".so", ".pyd"))]
    assert not [n for n in names if n.endswith("pyproject.toml") or "/test_" in n]
    assert pyz.read_bytes().startswith(b"#!/usr/bin/env python3\n")


def test_help_lists_the_subcommands(python: str, pyz: Path, outside: Path) -> None:
    result = run_pyz(python, pyz, "--help", cwd=outside)

    assert result.returncode == 0, result.stderr
    listed = set(re.findall(r"^ {2,}(\w+) ", result.stdout, re.MULTILINE))
    assert set(SUBCOMMANDS) <= listed, result.stdout


def test_status_with_an_empty_state_folder_exits_0(
    python: str, pyz: Path, outside: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    state.mkdir()

    result = run_pyz(python, pyz, "status", "--state", str(state), cwd=outside)

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(os.name != "posix", reason="the simulator's virtual modems need ptys")
@pytest.mark.django_db(transaction=True)
def test_the_archive_runs_the_real_agent_against_a_live_server(
    python: str, pyz: Path, outside: Path, live_server: Any
) -> None:
    """The archive's own pyserial, PDU codec, outbox and HTTP client, on the old Python:
    its simulator syncs a virtual modem, keeps it online, and stops cleanly on SIGTERM."""
    from modems.models import Modem
    from tests.agent.conftest import eventually
    from tests.factories import make_agent

    reseller = make_agent()
    agent = subprocess.Popen(
        [
            python,
            "-I",
            str(pyz),
            "simulate",
            "--server",
            live_server.url,
            "--agent-key",
            reseller.key,
            "--modems",
            "1",
            "--heartbeat-seconds",
            "1",
            "--state",
            "state",
        ],
        cwd=outside,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        modem = eventually(
            lambda: Modem.objects.filter(last_heartbeat_at__isnull=False).first(),
            what="the virtual modem synced and beating",
        )
        assert modem.phone_number and modem.can_order
    finally:
        agent.send_signal(signal.SIGTERM)
        output, _ = agent.communicate(timeout=30)
    assert agent.returncode == 0, output
    assert "synced modem" in output
