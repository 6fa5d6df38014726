"""Segments: immutable groups of memory rows (Parquet records + memory-mapped embeddings [+ HNSW]).

A segment is written once into ``segments/<name>/`` (via :func:`serac.io.atomic_dir`) and
never changed; versions list the segments they are made of. ``segment.json`` records the
sha256 and size of each data file; sizes are checked whenever a segment is opened, hashes
when the caller asks (once per segment and process, see :class:`~serac.memory.store.EditMemory`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from serac.data.schema import EDIT_SCHEMA
from serac.io import atomic_dir, fsync_path, write_json
from serac.memory.index import VectorIndex, load_index
from serac.memory.layout import (
    MemoryCorruptError,
    SegmentRef,
    check_file,
    file_meta,
    read_json_file,
    segment_dir,
    sha256_file,
)

EDITS_FILE = "edits.parquet"
EMBEDDINGS_FILE = "embeddings.npy"
INDEX_FILE = "index.faiss"
SEGMENT_FILE = "segment.json"
SEGMENT_FORMAT = "serac-segment/1"
EMBEDDING_DTYPES = ("float32", "float16")
PERSISTED_INDEX_KINDS = frozenset({"hnsw"})
"""Only an HNSW graph is stored: an exact or flat index is rebuilt from embeddings.npy in seconds."""

_COPY_ROWS = 1 << 16
_SMALL_ROWS = 1 << 14


@dataclass
class Segment:
    """One opened segment. ``index`` is set for sealed segments (kinds ``hnsw`` / ``flat``)."""

    name: str
    path: Path
    meta: dict[str, Any]
    table: pa.Table
    embeddings: np.ndarray
    """[rows, dim] in the stored dtype, a read-only memory map (in RAM for 0 rows)."""
    index: VectorIndex | None = None

    @property
    def rows(self) -> int:
        return int(self.meta["rows"])

    @property
    def index_kind(self) -> str | None:
        return self.meta.get("index")

    def ref(self) -> SegmentRef:
        return SegmentRef(self.name, self.rows, self.index_kind, self.meta_sha256)

    @property
    def meta_sha256(self) -> str:
        return str(self.meta["_sha256"])

    def embeddings_f32(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Rows ``start:stop`` as an in-RAM float32 array."""
        return np.asarray(self.embeddings[start:stop], dtype=np.float32)


def write_segment(
    root: Path,
    name: str,
    table: pa.Table,
    embeddings: np.ndarray | Callable[[np.ndarray], None],
    *,
    dim: int,
    dtype: str,
    index_kind: str | None,
    index_params: dict[str, Any],
    build_index: Callable[[np.ndarray], VectorIndex] | None = None,
) -> tuple[Path, VectorIndex | None]:
    """Write segment ``name``; return its path and the index built for it (if any).

    ``embeddings`` is an array [rows, dim] or a function filling a preallocated memory map
    in place (for large merges). ``build_index`` receives the written rows (memory map).
    """
    if dtype not in EMBEDDING_DTYPES:
        raise ValueError(f"embedding dtype must be one of {EMBEDDING_DTYPES}, got {dtype!r}")
    rows = table.num_rows
    built: VectorIndex | None = None
    target = segment_dir(root, name)
    with atomic_dir(target) as tmp:
        pq.write_table(table, tmp / EDITS_FILE)
        emb_path = tmp / EMBEDDINGS_FILE
        save_embeddings(emb_path, embeddings, rows, dim, dtype)
        files = {EDITS_FILE: None, EMBEDDINGS_FILE: None}
        if build_index is not None:
            stored = np.load(emb_path, mmap_mode="r") if rows else np.empty((0, dim), dtype=dtype)
            built = build_index(stored)
            if index_kind in PERSISTED_INDEX_KINDS:
                built.save(tmp / INDEX_FILE)
                files[INDEX_FILE] = None
        for file_name in files:
            fsync_path(tmp / file_name)
        meta = {
            "format": SEGMENT_FORMAT,
            "name": name,
            "rows": rows,
            "dim": dim,
            "dtype": dtype,
            "index": index_kind,
            "index_params": index_params,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "files": {file_name: file_meta(tmp / file_name) for file_name in files},
        }
        write_json(tmp / SEGMENT_FILE, meta)
    return target, built


def save_embeddings(
    path: Path, source: np.ndarray | Callable[[np.ndarray], None], rows: int, dim: int, dtype: str
) -> None:
    """Write a [rows, dim] .npy of ``dtype`` from an array or a filling function (through a memory map)."""
    if rows == 0:
        with open(path, "wb") as fh:
            np.save(fh, np.empty((0, dim), dtype=dtype))
        return
    if rows <= _SMALL_ROWS:  # small: fill in RAM and write once (no memory-map flush)
        small = np.empty((rows, dim), dtype=dtype)
        if callable(source):
            source(small)
        else:
            small[:] = source
        with open(path, "wb") as fh:
            np.save(fh, small)
        return
    out = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=(rows, dim))
    if callable(source):
        source(out)
    else:
        for start in range(0, rows, _COPY_ROWS):
            out[start : start + _COPY_ROWS] = source[start : start + _COPY_ROWS]
    out.flush()
    del out


def read_segment(
    root: Path, ref: SegmentRef, *, verify: bool, hnsw_ef_search: int, load_stored_index: bool = True
) -> Segment:
    """Open segment ``ref`` (sizes always checked, sha256 when ``verify``); corruption names the file."""
    path = segment_dir(root, ref.name)
    meta_path = path / SEGMENT_FILE
    if not meta_path.is_file():
        raise MemoryCorruptError(meta_path, "missing")
    if sha256_file(meta_path) != ref.sha256:
        raise MemoryCorruptError(meta_path, "sha256 does not match the version manifest")
    meta = read_json_file(meta_path)
    try:
        if meta.get("format") != SEGMENT_FORMAT:
            raise ValueError(f"unknown format {meta.get('format')!r}")
        rows, dim, dtype, files = int(meta["rows"]), int(meta["dim"]), str(meta["dtype"]), meta["files"]
        if rows != ref.rows or dtype not in EMBEDDING_DTYPES:
            raise ValueError(f"rows {rows} (manifest: {ref.rows}), dtype {dtype}")
        required = [EDITS_FILE, EMBEDDINGS_FILE] + ([INDEX_FILE] if meta.get("index") in PERSISTED_INDEX_KINDS else [])
        for name in required:
            if name not in files:
                raise ValueError(f"does not list {name}")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MemoryCorruptError(meta_path, f"missing or bad field: {exc}") from exc
    for name, file_info in files.items():
        check_file(path / name, file_info, verify)
    meta["_sha256"] = ref.sha256

    edits_path = path / EDITS_FILE
    try:
        table = pq.read_table(edits_path).cast(EDIT_SCHEMA)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise MemoryCorruptError(edits_path, f"unreadable Parquet: {exc}") from exc
    if table.num_rows != rows:
        raise MemoryCorruptError(edits_path, f"{table.num_rows} rows, segment.json says {rows}")

    emb_path = path / EMBEDDINGS_FILE
    try:
        embeddings = np.load(emb_path, mmap_mode="r") if rows else np.load(emb_path)
    except Exception as exc:
        raise MemoryCorruptError(emb_path, f"unreadable .npy: {exc}") from exc
    if embeddings.dtype != np.dtype(dtype) or embeddings.shape != (rows, dim):
        raise MemoryCorruptError(emb_path, f"{embeddings.dtype} {embeddings.shape}, expected {dtype} {(rows, dim)}")

    segment = Segment(ref.name, path, meta, table, embeddings)
    if load_stored_index and meta.get("index") in PERSISTED_INDEX_KINDS:
        index_path = path / INDEX_FILE
        try:
            segment.index = load_index(index_path, meta["index"], hnsw_ef_search=hnsw_ef_search)
        except Exception as exc:  # faiss raises RuntimeError for a damaged file
            raise MemoryCorruptError(index_path, f"unreadable index: {exc}") from exc
        if len(segment.index) != rows or segment.index.dim != dim:
            raise MemoryCorruptError(index_path, f"{len(segment.index)} x {segment.index.dim}, expected {rows} x {dim}")
    return segment


def meta_sha256(path: Path) -> str:
    """The sha256 of a written segment's ``segment.json`` (what version manifests record)."""
    return file_meta(path / SEGMENT_FILE)["sha256"]
