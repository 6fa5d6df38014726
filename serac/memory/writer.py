"""Writing segments: new rows, merged delta segments, sealed ANN segments, full rewrites."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from serac.config import MemoryConfig
from serac.memory import segment as seg
from serac.memory.index import FaissIndex, VectorIndex

_COPY_ROWS = 1 << 16

RowSource = np.ndarray
"""Rows to copy into a new segment: an in-RAM array or a segment's memory map (any float dtype)."""


def segment_name(counter: int) -> str:
    """Unique even beside a killed writer's leftover with the same counter."""
    return f"s{counter:08d}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class SegmentWriter:
    root: Path
    config: MemoryConfig
    dim: int

    def index_params(self, kind: str) -> dict:
        if kind != "hnsw":
            return {}
        return {"m": self.config.hnsw_m, "ef_construction": self.config.hnsw_ef_construction,
                "fp16": self.config.embedding_dtype == "float16"}

    def index_entry(self, kind: str) -> dict:
        """The ``index`` entry of a version manifest whose index kind is ``kind``."""
        return {"kind": kind, **self.index_params(kind)}

    def build_index(self, kind: str, rows: RowSource) -> VectorIndex:
        """A faiss index of ``kind`` (``flat`` / ``hnsw``) over ``rows``, added in bounded chunks."""
        index = FaissIndex(
            self.dim,
            kind,
            hnsw_m=self.config.hnsw_m,
            hnsw_ef_search=self.config.hnsw_ef_search,
            hnsw_ef_construction=self.config.hnsw_ef_construction,
            fp16=kind == "hnsw" and self.config.embedding_dtype == "float16",
        )
        for start in range(0, len(rows), _COPY_ROWS):
            index.add(np.asarray(rows[start : start + _COPY_ROWS], dtype=np.float32))
        return index

    def write(self, name: str, tables: Sequence[pa.Table], parts: Sequence[RowSource], kind: str) -> seg.Segment:
        """One segment of ``tables`` / ``parts`` concatenated; sealed with an index unless ``kind`` is exact."""
        table = tables[0] if len(tables) == 1 else pa.concat_tables(list(tables))
        rows = table.num_rows
        if sum(len(p) for p in parts) != rows:
            raise ValueError(f"{rows} records but {sum(len(p) for p in parts)} embeddings")

        def fill(out: np.ndarray) -> None:
            offset = 0
            for part in parts:
                for start in range(0, len(part), _COPY_ROWS):
                    chunk = part[start : start + _COPY_ROWS]
                    out[offset : offset + len(chunk)] = chunk
                    offset += len(chunk)

        sealed = kind != "exact"
        builder: Callable[[np.ndarray], VectorIndex] | None = (lambda r: self.build_index(kind, r)) if sealed else None
        ref, index = seg.write_segment(
            self.root, name, table, fill, dim=self.dim, dtype=self.config.embedding_dtype,
            index_kind=kind if sealed else None, index_params=self.index_params(kind), build_index=builder,
        )
        path = self.root / "segments" / name
        embeddings = np.load(path / seg.EMBEDDINGS_FILE, mmap_mode="r") if rows else np.empty(
            (0, self.dim), dtype=self.config.embedding_dtype
        )
        return seg.Segment(ref, path, table, embeddings, index)
