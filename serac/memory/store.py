"""EditMemory: SERAC's explicit edit memory; segmented, versioned, append-only, built to 10^6+ edits.

An edit is an :class:`~serac.data.schema.EditRecord` plus one embedding computed by the
caller (the scope classifier's encoder): an L2-normalised row, so inner product is cosine
similarity. The memory knows nothing about models; it records the encoder's
``encoder_fingerprint`` so the editor can notice stale embeddings and call :meth:`reembed`.

Storage (:mod:`serac.memory.layout`): immutable *segments* shared between versions, and a
small manifest per version. ``add`` writes one segment with the new rows (occasionally
merging the small trailing ones, or sealing them into a new HNSW segment: see
:mod:`serac.memory.policy`), ``remove`` writes only a new tombstone list; both then replace
``CURRENT``, so a writer killed at any point leaves the previous version intact. Mutations
take an in-process lock plus an exclusive ``flock`` on ``<root>/.lock`` and first catch up
with the newest committed version, so two writers never lose each other's edits; readers
take no lock, and one instance may serve many reader threads while one thread writes.

Rows have *positions* (0..rows-1 in insertion order, stable until :meth:`compact`, which
drops tombstoned rows and renumbers). ``remove`` tombstones a position: hidden from reads and
search at once. A removed id that is added again gets a new row at a new position.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import shutil
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from serac.config import MemoryConfig
from serac.data.schema import EDIT_SCHEMA, EditRecord, records_to_table, table_to_records
from serac.io import atomic_dir
from serac.memory import layout, legacy, policy
from serac.memory import segment as seg
from serac.memory.index import resolve_index_kind
from serac.memory.layout import Manifest, MemoryCorruptError, SegmentRef
from serac.memory.view import GrowArray, Hit, MemoryView, Shared
from serac.memory.writer import SegmentWriter, segment_name

log = logging.getLogger(__name__)

_NORM_TOLERANCE = 1e-3

__all__ = ["AddResult", "EditMemory", "Hit", "MemoryConflictError", "MemoryReadOnlyError", "RemoveResult"]


class MemoryReadOnlyError(RuntimeError):
    """A mutation was called on a memory opened at an explicit (older) version."""


class MemoryConflictError(RuntimeError):
    """The memory changed on disk since this instance loaded it, and the call cannot adapt."""


@dataclass(frozen=True)
class AddResult:
    added: list[str]
    """Ids written by this call (new, or added again after a ``remove``)."""
    skipped: list[str]
    """Ids already live (or repeated within the batch): left untouched."""
    version: int
    """The version holding the result; unchanged when nothing was added."""


@dataclass(frozen=True)
class RemoveResult:
    removed: list[str]
    unknown: list[str]
    """Ids that were not live: never added, or already removed."""
    version: int


class EditMemory:
    """The edit memory at ``root``; build it with :meth:`open`."""

    def __init__(self, root: Path, config: MemoryConfig, read_only: bool):
        self.root = root
        self.config = config
        self._read_only = read_only
        self._view = _empty_view()
        self._segments: dict[str, seg.Segment] = {}
        self._verified: set[str] = set()
        self._write_lock = threading.RLock()
        self._trash_checked = False

    # ----------------------------------------------------------------- opening

    @classmethod
    def open(
        cls, root: str | Path | None = None, config: MemoryConfig | None = None, *, version: int | None = None
    ) -> EditMemory:
        """Open the memory at ``root`` (default ``config.root``) at its ``CURRENT`` version.

        A missing root is an empty memory (version 0; nothing is created until the first
        write). ``version=N`` opens an older version, read-only. A missing, truncated or
        altered file raises :class:`MemoryCorruptError` naming it (sha256 checks of the
        segments' data files can be turned off with ``config.verify_checksums``).
        """
        config = config or MemoryConfig()
        root = Path(root if root is not None else config.root)
        memory = cls(root, config, read_only=version is not None)
        if version is not None:
            if version not in layout.list_versions(root):
                raise FileNotFoundError(f"{root}: no version {version}; have {layout.list_versions(root)}")
            memory._view = memory._load(version)
        else:
            memory._upgrade_legacy()
            memory.refresh()
        return memory

    def _upgrade_legacy(self) -> None:
        """Rewrite a memory whose current version is in the first format as a format-2 version."""
        current = layout.read_current(self.root)
        if current == 0 or not legacy.is_legacy(layout.version_dir(self.root, current)):
            return
        with self._write_lock, self._lock():
            current = layout.read_current(self.root)
            path = layout.version_dir(self.root, current)
            if not legacy.is_legacy(path):
                return
            old = legacy.read_legacy(path)
            rows = old.table.num_rows
            kind = resolve_index_kind(self.config.index, rows, self.config.ann_threshold)
            dim = old.dim if old.dim is not None else (old.embeddings.shape[1] if rows else 0)
            segments = [SegmentWriter(self.root, self.config, dim).write(segment_name(1), [old.table], [old.embeddings],
                                                                         kind)] if rows else []
            index = {"kind": kind, **SegmentWriter(self.root, self.config, dim).index_params(kind)}
            layout.write_version(
                self.root, current + 1, parent=None, segments=[s.ref for s in segments],
                tombstones=np.empty(0, np.int64), dim=old.dim, encoder_fingerprint=old.fingerprint,
                embedding_dtype=self.config.embedding_dtype, index=index, next_segment=2,
            )
            layout.write_current(self.root, current + 1)
            log.warning("memory %s: upgraded v%d (%s) to format %s as v%d", self.root, current,
                        legacy.LEGACY_FORMAT, layout.FORMAT, current + 1)

    def refresh(self) -> bool:
        """Catch up with the newest committed version (e.g. another process wrote); True when it changed.

        Cheap when nothing changed (one small file read); safe to call from reader threads
        while this instance writes.
        """
        if self._read_only or layout.read_current(self.root) == self._view.version:
            return False
        with self._write_lock:
            return self._refresh_locked()

    def _refresh_locked(self) -> bool:
        for attempt in range(3):
            current = layout.read_current(self.root)
            if current == self._view.version:
                return False
            try:
                self._view = self._load(current)
                return True
            except MemoryCorruptError:
                # A writer may have committed and garbage-collected this version meanwhile.
                if attempt == 2 or layout.read_current(self.root) == current:
                    raise
        return False  # pragma: no cover

    def _load(self, version: int) -> MemoryView:
        if version == 0:
            return _empty_view()
        path = layout.version_dir(self.root, version)
        if not path.is_dir():
            raise MemoryCorruptError(path, "version directory named by CURRENT is missing")
        manifest = layout.read_manifest(path)
        kind = resolve_index_kind(self.config.index, manifest.rows, self.config.ann_threshold)
        return self._assemble(manifest, [self._segment(ref, kind) for ref in manifest.segments], kind)

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

    def _assemble(self, manifest: Manifest, segments: list[seg.Segment], kind: str) -> MemoryView:
        """A view with freshly built shared structures (on open, refresh and rewrites)."""
        n_sealed = 0
        if kind != "exact":
            while n_sealed < len(segments) and segments[n_sealed].index_kind == kind:
                n_sealed += 1
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
        self._segments = {s.name: s for s in segments}
        return MemoryView(manifest, segments, kind, shared, n_live=n_live, delta_start=delta_start)

    # ------------------------------------------------------------------ reading

    @property
    def version(self) -> int:
        """The loaded version; 0 for an empty memory that was never written."""
        return self._view.version

    @property
    def dim(self) -> int | None:
        return self._view.dim

    @property
    def encoder_fingerprint(self) -> str | None:
        return self._view.fingerprint

    @property
    def read_only(self) -> bool:
        return self._read_only

    def __len__(self) -> int:
        return self._view.n_live

    def __contains__(self, edit_id: object) -> bool:
        return isinstance(edit_id, str) and self.contains(edit_id)

    def contains(self, edit_id: str) -> bool:
        """True when ``edit_id`` is live (added and not removed)."""
        return self._view.position(edit_id) is not None

    def ids(self) -> list[str]:
        """Live edit ids in position order."""
        view = self._view
        if view.shared is None:
            return []
        return [view.shared.ids[p] for p in np.flatnonzero(view.live_mask()).tolist()]

    def get(self, edit_id: str) -> EditRecord:
        """The live record ``edit_id``; KeyError when absent or removed."""
        view = self._view
        pos = view.position(edit_id)
        if pos is None:
            raise KeyError(edit_id)
        return view.record_at(pos)

    def record_at(self, position: int) -> EditRecord:
        """The record at a row position of the loaded version (live or tombstoned)."""
        return self._view.record_at(position)

    def table(self) -> pa.Table:
        """Live rows as an Arrow table in :data:`~serac.data.schema.EDIT_SCHEMA`, position order."""
        return self._view.table()

    def records(self) -> list[EditRecord]:
        """Live records in position order (the order :meth:`reembed` expects)."""
        return table_to_records(self.table())

    def embeddings(self) -> np.ndarray:
        """Embeddings of the live records, float32 [len(self), dim], position order."""
        if self._view.manifest is None:
            return np.empty((0, 0), dtype=np.float32)
        return self._view.embeddings()

    def versions(self) -> list[int]:
        """Committed versions still on disk, oldest first."""
        current = max(layout.read_current(self.root), self._view.version)
        return [v for v in layout.list_versions(self.root) if v <= current]

    def stats(self) -> dict[str, Any]:
        view = self._view
        on_disk = 0
        if view.manifest is not None:
            on_disk = layout.dir_bytes(view.manifest.path) + sum(layout.dir_bytes(s.path) for s in view.segments)
        return {
            "live": view.n_live,
            "tombstoned": view.rows - view.n_live,
            "rows": view.rows,
            "version": view.version,
            "dim": view.dim,
            "encoder_fingerprint": view.fingerprint,
            "bytes_on_disk": on_disk,
            "index_kind": view.kind if view.manifest is not None else None,
            "segments": len(view.segments),
            "ann_segments": view.n_sealed,
            "delta_rows": view.rows - view.delta_start,
            "embedding_dtype": view.manifest.raw.get("embedding_dtype", "float32") if view.manifest else None,
        }

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
        view = self._view
        if view.n_live == 0 or k == 0 or len(queries) == 0:
            return [[] for _ in range(len(queries))]
        if queries.shape[1] != view.dim:
            raise ValueError(f"query_embeddings: dimension {queries.shape[1]} != memory dimension {view.dim}")
        return view.search(np.ascontiguousarray(queries), k)

    # ----------------------------------------------------------------- writing

    def add(self, records: Sequence[EditRecord], embeddings: np.ndarray, encoder_fingerprint: str) -> AddResult:
        """Append ``records`` with their embeddings (row i embeds records[i]).

        Idempotent: ids already live are skipped, and a call that adds nothing writes no
        version. A removed id that comes back gets a new row. Raises ValueError when
        ``encoder_fingerprint`` or the embedding dimension differs from the memory's (fixed
        once it holds any row; see :meth:`reembed`), or when rows are not L2-normalised.
        """
        records = list(records)
        return self.add_table(records_to_table(records), embeddings, encoder_fingerprint)

    def add_table(self, table: pa.Table, embeddings: np.ndarray, encoder_fingerprint: str) -> AddResult:
        """:meth:`add` for rows already in an Arrow table of :data:`~serac.data.schema.EDIT_SCHEMA`
        (bulk loads: no per-row Python objects)."""
        if table.num_rows == 0:  # nothing to write: no lock, no directories
            if self._read_only:
                raise MemoryReadOnlyError(f"{self.root}: opened at version {self.version} read-only")
            self.refresh()
            self._check_fingerprint(self._view, encoder_fingerprint)
            return AddResult([], [], self.version)
        table = table.select(EDIT_SCHEMA.names).cast(EDIT_SCHEMA)
        with self._writing() as view:
            self._check_fingerprint(view, encoder_fingerprint)
            emb = _checked_embeddings(embeddings, table.num_rows, view.dim if view.rows else None)
            added: list[str] = []
            skipped: list[str] = []
            take: list[int] = []
            seen: set[str] = set()
            for i, edit_id in enumerate(table.column("edit_id").to_pylist()):
                if edit_id in seen or view.position(edit_id) is not None:
                    skipped.append(edit_id)
                    continue
                seen.add(edit_id)
                added.append(edit_id)
                take.append(i)
            if not added:
                return AddResult([], skipped, view.version)
            if len(take) < table.num_rows:
                table, emb = table.take(pa.array(take)), emb[take]
            version = self._append(view, table, emb, encoder_fingerprint)
            return AddResult(added, skipped, version)

    def remove(self, edit_ids: Iterable[str] | str) -> RemoveResult:
        """Tombstone ``edit_ids``: hidden from reads and search at once, rows kept until :meth:`compact`."""
        wanted = list(dict.fromkeys([edit_ids] if isinstance(edit_ids, str) else edit_ids))
        with self._writing() as view:
            positions = {i: view.position(i) for i in wanted}
            removed = [i for i, p in positions.items() if p is not None]
            unknown = [i for i, p in positions.items() if p is None]
            if not removed:
                return RemoveResult([], unknown, view.version)
            assert view.manifest is not None and view.shared is not None
            dead = np.asarray([positions[i] for i in removed], dtype=np.int64)
            tombstones = np.union1d(view.manifest.tombstones, dead)
            manifest = self._commit(view, list(view.segments), tombstones, view.dim, view.fingerprint)
            view.shared.live.data[dead] = False  # every view sees the removal at once
            for edit_id in removed:
                view.shared.id_pos.pop(edit_id, None)
            self._view = MemoryView(manifest, view.segments, view.kind, view.shared,
                                    n_live=view.n_live - len(removed), delta_start=view.delta_start)
            return RemoveResult(removed, unknown, manifest.version)

    def compact(self) -> int:
        """Write a version without tombstoned rows (renumbers positions); returns the version.

        Without tombstones nothing is written and the current version is returned.
        """
        with self._writing() as view:
            if view.manifest is None or view.n_live == view.rows:
                return view.version
            keep = np.flatnonzero(view.live_mask())
            return self._rewrite(view, keep, None, view.fingerprint or "")

    def reembed(self, embeddings: np.ndarray, encoder_fingerprint: str) -> int:
        """Replace every embedding (e.g. after the encoder changed); returns the new version.

        ``embeddings`` must be [len(self), dim] aligned with :meth:`records` / :meth:`ids`;
        ``dim`` may differ from the old one. The new version also drops tombstoned rows.
        Raises :class:`MemoryConflictError` when the memory changed on disk since this
        instance loaded it (the rows would not line up): ``refresh`` and encode again.
        """
        before = self._view.version
        with self._writing() as view:
            if view.version != before:
                raise MemoryConflictError(f"{self.root}: memory moved from v{before} to v{view.version}; re-encode")
            if not encoder_fingerprint or not isinstance(encoder_fingerprint, str):
                raise ValueError("encoder_fingerprint must be a non-empty string")
            emb = _checked_embeddings(embeddings, view.n_live, None)
            if view.manifest is None:
                return view.version
            return self._rewrite(view, np.flatnonzero(view.live_mask()), emb, encoder_fingerprint)

    def snapshot(self, dest_dir: str | Path) -> Path:
        """Copy the loaded version to ``dest_dir`` as a standalone memory root :meth:`open` reads.

        Segment files are hard-linked where the filesystem allows (they are never modified).
        """
        dest = Path(dest_dir)
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise FileExistsError(f"{dest}: exists and is not an empty directory")
        view = self._view
        if view.manifest is None:
            dest.mkdir(parents=True, exist_ok=True)
            return dest
        # The lock keeps a writer's garbage collection away from the files being copied.
        with self._lock(), atomic_dir(dest) as tmp:
            shutil.copytree(view.manifest.path, layout.version_dir(tmp, view.version))
            for s in view.segments:
                shutil.copytree(s.path, layout.segment_dir(tmp, s.name), copy_function=_link_or_copy)
            layout.write_current(tmp, view.version)
        return dest

    # ---------------------------------------------------------------- internals

    def _append(self, view: MemoryView, table: pa.Table, emb: np.ndarray, fingerprint: str) -> int:
        """Write the new rows as a segment (merging or sealing per :mod:`serac.memory.policy`) and commit."""
        n_new, dim = table.num_rows, emb.shape[1]
        rows_total = view.rows + n_new
        kind = resolve_index_kind(self.config.index, rows_total, self.config.ann_threshold)
        segments = list(view.segments)
        n_sealed = 0
        if kind != "exact":
            while n_sealed < len(segments) and segments[n_sealed].index_kind == kind:
                n_sealed += 1
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
        manifest = self._commit(view, segments, tombstones, dim, fingerprint, next_segment=counter)
        if not incremental:
            self._view = self._assemble(manifest, segments, kind)
            return manifest.version
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
        self._segments = {s.name: s for s in segments}
        self._view = MemoryView(manifest, segments, kind, shared, n_live=view.n_live + n_new, delta_start=delta_start)
        return manifest.version

    def _rewrite(self, view: MemoryView, keep: np.ndarray, embeddings: np.ndarray | None, fingerprint: str) -> int:
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
        manifest = self._commit(view, segments, np.empty(0, np.int64), dim, fingerprint, next_segment=counter)
        self._view = self._assemble(manifest, segments, kind)
        return manifest.version

    def _commit(
        self,
        view: MemoryView,
        segments: list[seg.Segment],
        tombstones: np.ndarray,
        dim: int | None,
        fingerprint: str | None,
        *,
        next_segment: int | None = None,
    ) -> Manifest:
        """Write version ``view.version + 1`` over ``segments``, swap CURRENT, garbage-collect."""
        version = view.version + 1
        kind = resolve_index_kind(self.config.index, sum(s.rows for s in segments), self.config.ann_threshold)
        index = {"kind": kind, **SegmentWriter(self.root, self.config, dim or 0).index_params(kind)}
        if next_segment is None:
            next_segment = view.manifest.next_segment if view.manifest is not None else 1
        path = layout.write_version(
            self.root, version, parent=view.manifest, segments=[s.ref for s in segments], tombstones=tombstones,
            dim=dim, encoder_fingerprint=fingerprint, embedding_dtype=self.config.embedding_dtype, index=index,
            next_segment=next_segment,
        )
        layout.write_current(self.root, version)
        retired = layout.collect_garbage(self.root, version, self.config.keep_versions)
        if retired:  # renamed away already; deleting the files is slow on some filesystems
            threading.Thread(target=layout.empty_trash, args=(retired,), daemon=True).start()
        return layout.read_manifest(path)

    def _check_fingerprint(self, view: MemoryView, fingerprint: str) -> None:
        if not fingerprint or not isinstance(fingerprint, str):
            raise ValueError("encoder_fingerprint must be a non-empty string")
        if view.rows and fingerprint != view.fingerprint:
            raise ValueError(
                f"encoder fingerprint {fingerprint!r} != memory's {view.fingerprint!r}: "
                "embeddings come from another encoder; call reembed() first"
            )

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / layout.LOCK_FILE, "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[MemoryView]:
        """Hold the write locks, catch up with the committed version, clear a killed writer's leftovers."""
        if self._read_only:
            raise MemoryReadOnlyError(f"{self.root}: opened at version {self.version} read-only")
        with self._write_lock, self._lock():
            self.refresh()
            layout.remove_leftovers(self.root, self._view.version)
            if not self._trash_checked:  # what a killed process retired but did not delete
                self._trash_checked = True
                threading.Thread(target=layout.empty_trash, kwargs={"root": self.root}, daemon=True).start()
            yield self._view

    def __repr__(self) -> str:
        return f"EditMemory({str(self.root)!r}, version={self.version}, live={len(self)}, dim={self.dim})"


class _RowsAt:
    """Rows ``keep`` of a view's embeddings, sliceable like an array (read in bounded chunks)."""

    def __init__(self, view: MemoryView, keep: np.ndarray):
        self.view, self.keep = view, keep

    def __len__(self) -> int:
        return len(self.keep)

    def __getitem__(self, item: slice) -> np.ndarray:
        return self.view.embeddings(self.keep[item])


def _empty_view() -> MemoryView:
    return MemoryView(None, [], "exact", None, n_live=0, delta_start=0)


def _checked_embeddings(embeddings: np.ndarray, n: int, dim: int | None) -> np.ndarray:
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


def _link_or_copy(source: str, dest: str) -> str:
    layout.link_or_copy(Path(source), Path(dest))
    return dest

