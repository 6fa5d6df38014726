"""Background service processes: start detached with a log file, remember, stop (the whole tree).

The services of team mode are ordinary programs (``postgres``, ``mlflow server``,
``prefect server``, ``prefect worker``); this module only starts them in their own
session, records them in ``<state_dir>/services.json`` so ``down`` (possibly another
process) can find them, and stops them: SIGTERM to the process and its children, then
SIGKILL after a grace period.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from serac.team.private_files import write_private

STATE_FILE = "services.json"


@dataclass(frozen=True)
class Service:
    name: str
    pid: int
    url: str
    log: str
    command: list[str]
    stop_signal: int = int(signal.SIGTERM)
    """What asks this service to shut down cleanly (PostgreSQL: SIGINT, its fast shutdown)."""

    def alive(self) -> bool:
        try:
            proc = psutil.Process(self.pid)
            return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False


def spawn(name: str, command: Sequence[str], *, env: Mapping[str, str], log_dir: Path, url: str = "",
          cwd: Path | None = None, user: str | None = None, stop_signal: int = signal.SIGTERM) -> Service:
    """Start ``command`` in a new session (it survives the caller), output appended to ``<log_dir>/<name>.log``.

    ``user``: run as that (unprivileged) user; needs root.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}.log"
    as_user = {"user": user, "group": _group_of(user), "extra_groups": []} if user else {}
    with open(log, "ab") as out:
        if user:
            os.chown(log, *_ids(user))
        proc = subprocess.Popen(list(command), env=dict(env), cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, **as_user)
    return Service(name, proc.pid, url, str(log), list(command), int(stop_signal))


def _ids(user: str) -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def _group_of(user: str) -> int:
    return _ids(user)[1]


def tree(pid: int) -> list[psutil.Process]:
    """The process and all its descendants (children first), those still running."""
    try:
        root = psutil.Process(pid)
        return [*root.children(recursive=True), root]
    except psutil.NoSuchProcess:
        return []


def stop(service: Service, grace: float = 15.0) -> None:
    """Ask the service to stop (its ``stop_signal``), then its leftover children; SIGKILL after ``grace`` s."""
    procs = tree(service.pid)
    if not procs:
        return
    _signal(procs[-1], service.stop_signal)  # the service itself shuts its children down cleanly
    _, alive = psutil.wait_procs(procs, timeout=grace / 2)
    for proc in alive:
        _signal(proc, signal.SIGTERM)
    _, alive = psutil.wait_procs(alive, timeout=grace / 2)
    for proc in alive:
        _signal(proc, signal.SIGKILL)
    psutil.wait_procs(alive, timeout=5)
    _reap(service.pid)


def kill_tree(service: Service) -> None:
    """SIGKILL the service and every descendant at once: what a dying machine does to them."""
    procs = tree(service.pid)
    for proc in procs:
        _signal(proc, signal.SIGKILL)
    psutil.wait_procs(procs, timeout=10)
    _reap(service.pid)


def _signal(proc: psutil.Process, sig: int) -> None:
    try:
        proc.send_signal(sig)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        pass


def _reap(pid: int) -> None:
    """Collect the exit status when the service is our child (no zombie left behind)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def save_services(state_dir: Path, services: Sequence[Service]) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    # private: the commands carry no password, but they show paths and ports of the team's services
    write_private(state_dir / STATE_FILE, json.dumps([asdict(s) for s in services], indent=2))


def load_services(state_dir: Path) -> list[Service]:
    path = state_dir / STATE_FILE
    if not path.exists():
        return []
    return [Service(**row) for row in json.loads(path.read_text())]


def wait_exit(service: Service, timeout: float) -> bool:
    """True once the service's process is gone (within ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while service.alive():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True
