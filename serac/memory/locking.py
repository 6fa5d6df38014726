"""The single-writer lock of a memory root: an exclusive ``flock`` on ``<root>/.lock``.

It serialises writers across processes (and keeps a writer's garbage collection away from
a :meth:`~serac.memory.EditMemory.snapshot` being copied); readers never take it.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from serac.memory.layout import LOCK_FILE


@contextlib.contextmanager
def exclusive_lock(root: Path) -> Iterator[None]:
    """Hold the writer lock of the memory at ``root`` (created if missing) for the ``with`` block."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK_FILE, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
