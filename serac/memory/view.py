"""MemoryView: one loaded version of the memory, and search over its segments.

Row *positions* run through the version's segments in order. Sealed (ANN) segments come
first and are searched by their own faiss index; the rest (the *delta*, a suffix of the
positions) is searched exactly from one float32 matrix kept in RAM. A query asks every part
for ``fetch`` candidates, merges them by score, drops tombstoned positions and keeps ``k``.

A writer derives the next view from the current one without re-reading anything: the
position -> id list, the live mask, the id -> position map and the delta matrix are shared
and only grow (or, for removals, flip to dead), so adding one edit to a 10^6-row memory
costs O(new rows). Each view reads them only up to its own ``rows``; a removal is visible
to every view at once. Only the writer (holding the store's lock) mutates them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from serac.data.schema import EDIT_SCHEMA, EditRecord
from serac.memory.index import exact_topk
from serac.memory.layout import Manifest
from serac.memory.segment import Segment


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result: the edit, its row position in the current version, its cosine."""

    edit_id: str
    position: int
    score: float


class GrowArray:
    """An append-only numpy buffer with doubling capacity; ``data[:n]`` is the content."""

    def __init__(self, shape_tail: tuple[int, ...], dtype: np.dtype | type, initial: np.ndarray | None = None):
        rows = 0 if initial is None else len(initial)
        self.data = np.empty((max(rows, 16), *shape_tail), dtype=dtype)
        if rows:
            self.data[:rows] = initial
        self.n = rows

    def append(self, values: np.ndarray) -> None:
        need = self.n + len(values)
        if need > len(self.data):
            grown = np.empty((max(need, 2 * len(self.data)), *self.data.shape[1:]), dtype=self.data.dtype)
            grown[: self.n] = self.data[: self.n]
            self.data = grown  # views holding the old buffer keep reading their rows from it
        self.data[self.n : need] = values
        self.n = need


class Shared:
    """The grow-only structures views of one lineage share (see the module doc)."""

    def __init__(self, ids: list[str], live: np.ndarray, delta: np.ndarray, dim: int):
        self.ids = ids
        self.live = GrowArray((), bool, live)
        self.id_pos: dict[str, int] = {}
        for pos in np.flatnonzero(live).tolist():
            self.id_pos[ids[pos]] = pos
        self.delta = GrowArray((dim,), np.float32, delta)


class MemoryView:
    """An immutable version (segments, counts) over the shared row structures."""

    def __init__(
        self,
        manifest: Manifest | None,
        segments: Sequence[Segment],
        kind: str,
        shared: Shared | None,
        *,
        n_live: int,
        delta_start: int,
    ):
        self.manifest = manifest
        self.segments = tuple(segments)
        self.kind = kind
        self.shared = shared
        self.offsets = np.cumsum([0] + [s.rows for s in self.segments]).astype(np.int64)
        self.rows = int(self.offsets[-1])
        self.n_live = n_live
        self.delta_start = delta_start
        self._delta = shared.delta.data if shared is not None else None
        self._live = shared.live.data if shared is not None else None

    # ------------------------------------------------------------- metadata
    @property
    def version(self) -> int:
        return self.manifest.version if self.manifest is not None else 0

    @property
    def dim(self) -> int | None:
        return self.manifest.dim if self.manifest is not None else None

    @property
    def fingerprint(self) -> str | None:
        return self.manifest.fingerprint if self.manifest is not None else None

    @property
    def sealed(self) -> tuple[Segment, ...]:
        """Segments searched by their own index (a prefix of ``segments``)."""
        return self.segments[: self.n_sealed]

    @property
    def n_sealed(self) -> int:
        return int(np.searchsorted(self.offsets, self.delta_start, side="right")) - 1

    # ------------------------------------------------------------- rows
    def live_mask(self) -> np.ndarray:
        return self._live[: self.rows] if self._live is not None else np.zeros(0, bool)

    def position(self, edit_id: str) -> int | None:
        """The live position of ``edit_id`` in this view, or None."""
        if self.shared is None:
            return None
        pos = self.shared.id_pos.get(edit_id)
        if pos is None or pos >= self.rows or not self._live[pos]:
            return None
        return pos

    def edit_id_at(self, position: int) -> str:
        assert self.shared is not None
        return self.shared.ids[position]

    def locate(self, position: int) -> tuple[Segment, int]:
        if not 0 <= position < self.rows:
            raise IndexError(f"position {position} outside 0..{self.rows - 1}")
        i = int(np.searchsorted(self.offsets, position, side="right")) - 1
        return self.segments[i], position - int(self.offsets[i])

    def record_at(self, position: int) -> EditRecord:
        segment, local = self.locate(position)
        return EditRecord.from_row(segment.table.slice(local, 1).to_pylist()[0])

    def table(self) -> pa.Table:
        if not self.segments:
            return EDIT_SCHEMA.empty_table()
        table = pa.concat_tables([s.table for s in self.segments])
        return table if self.n_live == self.rows else table.filter(pa.array(self.live_mask()))

    def embeddings(self, rows: np.ndarray | None = None) -> np.ndarray:
        """float32 embeddings of ``rows`` (default: the live rows), position order."""
        dim = self.dim or 0
        if rows is None:
            rows = np.flatnonzero(self.live_mask())
        out = np.empty((len(rows), dim), dtype=np.float32)
        for i, segment in enumerate(self.segments):
            lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
            sel = np.flatnonzero((rows >= lo) & (rows < hi))
            if len(sel):
                out[sel] = segment.embeddings[rows[sel] - lo]
        return out

    # ------------------------------------------------------------- search
    def search(self, query_embeddings: np.ndarray, k: int) -> list[list[Hit]]:
        """The ``k`` live edits nearest each query by cosine, best first.

        ``query_embeddings`` is [n, dim] (or one [dim] vector: one result list). An empty
        memory gives ``n`` empty lists. Tombstoned rows are skipped: every part of the
        memory is asked for ``k`` plus some extra candidates, and queries left short are
        searched again with twice as many until they have ``k`` hits or all rows were asked.
        """
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        queries = np.asarray(query_embeddings, dtype=np.float32)
        if queries.ndim == 1:
            queries = queries[None, :]
        if queries.ndim != 2:
            raise ValueError(f"query_embeddings: expected [n, dim], got shape {queries.shape}")
        results: list[list[Hit]] = [[] for _ in range(len(queries))]
        if self.n_live == 0 or k == 0 or len(queries) == 0:
            return results
        if queries.shape[1] != self.dim:
            raise ValueError(f"query_embeddings: dimension {queries.shape[1]} != memory dimension {self.dim}")
        queries = np.ascontiguousarray(queries)
        live = self.live_mask()
        dead = self.rows - self.n_live
        fetch = min(self.rows, k + min(dead, max(k, 32)))
        pending = np.arange(len(queries))
        while len(pending):
            scores, positions = self._candidates(queries[pending], fetch)
            valid = positions >= 0
            alive = np.zeros_like(valid)
            alive[valid] = live[positions[valid]]
            take = alive & (np.cumsum(alive, axis=1) <= k)
            retry = []
            for row, qi in enumerate(pending.tolist()):
                cols = np.flatnonzero(take[row])
                if len(cols) < min(k, self.n_live) and fetch < self.rows:
                    retry.append(qi)
                    continue
                pos_list, score_list = positions[row, cols].tolist(), scores[row, cols].tolist()
                results[qi] = [Hit(self.shared.ids[p], p, s) for p, s in zip(pos_list, score_list)]
            pending = np.asarray(retry, dtype=np.int64)
            fetch = min(self.rows, fetch * 2)
        return results

    def _candidates(self, queries: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
        """Up to ``fetch`` candidates from each part, merged best first: (scores, global positions)."""
        parts_s: list[np.ndarray] = []
        parts_p: list[np.ndarray] = []
        for i in range(self.n_sealed):
            segment = self.segments[i]
            assert segment.index is not None
            s, p = segment.index.search(queries, min(fetch, segment.rows))
            parts_s.append(s)
            parts_p.append(np.where(p >= 0, p + self.offsets[i], -1))
        n_delta = self.rows - self.delta_start
        if n_delta:
            assert self._delta is not None
            s, p = exact_topk(queries, self._delta[:n_delta], min(fetch, n_delta))
            parts_s.append(s)
            parts_p.append(np.where(p >= 0, p + self.delta_start, -1))
        if len(parts_s) == 1:
            return parts_s[0], parts_p[0]
        scores = np.concatenate(parts_s, axis=1)
        positions = np.concatenate(parts_p, axis=1)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :fetch]
        return np.take_along_axis(scores, order, axis=1), np.take_along_axis(positions, order, axis=1)
