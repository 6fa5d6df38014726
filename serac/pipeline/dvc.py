"""A small wrapper around the ``dvc`` command line: run a subcommand, fail with a clear message.

DVC is run as ``<this python> -m dvc`` so the pipeline always uses the DVC of its own
environment, with ``DVC_NO_ANALYTICS=1`` (otherwise every command spawns a detached
analytics daemon, see shared/STACK.md). The Python API of DVC is not used: its
``add`` is not part of the documented API, and a subprocess keeps DVC's logging and
locks out of the calling process (a Prefect worker, a test run).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from serac.dvc_files import dvc_file_for, read_dvc_md5

__all__ = ["DvcError", "add", "dvc_file_for", "find_repo_root", "read_dvc_md5", "run_dvc"]

DVC_DIR = ".dvc"
DEFAULT_TIMEOUT_S = 600.0


class DvcError(RuntimeError):
    """A ``dvc`` command failed, timed out, or DVC is not installed; the message says which and why."""


def find_repo_root(path: str | Path) -> Path | None:
    """The innermost directory at or above ``path`` holding a ``.dvc/`` directory, or None."""
    here = Path(path).resolve()
    for candidate in (here, *here.parents):
        if (candidate / DVC_DIR).is_dir():
            return candidate
    return None


def run_dvc(args: Sequence[str], cwd: str | Path, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> str:
    """Run ``dvc <args>`` in ``cwd``; returns its standard output.

    Raises :class:`DvcError` naming the command, the exit status and DVC's own
    error output when it fails, and when it runs longer than ``timeout_s``.
    """
    command = [sys.executable, "-m", "dvc", *map(str, args)]
    shown = "dvc " + " ".join(map(str, args))
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    try:
        done = subprocess.run(
            command, cwd=str(cwd), env=env, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise DvcError(f"`{shown}` in {cwd} did not finish within {timeout_s:.0f} s") from exc
    except OSError as exc:
        raise DvcError(f"`{shown}` in {cwd} could not start: {exc}") from exc
    if done.returncode != 0:
        detail = (done.stderr.strip() or done.stdout.strip() or "(no output)")[-2000:]
        if "No module named dvc" in detail:
            detail = f"DVC is not installed in {sys.executable}'s environment"
        raise DvcError(f"`{shown}` in {cwd} failed with exit status {done.returncode}: {detail}")
    return done.stdout


def add(path: str | Path, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> tuple[Path, str] | None:
    """``dvc add <path>`` in the DVC repository containing it; returns (.dvc file, md5).

    None when ``path`` is in no DVC repository. The ``.dvc`` file still has to be
    committed to git (DVC only prints that hint; committing is not this function's job).
    Raises :class:`DvcError` when ``dvc add`` fails and :class:`~serac.dvc_files.DvcFileError`
    when the ``.dvc`` file it wrote cannot be read.
    """
    path = Path(path).resolve()
    root = find_repo_root(path.parent)
    if root is None:
        return None
    run_dvc(["add", path.relative_to(root).as_posix()], cwd=root, timeout_s=timeout_s)
    dvc_file = dvc_file_for(path)
    return dvc_file, read_dvc_md5(dvc_file)
