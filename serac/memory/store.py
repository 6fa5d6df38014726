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
take an in-process lock plus an exclusive ``flock`` on ``<root>/.lock``
(:mod:`serac.memory.locking`) and first catch up with the newest committed version, so two
writers never lose each other's edits; readers take no lock, and one instance may serve many
reader threads while one thread writes. :meth:`EditMemory.read_view` pins one loaded version
for a caller that searches and then reads rows (:mod:`serac.memory.view`).

Parts: :mod:`serac.memory.loader` builds views of committed versions,
:mod:`serac.memory.commit` writes the next version, :mod:`serac.memory.legacy` upgrades the
first on-disk format.

Rows have *positions* (0..rows-1 in insertion order, stable until :meth:`compact`, which
drops tombstoned rows and renumbers). ``remove`` tombstones a position: hidden from reads and
search at once. A removed id that is added again gets a new row at a new position.
"""

from __future__ import annotations

import contextlib
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
from serac.memory import layout, legacy
from serac.memory.audit import AuditContext, Change, copy_trail, with_reason
from serac.memory.commit import VersionWriter, checked_embeddings
from serac.memory.layout import MemoryCorruptError
from serac.memory.loader import ViewLoader, empty_view
from serac.memory.locking import exclusive_lock
from serac.memory.view import Hit, MemoryView

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
        self._loader = ViewLoader(root, config)
        self._versions = VersionWriter(root, config, self._loader)
        self._view = empty_view()
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
            memory._view = memory._loader.load(version)
        else:
            memory._upgrade_legacy()
            memory.refresh()
        return memory

    def _upgrade_legacy(self) -> None:
        """Rewrite a memory whose current version is in the first format as a format-2 version."""
        if not legacy.needs_upgrade(self.root):
            return
        with self._write_lock, exclusive_lock(self.root):
            legacy.upgrade(self.root, self.config)

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
                self._view = self._loader.load(current)
                return True
            except MemoryCorruptError:
                # A writer may have committed and garbage-collected this version meanwhile.
                if attempt == 2 or layout.read_current(self.root) == current:
                    raise
        return False  # pragma: no cover

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

    def read_view(self) -> MemoryView:
        """The loaded version, pinned: positions its :meth:`MemoryView.search` returns stay valid for its
        :meth:`MemoryView.record_at`, whatever this instance writes meanwhile.

        For a caller that searches and then reads the matched rows (the scope router): ``compact``
        and ``reembed`` renumber positions in a new view, and a ``remove`` hides rows from every
        view at once but keeps them readable. Call again to see newer versions.
        """
        return self._view

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
        """The ``k`` live edits nearest each query by cosine, best first (see :meth:`MemoryView.search`)."""
        return self._view.search(query_embeddings, k)

    # ----------------------------------------------------------------- writing

    def add(self, records: Sequence[EditRecord], embeddings: np.ndarray, encoder_fingerprint: str, *,
            audit: AuditContext | None = None) -> AddResult:
        """Append ``records`` with their embeddings (row i embeds records[i]).

        Idempotent: ids already live are skipped, and a call that adds nothing writes no
        version. A removed id that comes back gets a new row. Raises ValueError when
        ``encoder_fingerprint`` or the embedding dimension differs from the memory's (fixed
        once it holds any row; see :meth:`reembed`), or when rows are not L2-normalised.
        Each mutation that commits appends an audit record (:mod:`serac.memory.audit`) by ``audit`` (default: OS user).
        """
        records = list(records)
        return self.add_table(records_to_table(records), embeddings, encoder_fingerprint, audit=audit)

    def add_table(self, table: pa.Table, embeddings: np.ndarray, encoder_fingerprint: str, *,
                  audit: AuditContext | None = None) -> AddResult:
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
            emb = checked_embeddings(embeddings, table.num_rows, view.dim if view.rows else None)
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
            change = Change("add", with_reason(audit), tuple(added), tuple(table.column("source").to_pylist()))
            self._view = self._versions.append(view, table, emb, encoder_fingerprint, change)
            return AddResult(added, skipped, self._view.version)

    def remove(self, edit_ids: Iterable[str] | str, *, audit: AuditContext | None = None) -> RemoveResult:
        """Tombstone ``edit_ids``: hidden from reads and search at once, rows kept until :meth:`compact`."""
        wanted = list(dict.fromkeys([edit_ids] if isinstance(edit_ids, str) else edit_ids))
        with self._writing() as view:
            positions = {i: view.position(i) for i in wanted}
            removed = [i for i, p in positions.items() if p is not None]
            unknown = [i for i, p in positions.items() if p is None]
            if not removed:
                return RemoveResult([], unknown, view.version)
            change = Change("remove", with_reason(audit), tuple(removed))
            self._view = self._versions.tombstone(view, [positions[i] for i in removed], change)
            return RemoveResult(removed, unknown, self._view.version)

    def compact(self, *, audit: AuditContext | None = None) -> int:
        """Write a version without tombstoned rows (renumbers positions); returns the version.

        Without tombstones nothing is written and the current version is returned.
        """
        with self._writing() as view:
            if view.manifest is None or view.n_live == view.rows:
                return view.version
            keep = np.flatnonzero(view.live_mask())
            self._view = self._versions.rewrite(view, keep, None, view.fingerprint or "", Change("compact", with_reason(audit)))
            return self._view.version

    def reembed(self, embeddings: np.ndarray, encoder_fingerprint: str, *, audit: AuditContext | None = None) -> int:
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
            emb = checked_embeddings(embeddings, view.n_live, None)
            if view.manifest is None:
                return view.version
            change = Change("reembed", with_reason(audit))
            self._view = self._versions.rewrite(view, np.flatnonzero(view.live_mask()), emb, encoder_fingerprint, change)
            return self._view.version

    def snapshot(self, dest_dir: str | Path) -> Path:
        """Copy the loaded version to ``dest_dir`` as a standalone memory root :meth:`open` reads.

        Segment files are hard-linked where the filesystem allows (they are never modified); the
        audit trail is copied up to the loaded version.
        """
        dest = Path(dest_dir)
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise FileExistsError(f"{dest}: exists and is not an empty directory")
        view = self._view
        if view.manifest is None:
            dest.mkdir(parents=True, exist_ok=True)
            return dest
        # The lock keeps a writer's garbage collection away from the files being copied.
        with exclusive_lock(self.root), atomic_dir(dest) as tmp:
            shutil.copytree(view.manifest.path, layout.version_dir(tmp, view.version))
            for s in view.segments:
                shutil.copytree(s.path, layout.segment_dir(tmp, s.name), copy_function=_link_or_copy)
            layout.write_current(tmp, view.version)
            copy_trail(self.root, tmp, view.version)
        return dest

    # ---------------------------------------------------------------- internals

    def _check_fingerprint(self, view: MemoryView, fingerprint: str) -> None:
        if not fingerprint or not isinstance(fingerprint, str):
            raise ValueError("encoder_fingerprint must be a non-empty string")
        if view.rows and fingerprint != view.fingerprint:
            raise ValueError(
                f"encoder fingerprint {fingerprint!r} != memory's {view.fingerprint!r}: "
                "embeddings come from another encoder; call reembed() first"
            )

    @contextlib.contextmanager
    def _writing(self) -> Iterator[MemoryView]:
        """Hold the write locks, catch up with the committed version, clear a killed writer's leftovers."""
        if self._read_only:
            raise MemoryReadOnlyError(f"{self.root}: opened at version {self.version} read-only")
        with self._write_lock, exclusive_lock(self.root):
            self.refresh()
            layout.remove_leftovers(self.root, self._view.version)
            if not self._trash_checked:  # what a killed process retired but did not delete
                self._trash_checked = True
                threading.Thread(target=layout.empty_trash, kwargs={"root": self.root}, daemon=True).start()
            yield self._view

    def __repr__(self) -> str:
        return f"EditMemory({str(self.root)!r}, version={self.version}, live={len(self)}, dim={self.dim})"


def _link_or_copy(source: str, dest: str) -> str:
    layout.link_or_copy(Path(source), Path(dest))
    return dest

