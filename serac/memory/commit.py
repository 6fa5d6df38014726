"""Writing the next version of a memory: appends, tombstones, full rewrites; each one commit.

:class:`VersionWriter` is used by :class:`~serac.memory.EditMemory` while it holds the
writer locks; every method takes the current view and returns the committed next one.
``append`` derives the next view from the current one in O(new rows) where it can (see
:mod:`serac.memory.view`); merges, seals and rewrites follow :mod:`serac.memory.policy`.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from serac.config import MemoryConfig
from serac.memory import audit, layout, policy
from serac.memory import segment as seg
from serac.memory.audit import Change
from serac.memory.index import resolve_index_kind
from serac.memory.layout import Manifest
from serac.memory.loader import ViewLoader, sealed_prefix
from serac.memory.view import GrowArray, MemoryView
from serac.memory.writer import SegmentWriter, segment_name

log = logging.getLogger(__name__)

_NORM_TOLERANCE = 1e-3


def checked_embeddings(embeddings: np.ndarray, n: int, dim: int | None) -> np.ndarray:
    """``embeddings`` as a contiguous float32 [n, dim] array of finite L2-normalised rows, else ValueError."""
    arr = np.asarray(embeddings)
    if arr.ndim != 2 or arr.shape[0] != n:
        raise ValueError(f"embeddings: expected shape [{n}, dim], got {arr.shape}")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"embeddings: dimension {arr.shape[1]} != memory dimension {dim}; call reembed() first")
    if arr.shape[1] == 0:
        raise ValueError("embeddings: dimension must be >= 1")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise ValueError("embeddings: contain NaN or inf")
    norms = np.linalg.norm(arr, axis=1)
    bad = np.flatnonzero(np.abs(norms - 1.0) > _NORM_TOLERANCE)
    if bad.size:
        raise ValueError(f"embeddings: rows must be L2-normalised; row {bad[0]} has norm {norms[bad[0]]:.4f}")
    return arr


def segment_changes(before: list[seg.Segment], after: list[seg.Segment]) -> dict[str, Any]:
    """Segments a commit writes (with their index: sealing shows as ``hnsw``) and drops (merged, compacted)."""
    old = {s.name for s in before}
    new = {s.name for s in after}
    return {
        "segments_written": [{"name": s.name, "rows": s.rows, "index": s.index_kind} for s in after
                             if s.name not in old],
        "segments_dropped": sorted(old - new),
    }


class VersionWriter:
    """Commits versions of the memory at ``root``; the caller holds the writer locks."""

    def __init__(self, root: Path, config: MemoryConfig, loader: ViewLoader):
        self.root = root
        self.config = config
        self.loader = loader

    def append(self, view: MemoryView, table: pa.Table, emb: np.ndarray, fingerprint: str,
               change: Change) -> MemoryView:
        """Write the new rows as a segment (merging or sealing per :mod:`serac.memory.policy`) and commit."""
        n_new, dim = table.num_rows, emb.shape[1]
        rows_total = view.rows + n_new
        kind = resolve_index_kind(self.config.index, rows_total, self.config.ann_threshold)
        segments = list(view.segments)
        n_sealed = sealed_prefix(segments, kind)
        sealed, delta = segments[:n_sealed], segments[n_sealed:]
        plan = policy.plan_append(kind, [s.rows for s in sealed], [s.rows for s in delta], n_new,
                                  self.config.delta_max_rows)
        writer = SegmentWriter(self.root, self.config, dim)
        counter = view.manifest.next_segment if view.manifest is not None else 1
        merged = delta[len(delta) - plan.merge_delta:] if plan.merge_delta else []
        kept = segments[: len(segments) - len(merged)]
        incremental = view.shared is not None and view.kind == kind and view.n_sealed == n_sealed
        parts: list[np.ndarray] = []
        if merged:
            lo = view.rows - sum(s.rows for s in merged)
            parts.append(view.shared.delta.data[lo - view.delta_start : view.rows - view.delta_start]
                         if incremental else np.concatenate([s.embeddings_f32() for s in merged]))
        parts.append(emb)
        new_segment = writer.write(segment_name(counter), [s.table for s in merged] + [table], parts,
                                   kind if plan.seal else "exact")
        counter += 1
        segments = kept + [new_segment]
        if plan.seal:
            pair = policy.pair_to_merge([s.rows for s in segments], self.config.max_ann_segments)
            if pair is not None:
                a, b = segments[pair], segments[pair + 1]
                log.info("memory %s: merging ANN segments of %d and %d rows", self.root, a.rows, b.rows)
                both = writer.write(segment_name(counter), [a.table, b.table], [a.embeddings, b.embeddings], kind)
                counter += 1
                segments[pair : pair + 2] = [both]
        tombstones = view.manifest.tombstones if view.manifest is not None else np.empty(0, np.int64)
        manifest = self.commit(view, segments, tombstones, dim, fingerprint, change, next_segment=counter)
        if not incremental:
            return self.loader.assemble(manifest, segments, kind)
        shared = view.shared
        assert shared is not None
        start = view.rows
        shared.ids.extend(table.column("edit_id").to_pylist())
        shared.live.append(np.ones(n_new, dtype=bool))
        for offset, edit_id in enumerate(table.column("edit_id").to_pylist()):
            shared.id_pos[edit_id] = start + offset
        if plan.seal:
            shared.delta = GrowArray((dim,), np.float32)
            delta_start = rows_total
        else:
            if shared.delta.n != view.rows - view.delta_start:  # pragma: no cover - defensive
                raise RuntimeError("memory delta buffer out of step with its view")
            shared.delta.append(emb)
            delta_start = view.delta_start
        self.loader.keep_only(segments)
        return MemoryView(manifest, segments, kind, shared, n_live=view.n_live + n_new, delta_start=delta_start)

    def tombstone(self, view: MemoryView, positions: list[int], change: Change) -> MemoryView:
        """Commit a version hiding the live rows at ``positions`` (every older view sees it at once)."""
        assert view.manifest is not None and view.shared is not None
        dead = np.asarray(positions, dtype=np.int64)
        tombstones = np.union1d(view.manifest.tombstones, dead)
        manifest = self.commit(view, list(view.segments), tombstones, view.dim, view.fingerprint, change)
        view.shared.live.data[dead] = False
        for position in positions:
            view.shared.id_pos.pop(view.edit_id_at(position), None)
        return MemoryView(manifest, view.segments, view.kind, view.shared,
                          n_live=view.n_live - len(positions), delta_start=view.delta_start)

    def rewrite(self, view: MemoryView, keep: np.ndarray, embeddings: np.ndarray | None,
                fingerprint: str, change: Change) -> MemoryView:
        """One segment holding the rows at positions ``keep`` (with new ``embeddings`` if given)."""
        assert view.manifest is not None
        dim = embeddings.shape[1] if embeddings is not None else int(view.dim or 0)
        kind = resolve_index_kind(self.config.index, len(keep), self.config.ann_threshold)
        segments: list[seg.Segment] = []
        counter = view.manifest.next_segment
        if len(keep):
            table = pa.concat_tables([s.table for s in view.segments]).take(pa.array(keep))
            rows = embeddings if embeddings is not None else _RowsAt(view, keep)
            segments = [SegmentWriter(self.root, self.config, dim).write(segment_name(counter), [table], [rows], kind)]
            counter += 1
        manifest = self.commit(view, segments, np.empty(0, np.int64), dim, fingerprint, change,
                               next_segment=counter)
        return self.loader.assemble(manifest, segments, kind)

    def commit(
        self,
        view: MemoryView,
        segments: list[seg.Segment],
        tombstones: np.ndarray,
        dim: int | None,
        fingerprint: str | None,
        change: Change,
        *,
        next_segment: int | None = None,
    ) -> Manifest:
        """Write version ``view.version + 1`` over ``segments``, append ``change`` to the audit trail,
        swap CURRENT, garbage-collect. A failed audit append leaves the change uncommitted."""
        version = view.version + 1
        kind = resolve_index_kind(self.config.index, sum(s.rows for s in segments), self.config.ann_threshold)
        if next_segment is None:
            next_segment = view.manifest.next_segment if view.manifest is not None else 1
        path = layout.write_version(
            self.root, version, parent=view.manifest, segments=[s.ref for s in segments], tombstones=tombstones,
            dim=dim, encoder_fingerprint=fingerprint, embedding_dtype=self.config.embedding_dtype,
            index=SegmentWriter(self.root, self.config, dim or 0).index_entry(kind), next_segment=next_segment,
        )
        audit.record_change(self.root, change, view.version, version, segment_changes(view.segments, segments))
        layout.write_current(self.root, version)
        retired = layout.collect_garbage(self.root, version, self.config.keep_versions)
        if retired:  # renamed away already; deleting the files is slow on some filesystems
            threading.Thread(target=layout.empty_trash, args=(retired,), daemon=True).start()
        return layout.read_manifest(path)


class _RowsAt:
    """Rows ``keep`` of a view's embeddings, sliceable like an array (read in bounded chunks)."""

    def __init__(self, view: MemoryView, keep: np.ndarray):
        self.view, self.keep = view, keep

    def __len__(self) -> int:
        return len(self.keep)

    def __getitem__(self, item: slice) -> np.ndarray:
        return self.view.embeddings(self.keep[item])
