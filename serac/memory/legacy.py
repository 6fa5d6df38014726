"""Reading memories written in the first on-disk format (``serac-memory/1``) to upgrade them.

Format 1 stored each version as one directory with every row (``edits.parquet``,
``embeddings.npy``) and tombstones by edit id. :meth:`~serac.memory.EditMemory.open` upgrades
such a memory once, writing its live rows as the first segment of a new format-2 version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from serac.data.schema import EDIT_SCHEMA
from serac.memory.layout import MANIFEST_FILE, MemoryCorruptError

LEGACY_FORMAT = "serac-memory/1"


@dataclass(frozen=True)
class LegacyVersion:
    table: pa.Table
    """Live rows only."""
    embeddings: np.ndarray
    dim: int | None
    fingerprint: str | None


def is_legacy(version_path: Path) -> bool:
    try:
        return json.loads((version_path / MANIFEST_FILE).read_text(encoding="utf-8")).get("format") == LEGACY_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def read_legacy(version_path: Path) -> LegacyVersion:
    """The live rows of a format-1 version directory."""
    try:
        manifest = json.loads((version_path / MANIFEST_FILE).read_text(encoding="utf-8"))
        table = pq.read_table(version_path / "edits.parquet").cast(EDIT_SCHEMA)
        embeddings = np.load(version_path / "embeddings.npy")
        tombstones = json.loads((version_path / "tombstones.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MemoryCorruptError(version_path, f"unreadable format-1 version: {exc}") from exc
    if len(embeddings) != table.num_rows:
        raise MemoryCorruptError(version_path, f"{table.num_rows} rows but {len(embeddings)} embeddings")
    live = ~np.asarray(pc.is_in(table.column("edit_id"), pa.array(tombstones, pa.string())), dtype=bool)
    return LegacyVersion(table.filter(pa.array(live)), np.asarray(embeddings[live], dtype=np.float32),
                         manifest.get("dim"), manifest.get("encoder_fingerprint"))
