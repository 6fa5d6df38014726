"""Files that hold secrets (passwords, URIs with credentials): private from the moment they exist.

Writing a file and chmod-ing it afterwards leaves it readable by everyone for a moment under
the usual umask 022. :func:`write_private` creates a temporary file with mode 0600
(``mkstemp``: ``O_CREAT | O_EXCL``, mode 0600, which a umask can only narrow), writes it,
and renames it over the target, so the target is never visible with a wider mode.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_private(path: str | Path, text: str) -> Path:
    """Atomically replace ``path`` with ``text``, mode 0600 from creation on."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
