"""The site under gunicorn with production settings, on a free port of 127.0.0.1.

Sync workers (`-k sync -w 3`): with gthread, keep-alive connections stick to whichever
worker accepted them and throughput swings by 2-3x between runs; sync repeats within
about 2% (FIELD-NOTES.md, "Speed on this machine").
"""

import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.project import BIN, popen

WORKERS = 3


def production_env(database_url: str) -> dict[str, str]:
    """Production settings for the bench: no debug, a random key, no rate limit, no cap on
    a buyer's pending orders, short rests, and modems stay online for the whole run (the seed stamps
    their heartbeat once; the default 120 s would take them offline mid-run)."""
    return {
        "DATABASE_URL": database_url,
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(48)[:64],
        "ALLOWED_HOSTS": "127.0.0.1",
        "API_RATE_LIMIT": "0",
        "SCAN_GUARD": "false",
        "MAX_ACTIVE_ORDERS": "1000000",
        "MODEM_ONLINE_SECONDS": "86400",
        # The bench cancels every order it places, so every number fails three times in a
        # row soon and would rest for hours: a one-second rest keeps the rule in every pick
        # without the bench's own cancels emptying the pool (as SCAN_GUARD above).
        "NUMBER_REST_SECONDS": "1",
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (our own loopback URL)
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer means the site is up (401 without a key)
    except OSError:
        return False


@dataclass(frozen=True)
class Server:
    url: str
    pid: int  # gunicorn's master, also the id of its process group


@contextmanager
def gunicorn(env: Mapping[str, str], log: Path) -> Iterator[Server]:
    """Start the site, wait until it answers, yield it; stop it on the way out."""
    port = free_port()
    command = [
        str(BIN / "gunicorn"),
        "zerotp.wsgi",
        "-k",
        "sync",
        "-w",
        str(WORKERS),
        "-b",
        f"127.0.0.1:{port}",
    ]
    process = popen(command, env=env, log=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _answers(f"{base}/api/v1/balance"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start; see {log}:\n{log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield Server(base, process.pid)
    finally:
        stop(process)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)  # gunicorn and its workers, started by us
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
