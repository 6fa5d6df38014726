"""Loading a committed version into a :class:`~serac.memory.view.MemoryView`.

:class:`ViewLoader` keeps the segments it opened (segments never change, so a refresh
re-reads only new ones) and remembers which ones passed their sha256 check, so each
segment is hashed at most once per process.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from serac.config import MemoryConfig
from serac.memory import layout
from serac.memory import segment as seg
from serac.memory.index import resolve_index_kind
from serac.memory.layout import Manifest, MemoryCorruptError, SegmentRef
from serac.memory.view import MemoryView, Shared
from serac.memory.writer import SegmentWriter


def empty_view() -> MemoryView:
    """The view of a memory that was never written (version 0)."""
    return MemoryView(None, [], "exact", None, n_live=0, delta_start=0)


def sealed_prefix(segments: Sequence[seg.Segment], kind: str) -> int:
    """How many leading ``segments`` are sealed for index ``kind`` (none for ``exact``)."""
    if kind == "exact":
        return 0
    n_sealed = 0
    while n_sealed < len(segments) and segments[n_sealed].index_kind == kind:
        n_sealed += 1
    return n_sealed


class ViewLoader:
    """Builds views of the memory at ``root``, reusing the segments it already opened."""

    def __init__(self, root: Path, config: MemoryConfig):
        self.root = root
        self.config = config
        self._segments: dict[str, seg.Segment] = {}
        self._verified: set[str] = set()

    def load(self, version: int) -> MemoryView:
        """The view of committed ``version`` (0: empty); a missing or damaged file raises MemoryCorruptError."""
        if version == 0:
            return empty_view()
        path = layout.version_dir(self.root, version)
        if not path.is_dir():
            raise MemoryCorruptError(path, "version directory named by CURRENT is missing")
        manifest = layout.read_manifest(path)
        kind = resolve_index_kind(self.config.index, manifest.rows, self.config.ann_threshold)
        return self.assemble(manifest, [self._segment(ref, kind) for ref in manifest.segments], kind)

    def _segment(self, ref: SegmentRef, kind: str) -> seg.Segment:
        """Open (or reuse) a segment; it carries an index only when it is sealed for ``kind``."""
        wants_index = kind != "exact" and ref.index == kind
        cached = self._segments.get(ref.name)
        if cached is None or cached.ref.meta != ref.meta or (wants_index and cached.index is None):
            cached = seg.read_segment(
                self.root, ref, verify=self.config.verify_checksums and ref.name not in self._verified,
                hnsw_ef_search=self.config.hnsw_ef_search, load_stored_index=wants_index,
            )
            self._verified.add(ref.name)
            if wants_index and cached.index is None:  # a flat index is not stored: rebuild it from the rows
                cached.index = SegmentWriter(self.root, self.config, int(ref.meta["dim"])).build_index(
                    kind, cached.embeddings
                )
            self._segments[ref.name] = cached
        return cached

    def assemble(self, manifest: Manifest, segments: list[seg.Segment], kind: str) -> MemoryView:
        """A view with freshly built shared structures (on open, refresh and rewrites)."""
        n_sealed = sealed_prefix(segments, kind)
        delta_start = sum(s.rows for s in segments[:n_sealed])
        ids: list[str] = []
        for s in segments:
            ids.extend(s.table.column("edit_id").to_pylist())
        live = np.ones(len(ids), dtype=bool)
        live[manifest.tombstones] = False
        dim = manifest.dim or 0
        delta_parts = [s.embeddings_f32() for s in segments[n_sealed:]]
        delta = np.concatenate(delta_parts) if delta_parts else np.empty((0, dim), np.float32)
        shared = Shared(ids, live, delta, dim)
        n_live = int(live.sum())
        if len(shared.id_pos) != n_live:
            raise MemoryCorruptError(manifest.path, "an edit_id is live at two positions")
        self.keep_only(segments)
        return MemoryView(manifest, segments, kind, shared, n_live=n_live, delta_start=delta_start)

    def keep_only(self, segments: Sequence[seg.Segment]) -> None:
        """Forget cached segments the current version no longer uses (and remember the new ones)."""
        self._segments = {s.name: s for s in segments}
