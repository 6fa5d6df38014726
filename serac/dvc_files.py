"""What DVC recorded for a path, read from its files only (``<path>.dvc``, ``dvc.lock``): no DVC call.

The one reader of DVC's md5s, below every package that needs them (the ingest pipeline
versions the memory with ``dvc add``; the registry tags runs and model versions with
the data and memory md5s). One failure behaviour:

* a file that is there but unreadable or not what DVC writes raises :class:`DvcFileError`
  naming the file and what is wrong;
* absence is not an error only where the function says so: :func:`dvc_hash` returns None
  for a path DVC does not track; :func:`read_dvc_md5` wants an existing ``.dvc`` file, so
  a caller that tolerates an untracked path checks ``dvc_file_for(path).is_file()`` first.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = ["DvcFileError", "dvc_file_for", "dvc_hash", "read_dvc_md5"]


class DvcFileError(ValueError):
    """A ``.dvc`` file or ``dvc.lock`` is missing where required, unreadable, or not in DVC's format."""


def dvc_file_for(path: str | Path) -> Path:
    """The ``.dvc`` file ``dvc add <path>`` writes: ``<path>.dvc`` beside ``path``."""
    path = Path(path)
    return path.with_name(path.name + ".dvc")


def read_dvc_md5(dvc_file: str | Path) -> str:
    """The md5 of the single output recorded in a ``.dvc`` file (``<hex>.dir`` for a directory).

    Raises :class:`DvcFileError` when the file is missing, unreadable, or does not hold
    exactly one output with an md5.
    """
    dvc_file = Path(dvc_file)
    meta = _read_yaml(dvc_file)
    if meta is None:
        raise DvcFileError(f"{dvc_file}: no such file")
    outs = meta.get("outs")
    if not isinstance(outs, list) or len(outs) != 1 or not isinstance(outs[0], Mapping) or not outs[0].get("md5"):
        raise DvcFileError(f"{dvc_file}: expected exactly one output with an md5, got {outs!r}")
    return str(outs[0]["md5"])


def dvc_hash(path: str | Path, lock_file: str | Path = "dvc.lock") -> str | None:
    """The md5 DVC recorded for output ``path`` (``abc...`` or ``abc....dir``); None when DVC does not track it.

    Looks in ``lock_file``'s stage outputs, then in ``<path>.dvc`` (``dvc add``). A relative
    ``path`` is relative to the lock file's directory (the project root); a path outside that
    directory, or a missing lock file, is simply not tracked. A lock file or ``.dvc`` file that
    exists but cannot be read raises :class:`DvcFileError`.
    """
    lock_file = Path(lock_file)
    base = lock_file.parent.resolve()
    target = Path(path) if Path(path).is_absolute() else base / path
    try:
        wanted = os.path.normpath(target.resolve().relative_to(base).as_posix())
    except ValueError:
        return None
    for entry in _lock_outs(lock_file):
        if os.path.normpath(str(entry.get("path", ""))) == wanted:
            return str(entry["md5"]) if entry.get("md5") else None
    dot_dvc = dvc_file_for(target)
    return read_dvc_md5(dot_dvc) if dot_dvc.is_file() else None


def _lock_outs(lock_file: Path) -> Iterator[Mapping[str, Any]]:
    stages = (_read_yaml(lock_file) or {}).get("stages") or {}
    if not isinstance(stages, Mapping):
        raise DvcFileError(f"{lock_file}: 'stages' is not a mapping")
    for stage in stages.values():
        for entry in (stage or {}).get("outs") or []:
            if isinstance(entry, Mapping):
                yield entry


def _read_yaml(path: Path) -> Mapping[str, Any] | None:
    """The YAML mapping in ``path``; None when there is no such file; :class:`DvcFileError` otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DvcFileError(f"{path}: unreadable: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DvcFileError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise DvcFileError(f"{path}: expected a YAML mapping, got {type(data).__name__}")
    return data
