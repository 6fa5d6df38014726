"""Reading memories written in the first on-disk format (``serac-memory/1``) to upgrade them.

Format 1 stored each version as one directory with every row (``edits.parquet``,
``embeddings.npy``) and tombstones by edit id. :meth:`~serac.memory.EditMemory.open` upgrades
such a memory once, writing its live rows as the first segment of a new format-2 version.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from serac.config import MemoryConfig
from serac.data.schema import EDIT_SCHEMA
from serac.memory import audit, layout
from serac.memory.index import resolve_index_kind
from serac.memory.layout import MANIFEST_FILE, MemoryCorruptError
from serac.memory.writer import SegmentWriter, segment_name

log = logging.getLogger(__name__)

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


def needs_upgrade(root: Path) -> bool:
    """True when the committed version of the memory at ``root`` is in the first format."""
    current = layout.read_current(root)
    return current != 0 and is_legacy(layout.version_dir(root, current))


def upgrade(root: Path, config: MemoryConfig) -> None:
    """Rewrite a format-1 current version as format-2 version ``current + 1``; the caller holds the writer lock.

    Does nothing when the current version is not (or no longer) in the first format.
    """
    if not needs_upgrade(root):
        return
    current = layout.read_current(root)
    old = read_legacy(layout.version_dir(root, current))
    rows = old.table.num_rows
    kind = resolve_index_kind(config.index, rows, config.ann_threshold)
    dim = old.dim if old.dim is not None else (old.embeddings.shape[1] if rows else 0)
    writer = SegmentWriter(root, config, dim)
    segments = [writer.write(segment_name(1), [old.table], [old.embeddings], kind)] if rows else []
    layout.write_version(
        root, current + 1, parent=None, segments=[s.ref for s in segments],
        tombstones=np.empty(0, np.int64), dim=old.dim, encoder_fingerprint=old.fingerprint,
        embedding_dtype=config.embedding_dtype, index=writer.index_entry(kind), next_segment=2,
    )
    change = audit.Change("upgrade", audit.AuditContext.local(f"upgraded from format {LEGACY_FORMAT}"))
    audit.record_change(root, change, current, current + 1)
    layout.write_current(root, current + 1)
    log.warning("memory %s: upgraded v%d (%s) to format %s as v%d", root, current,
                LEGACY_FORMAT, layout.FORMAT, current + 1)
