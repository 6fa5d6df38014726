"""EditMemory: SERAC's explicit edit memory, Parquet-backed, versioned, append-only.

An edit is an :class:`~serac.data.schema.EditRecord` plus one embedding computed by the
caller (the scope classifier's encoder): a float32 L2-normalised row, so inner product is
cosine similarity. The memory knows nothing about models; it records the encoder's
``encoder_fingerprint`` so the editor can notice stale embeddings and call :meth:`reembed`.

Every mutating call (``add``, ``remove``, ``compact``, ``reembed``) writes a complete new
version directory and only then replaces ``CURRENT`` (see :mod:`serac.memory.layout`), so
a writer killed at any point leaves the previous version intact and readable. Mutations
take an exclusive ``flock`` on ``<root>/.lock`` and first catch up with the newest
committed version, so two writers never lose each other's edits; readers take no lock.
One instance is not meant to be shared between threads while it writes.

Rows have *positions* (0..rows-1, insertion order; a removed edit that is added again
takes its old position back). ``remove`` only tombstones: the row stays in the Parquet
file and in the vector index, and :meth:`search` drops it from the results, over-fetching
and searching again with a larger ``k`` when too many candidates were tombstoned.
``compact`` rewrites the version without those rows, which renumbers positions.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from serac.config import MemoryConfig
from serac.data.schema import EDIT_SCHEMA, EditRecord, records_to_table, table_to_records
from serac.io import atomic_dir
from serac.memory import layout
from serac.memory.index import ExactIndex, FaissIndex, VectorIndex, load_index, resolve_index_kind
from serac.memory.layout import MemoryCorruptError, VersionFiles

log = logging.getLogger(__name__)

_NORM_TOLERANCE = 1e-3
_COPY_ROWS = 1 << 16
"""Rows copied (or added to an index) per step, to bound memory when the matrix is large."""


class MemoryReadOnlyError(RuntimeError):
    """A mutation was called on a memory opened at an explicit (older) version."""


class MemoryConflictError(RuntimeError):
    """The memory changed on disk since this instance loaded it, and the call cannot adapt."""


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result: the edit, its row position in the current version, its cosine."""

    edit_id: str
    position: int
    score: float


@dataclass(frozen=True)
class AddResult:
    added: list[str]
    """Ids written by this call (new, or revived after a ``remove``)."""
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


class _State:
    """One loaded version: rows, tombstones, index, and the lookups derived from them."""

    def __init__(self, files: VersionFiles | None, index: VectorIndex | None):
        self.files = files
        self.index = index
        self.ids: list[str] = files.table.column("edit_id").to_pylist() if files else []
        self.positions = {edit_id: pos for pos, edit_id in enumerate(self.ids)}
        self.live = np.ones(len(self.ids), dtype=bool)
        if files is not None:
            if len(self.positions) != len(self.ids):
                raise MemoryCorruptError(files.path / layout.EDITS_FILE, "duplicate edit_id")
            stray = files.tombstones - self.positions.keys()
            if stray:
                raise MemoryCorruptError(files.path / layout.TOMBSTONES_FILE, f"unknown ids {sorted(stray)[:3]}")
            self.live[[self.positions[t] for t in files.tombstones]] = False
        self.n_live = int(self.live.sum())

    @property
    def version(self) -> int:
        return self.files.version if self.files else 0

    @property
    def rows(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int | None:
        return self.files.manifest["dim"] if self.files else None

    @property
    def fingerprint(self) -> str | None:
        return self.files.manifest["encoder_fingerprint"] if self.files else None

    @property
    def tombstones(self) -> frozenset[str]:
        return self.files.tombstones if self.files else frozenset()


class EditMemory:
    """The edit memory at ``root``; build it with :meth:`open`."""

    def __init__(self, root: Path, config: MemoryConfig, state: _State, read_only: bool):
        self.root = root
        self.config = config
        self._state = state
        self._read_only = read_only

    # ----------------------------------------------------------------- opening

    @classmethod
    def open(
        cls, root: str | Path | None = None, config: MemoryConfig | None = None, *, version: int | None = None
    ) -> EditMemory:
        """Open the memory at ``root`` (default ``config.root``) at its ``CURRENT`` version.

        A missing root is an empty memory (version 0; nothing is created until the first
        write). ``version=N`` opens an older version, read-only. A missing, truncated or
        altered file raises :class:`MemoryCorruptError` naming it (sha256 checks can be
        turned off with ``config.verify_checksums``).
        """
        config = config or MemoryConfig()
        root = Path(root if root is not None else config.root)
        memory = cls(root, config, _State(None, None), read_only=version is not None)
        if version is not None:
            if version not in layout.list_versions(root):
                raise FileNotFoundError(f"{root}: no version {version}; have {layout.list_versions(root)}")
            memory._state = memory._load(version)
        else:
            memory.refresh()
        return memory

    def refresh(self) -> bool:
        """Catch up with the newest committed version; True when it changed."""
        if self._read_only:
            return False
        for attempt in range(3):
            current = layout.read_current(self.root)
            if current == self._state.version:
                return False
            try:
                self._state = self._load(current)
                return True
            except MemoryCorruptError:
                # A writer may have committed and garbage-collected this version meanwhile.
                if attempt == 2 or layout.read_current(self.root) == current:
                    raise
        return False  # pragma: no cover

    def _load(self, version: int) -> _State:
        if version == 0:
            return _State(None, None)
        path = layout.version_dir(self.root, version)
        if not path.is_dir():
            raise MemoryCorruptError(path, "version directory named by CURRENT is missing")
        files = layout.read_version(path, self.config.verify_checksums)
        return _State(files, self._open_index(files))

    def _open_index(self, files: VersionFiles) -> VectorIndex:
        rows, dim = files.table.num_rows, files.manifest["dim"] or 0
        kind = resolve_index_kind(self.config.index, rows, self.config.ann_threshold)
        if kind == files.index_kind and files.index_path is not None:
            try:
                index = load_index(files.index_path, kind, hnsw_ef_search=self.config.hnsw_ef_search)
            except Exception as exc:  # faiss raises RuntimeError for a damaged file
                raise MemoryCorruptError(files.index_path, f"unreadable index: {exc}") from exc
            if len(index) != rows or index.dim != dim:
                raise MemoryCorruptError(files.index_path, f"{len(index)} x {index.dim}, expected {rows} x {dim}")
            return index
        if kind == "hnsw":
            log.warning("building an HNSW index over %d rows in memory (stored kind: %s)", rows, files.index_kind)
        return self._build_index(kind, dim, files.embeddings)

    def _build_index(self, kind: str, dim: int, embeddings: np.ndarray) -> VectorIndex:
        if kind == "exact":
            return ExactIndex(dim, embeddings)
        index = FaissIndex(dim, kind, hnsw_m=self.config.hnsw_m, hnsw_ef_search=self.config.hnsw_ef_search)
        for start in range(0, len(embeddings), _COPY_ROWS):
            index.add(embeddings[start : start + _COPY_ROWS])
        return index

    # ------------------------------------------------------------------ reading

    @property
    def version(self) -> int:
        """The loaded version; 0 for an empty memory that was never written."""
        return self._state.version

    @property
    def dim(self) -> int | None:
        return self._state.dim

    @property
    def encoder_fingerprint(self) -> str | None:
        return self._state.fingerprint

    @property
    def read_only(self) -> bool:
        return self._read_only

    def __len__(self) -> int:
        return self._state.n_live

    def __contains__(self, edit_id: object) -> bool:
        return isinstance(edit_id, str) and self.contains(edit_id)

    def contains(self, edit_id: str) -> bool:
        """True when ``edit_id`` is live (added and not removed)."""
        pos = self._state.positions.get(edit_id)
        return pos is not None and bool(self._state.live[pos])

    def ids(self) -> list[str]:
        """Live edit ids in position order."""
        st = self._state
        return [edit_id for edit_id, alive in zip(st.ids, st.live.tolist()) if alive]

    def get(self, edit_id: str) -> EditRecord:
        """The live record ``edit_id``; KeyError when absent or removed."""
        if not self.contains(edit_id):
            raise KeyError(edit_id)
        assert self._state.files is not None
        row = self._state.files.table.slice(self._state.positions[edit_id], 1).to_pylist()[0]
        return EditRecord.from_row(row)

    def table(self) -> pa.Table:
        """Live rows as an Arrow table in :data:`~serac.data.schema.EDIT_SCHEMA`, position order."""
        st = self._state
        if st.files is None:
            return EDIT_SCHEMA.empty_table()
        return st.files.table if st.n_live == st.rows else st.files.table.filter(pa.array(st.live))

    def records(self) -> list[EditRecord]:
        """Live records in position order (the order :meth:`reembed` expects)."""
        return table_to_records(self.table())

    def embeddings(self) -> np.ndarray:
        """Embeddings of the live records, float32 [len(self), dim], position order."""
        st = self._state
        if st.files is None:
            return np.empty((0, 0), dtype=np.float32)
        return st.files.embeddings if st.n_live == st.rows else st.files.embeddings[st.live]

    def versions(self) -> list[int]:
        """Committed versions still on disk, oldest first."""
        current = max(layout.read_current(self.root), self._state.version)
        return [v for v in layout.list_versions(self.root) if v <= current]

    def stats(self) -> dict[str, Any]:
        st = self._state
        return {
            "live": st.n_live,
            "tombstoned": st.rows - st.n_live,
            "rows": st.rows,
            "version": st.version,
            "dim": st.dim,
            "encoder_fingerprint": st.fingerprint,
            "bytes_on_disk": layout.dir_bytes(st.files.path) if st.files else 0,
            "index_kind": st.index.kind if st.index is not None else None,
        }

    def search(self, query_embeddings: np.ndarray, k: int) -> list[list[Hit]]:
        """The ``k`` live edits nearest each query by cosine, best first.

        ``query_embeddings`` is [n, dim] (or one [dim] vector: one result list). An empty
        memory gives ``n`` empty lists. Tombstoned rows are skipped: the index is asked for
        ``k`` plus some extra candidates, and queries left short are searched again with
        twice as many until they have ``k`` hits or the whole index was asked.
        """
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        queries = np.asarray(query_embeddings, dtype=np.float32)
        if queries.ndim == 1:
            queries = queries[None, :]
        if queries.ndim != 2:
            raise ValueError(f"query_embeddings: expected [n, dim], got shape {queries.shape}")
        st = self._state
        results: list[list[Hit]] = [[] for _ in range(len(queries))]
        if st.n_live == 0 or k == 0 or len(queries) == 0:
            return results
        if queries.shape[1] != st.dim:
            raise ValueError(f"query_embeddings: dimension {queries.shape[1]} != memory dimension {st.dim}")
        assert st.index is not None
        dead = st.rows - st.n_live
        fetch = min(st.rows, k + min(dead, max(k, 32)))
        pending = np.arange(len(queries))
        while len(pending):
            scores, positions = st.index.search(queries[pending], fetch)
            valid = positions >= 0
            alive = np.zeros_like(valid)
            alive[valid] = st.live[positions[valid]]
            take = alive & (np.cumsum(alive, axis=1) <= k)
            retry = []
            for row, qi in enumerate(pending.tolist()):
                cols = np.flatnonzero(take[row])
                if len(cols) < min(k, st.n_live) and fetch < st.rows:
                    retry.append(qi)
                    continue
                pos_list, score_list = positions[row, cols].tolist(), scores[row, cols].tolist()
                results[qi] = [Hit(st.ids[p], p, s) for p, s in zip(pos_list, score_list)]
            pending = np.asarray(retry, dtype=np.int64)
            fetch = min(st.rows, fetch * 2)
        return results

    # ----------------------------------------------------------------- writing

    def add(self, records: Sequence[EditRecord], embeddings: np.ndarray, encoder_fingerprint: str) -> AddResult:
        """Append ``records`` with their embeddings (row i embeds records[i]).

        Idempotent: ids already live are skipped, and a call that adds nothing writes no
        version. A removed id that comes back is revived at its old position with the new
        record and embedding. Raises ValueError when ``encoder_fingerprint`` or the
        embedding dimension differs from the memory's (fixed once it holds any row; see
        :meth:`reembed`), or when rows are not L2-normalised.
        """
        records = list(records)
        if not records:  # nothing to write: no lock, no directories
            if self._read_only:
                raise MemoryReadOnlyError(f"{self.root}: opened at version {self.version} read-only")
            self.refresh()
            self._check_fingerprint(self._state, encoder_fingerprint)
            return AddResult([], [], self.version)
        with self._writing() as st:
            self._check_fingerprint(st, encoder_fingerprint)
            emb = _checked_embeddings(embeddings, len(records), st.dim if st.rows else None)
            revive_pos: list[int] = []
            revive_src: list[int] = []
            append_src: list[int] = []
            added: list[str] = []
            skipped: list[str] = []
            seen: set[str] = set()
            for i, record in enumerate(records):
                edit_id = record.edit_id
                pos = st.positions.get(edit_id)
                if edit_id in seen or (pos is not None and st.live[pos]):
                    skipped.append(edit_id)
                    continue
                seen.add(edit_id)
                added.append(edit_id)
                if pos is None:
                    append_src.append(i)
                else:
                    revive_pos.append(pos)
                    revive_src.append(i)
            if not added:
                return AddResult([], skipped, st.version)

            n_old, dim = st.rows, emb.shape[1]
            n_total = n_old + len(append_src)
            old_emb = st.files.embeddings if st.files else np.empty((0, dim), dtype=np.float32)
            old_table = st.files.table if st.files else EDIT_SCHEMA.empty_table()
            new_table = records_to_table([records[i] for i in revive_src + append_src])
            table = pa.concat_tables([old_table, new_table])
            if revive_pos:
                take = np.arange(n_total)
                take[revive_pos] = n_old + np.arange(len(revive_pos))
                take[n_old:] = n_old + len(revive_pos) + np.arange(len(append_src))
                table = table.take(pa.array(take))

            def fill(out: np.ndarray) -> None:
                _copy_rows(out, old_emb, np.arange(n_old))
                out[revive_pos] = emb[revive_src]
                out[n_old:] = emb[append_src]

            kind = resolve_index_kind(self.config.index, n_total, self.config.ann_threshold)
            moved = bool(revive_pos) and not np.allclose(old_emb[revive_pos], emb[revive_src], atol=1e-6)
            current = st.index
            incremental = (
                current is not None and current.kind == kind and current.dim == dim and kind != "exact" and not moved
            )

            def make_index(final: np.ndarray) -> VectorIndex:
                if not incremental:
                    return self._build_index(kind, dim, final)
                # Append the new rows to the loaded faiss index in place (an HNSW rebuild is slow).
                assert current is not None
                current.add(emb[append_src])
                return current

            version = self._commit(
                st, table, _rows_writer(n_total, dim, fill), frozenset(st.tombstones - set(added)),
                dim, encoder_fingerprint, kind, make_index, mutates_index=incremental,
            )
            return AddResult(added, skipped, version)

    def remove(self, edit_ids: Iterable[str] | str) -> RemoveResult:
        """Tombstone ``edit_ids``: hidden from reads and search at once, rows kept until :meth:`compact`."""
        wanted = list(dict.fromkeys([edit_ids] if isinstance(edit_ids, str) else edit_ids))
        with self._writing() as st:
            removed = [i for i in wanted if i in st.positions and st.live[st.positions[i]]]
            removed_set = set(removed)
            unknown = [i for i in wanted if i not in removed_set]
            if not removed:
                return RemoveResult([], unknown, st.version)
            assert st.files is not None and st.index is not None
            index = st.index
            # Rows, embeddings and index are unchanged: the new version hard-links them.
            version = self._commit(
                st, st.files.path / layout.EDITS_FILE, st.files.path / layout.EMBEDDINGS_FILE,
                st.tombstones | removed_set, st.dim, st.fingerprint, index.kind, lambda _: index, reuse_index=True,
            )
            return RemoveResult(removed, unknown, version)

    def compact(self) -> int:
        """Write a version without tombstoned rows (renumbers positions); returns the version.

        Without tombstones nothing is written and the current version is returned.
        """
        with self._writing() as st:
            if st.files is None or st.n_live == st.rows:
                return st.version
            return self._rewrite_live(st, st.files.embeddings, st.fingerprint or "", live_rows_only=True)

    def reembed(self, embeddings: np.ndarray, encoder_fingerprint: str) -> int:
        """Replace every embedding (e.g. after the encoder changed); returns the new version.

        ``embeddings`` must be [len(self), dim] aligned with :meth:`records` / :meth:`ids`;
        ``dim`` may differ from the old one. The new version also drops tombstoned rows.
        Raises :class:`MemoryConflictError` when the memory changed on disk since this
        instance loaded it (the rows would not line up): ``refresh`` and encode again.
        """
        before = self._state.version
        with self._writing() as st:
            if st.version != before:
                raise MemoryConflictError(f"{self.root}: memory moved from v{before} to v{st.version}; re-encode")
            if not encoder_fingerprint or not isinstance(encoder_fingerprint, str):
                raise ValueError("encoder_fingerprint must be a non-empty string")
            emb = _checked_embeddings(embeddings, st.n_live, None)
            if st.files is None:
                return st.version
            return self._rewrite_live(st, emb, encoder_fingerprint, live_rows_only=False)

    def snapshot(self, dest_dir: str | Path) -> Path:
        """Copy the loaded version to ``dest_dir`` as a standalone memory root :meth:`open` reads."""
        dest = Path(dest_dir)
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise FileExistsError(f"{dest}: exists and is not an empty directory")
        st = self._state
        if st.files is None:
            dest.mkdir(parents=True, exist_ok=True)
            return dest
        # The lock keeps a writer's garbage collection away from the files being copied.
        with self._lock(), atomic_dir(dest) as tmp:
            shutil.copytree(st.files.path, layout.version_dir(tmp, st.version))
            layout.write_current(tmp, st.version)
        return dest

    # ---------------------------------------------------------------- internals

    def _check_fingerprint(self, st: _State, fingerprint: str) -> None:
        if not fingerprint or not isinstance(fingerprint, str):
            raise ValueError("encoder_fingerprint must be a non-empty string")
        if st.rows and fingerprint != st.fingerprint:
            raise ValueError(
                f"encoder fingerprint {fingerprint!r} != memory's {st.fingerprint!r}: "
                "embeddings come from another encoder; call reembed() first"
            )

    def _rewrite_live(self, st: _State, source: np.ndarray, fingerprint: str, *, live_rows_only: bool) -> int:
        """A version of the live rows only; ``source`` is all rows or, if not ``live_rows_only``, live rows."""
        assert st.files is not None
        keep = np.flatnonzero(st.live)
        rows_from = keep if live_rows_only else np.arange(len(keep))
        dim = source.shape[1]
        kind = resolve_index_kind(self.config.index, len(keep), self.config.ann_threshold)
        return self._commit(
            st, st.files.table.take(pa.array(keep)),
            _rows_writer(len(keep), dim, lambda out: _copy_rows(out, source, rows_from)),
            frozenset(), dim, fingerprint, kind, lambda e: self._build_index(kind, dim, e),
        )

    def _commit(
        self,
        st: _State,
        table: pa.Table | Path,
        embeddings: layout.EmbeddingsSource,
        tombstones: frozenset[str],
        dim: int | None,
        fingerprint: str | None,
        kind: str,
        make_index: Callable[[np.ndarray], VectorIndex],
        *,
        reuse_index: bool = False,
        mutates_index: bool = False,
    ) -> int:
        """Write version ``st.version + 1``, swap CURRENT, load it, garbage-collect."""
        version = st.version + 1
        built: list[VectorIndex] = []

        def write_index(path: Path) -> None:
            index = make_index(np.load(path.parent / layout.EMBEDDINGS_FILE, mmap_mode="r"))
            built.append(index)
            index.save(path)

        index_writer: Callable[[Path], None] | Path | None = None
        if kind in layout.PERSISTED_INDEX_KINDS:
            stored = st.files.index_path if st.files is not None and st.files.index_kind == kind else None
            index_writer = stored if reuse_index and stored is not None else write_index
        params = {"m": self.config.hnsw_m, "ef_construction": 40} if kind == "hnsw" else {}
        try:
            path = layout.write_version(
                self.root, version, parent=st.files, table=table, embeddings=embeddings, tombstones=tombstones,
                dim=dim, encoder_fingerprint=fingerprint, index_kind=kind, index_params=params,
                index_writer=index_writer,
            )
            layout.write_current(self.root, version)
        except BaseException:
            if mutates_index and built:
                # The loaded faiss index already holds the new rows: reload the old version.
                with contextlib.suppress(Exception):
                    self._state = self._load(st.version)
            raise
        files = layout.reopen_written(path, table if isinstance(table, pa.Table) else st.files.table, tombstones)
        index = built[0] if built else make_index(files.embeddings)
        self._state = _State(files, index)
        removed = layout.collect_garbage(self.root, version, self.config.keep_versions)
        if removed:
            log.debug("memory %s: removed versions %s", self.root, removed)
        return version

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
    def _writing(self) -> Iterator[_State]:
        """Hold the write lock, catch up with the committed version, clear a killed writer's leftovers."""
        if self._read_only:
            raise MemoryReadOnlyError(f"{self.root}: opened at version {self.version} read-only")
        with self._lock():
            self.refresh()
            layout.remove_leftovers(self.root, self._state.version)
            yield self._state

    def __repr__(self) -> str:
        return f"EditMemory({str(self.root)!r}, version={self.version}, live={len(self)}, dim={self.dim})"


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


def _copy_rows(out: np.ndarray, source: np.ndarray, rows: np.ndarray) -> None:
    """``out[:len(rows)] = source[rows]`` in bounded steps (``source`` may be a large memory map)."""
    for start in range(0, len(rows), _COPY_ROWS):
        chunk = rows[start : start + _COPY_ROWS]
        out[start : start + len(chunk)] = source[chunk]


def _rows_writer(n: int, dim: int, fill: Callable[[np.ndarray], None]) -> Callable[[Path], None]:
    """Write a float32 [n, dim] .npy at a path, filled in place through a memory map."""

    def write(path: Path) -> None:
        if n == 0:
            with open(path, "wb") as fh:
                np.save(fh, np.empty((0, dim), dtype=np.float32))
            return
        out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, dim))
        fill(out)
        out.flush()
        del out

    return write
