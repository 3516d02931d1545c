"""`manage.py jobqueue`: django-q2's `qcluster`, stopped cleanly by a SIGTERM to its whole
process group (what honcho, a shell's `kill %1` and `kill -TERM -PGID` send), as it already
is by Ctrl-C.

Why qcluster alone hangs (django-q2 1.11, django_q/cluster.py): its parent answers SIGINT and
SIGTERM by setting the stop event the sentinel waits on, and the sentinel and the workers
ignore SIGINT, finish their tasks and stop. But they keep SIGTERM's default action, so a
SIGTERM sent to the group kills the sentinel while it waits on that event. The parent's
handler then sets the event: multiprocessing's Condition.notify_all() counts the dead
sentinel as a sleeper and waits for it to acknowledge the wake-up, forever (a futex wait
that only SIGKILL ends). The workers die in the middle of their tasks too.

So qcluster runs here in a process group of its own, which a SIGTERM to ours does not reach,
and SIGTERM or SIGINT to this process becomes a SIGINT to qcluster's parent: the Ctrl-C path.
A cluster not gone STOP_SECONDS later (a task past its timeout) is killed, group and all.
Under systemd, use KillMode=mixed: the default (control-group) signals every process at once.
"""

import ctypes
import os
import signal
import subprocess
import sys
import time
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

# The longest a task may run (Q_CLUSTER's timeout), and some time to stop after it.
STOP_SECONDS = settings.Q_CLUSTER["timeout"] + 10


def _interrupt_when_orphaned() -> None:
    """In the child, before qcluster starts: should this process die without stopping the
    cluster (SIGKILL), the kernel sends the cluster's parent a SIGINT (Linux only)."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGINT)


class Command(BaseCommand):
    help = "The job-queue worker: django-q2's qcluster, stopped cleanly by SIGTERM or SIGINT."

    def handle(self, *args: Any, **options: Any) -> None:
        stop_asked: list[float] = []
        cluster: subprocess.Popen[bytes] | None = None

        def interrupt_cluster() -> None:
            if cluster is None:
                return  # not started yet: it is told right after
            try:
                os.kill(cluster.pid, signal.SIGINT)
            except ProcessLookupError:
                pass

        def stop(signum: int, frame: FrameType | None) -> None:
            if not stop_asked:  # once: a cluster that does not stop is killed below
                stop_asked.append(time.monotonic())
                interrupt_cluster()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        cluster = subprocess.Popen(  # noqa: S603 (our own interpreter and manage.py)
            [sys.executable, str(settings.BASE_DIR / "manage.py"), "qcluster"],
            process_group=0,
            preexec_fn=_interrupt_when_orphaned,
        )
        if stop_asked:
            interrupt_cluster()
        while True:
            try:
                code = cluster.wait(timeout=1)
                break
            except subprocess.TimeoutExpired:
                if stop_asked and time.monotonic() - stop_asked[0] > STOP_SECONDS:
                    self.stderr.write(f"cluster still running {STOP_SECONDS} s after stop: killed")
                    _kill_group(cluster.pid)
        # A sentinel or worker left behind by a parent that died first goes too.
        _kill_group(cluster.pid)
        if stop_asked and code == -signal.SIGINT:
            code = 0  # stopped while it was still starting, before it handles SIGINT itself
        sys.exit(code)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
