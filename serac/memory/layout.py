"""The on-disk format of the edit memory: version directories, manifest, ``CURRENT``.

::

    <root>/
      CURRENT                 "v000007": the committed version, replaced atomically, last
      .lock                   flock'ed by the single writer
      versions/v000007/
        edits.parquet         every row, live or tombstoned (EDIT_SCHEMA); row i = position i
        embeddings.npy        float32 [rows, dim], L2-normalised; np.load(mmap_mode="r")
        tombstones.json       sorted edit_ids removed but not yet compacted away
        index.faiss           only for kind "hnsw" (see below)
        manifest.json         version, parent, counts, dim, encoder fingerprint, index kind,
                              sha256 + size of every file above, library versions

Version directories are immutable once renamed into place: a new version either writes a
file afresh or hard-links the parent's unchanged file (``remove`` links all three data
files). Only an HNSW index is persisted: an exact or faiss-flat index is a plain copy of
``embeddings.npy`` and is rebuilt from it on open in a fraction of the time it takes to read
a second copy, while an HNSW graph takes minutes to build at 10^6 rows.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from serac import __version__ as SERAC_VERSION
from serac.data.schema import EDIT_SCHEMA
from serac.io import atomic_dir, fsync_path, write_bytes, write_json

FORMAT = "serac-memory/1"
CURRENT_FILE = "CURRENT"
LOCK_FILE = ".lock"
VERSIONS_DIR = "versions"
EDITS_FILE = "edits.parquet"
EMBEDDINGS_FILE = "embeddings.npy"
TOMBSTONES_FILE = "tombstones.json"
INDEX_FILE = "index.faiss"
MANIFEST_FILE = "manifest.json"
PERSISTED_INDEX_KINDS = frozenset({"hnsw"})

_VERSION_NAME = re.compile(r"^v(\d{6,})$")
_HASH_CHUNK = 1 << 22


class MemoryCorruptError(RuntimeError):
    """A memory file is missing, unreadable or fails its checksum; ``path`` names it."""

    def __init__(self, path: str | Path, message: str):
        self.path = str(path)
        super().__init__(f"{self.path}: {message}")


def version_name(version: int) -> str:
    return f"v{version:06d}"


def parse_version_name(name: str) -> int | None:
    match = _VERSION_NAME.match(name)
    return int(match.group(1)) if match else None


def version_dir(root: Path, version: int) -> Path:
    return root / VERSIONS_DIR / version_name(version)


def read_current(root: Path) -> int:
    """The committed version named by ``CURRENT``; 0 when there is none (an empty memory)."""
    path = root / CURRENT_FILE
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return 0
    except (OSError, UnicodeDecodeError) as exc:
        raise MemoryCorruptError(path, f"unreadable: {exc}") from exc
    version = parse_version_name(text)
    if version is None:
        raise MemoryCorruptError(path, f"expected a version name like v000001, got {text[:40]!r}")
    return version


def write_current(root: Path, version: int) -> None:
    write_bytes(root / CURRENT_FILE, (version_name(version) + "\n").encode("ascii"))


def list_versions(root: Path) -> list[int]:
    """Version numbers with a directory under ``root/versions`` (hidden temporaries excluded)."""
    base = root / VERSIONS_DIR
    if not base.is_dir():
        return []
    found = (parse_version_name(p.name) for p in base.iterdir() if p.is_dir())
    return sorted(v for v in found if v is not None)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class VersionFiles:
    """One loaded version directory."""

    path: Path
    manifest: dict[str, Any]
    table: pa.Table
    embeddings: np.ndarray
    """float32 [rows, dim], a read-only memory map (or an in-RAM array for 0 rows)."""
    tombstones: frozenset[str]

    @property
    def version(self) -> int:
        return int(self.manifest["version"])

    @property
    def index_kind(self) -> str:
        return str(self.manifest["index"]["kind"])

    @property
    def index_path(self) -> Path | None:
        return self.path / INDEX_FILE if INDEX_FILE in self.manifest["files"] else None


def read_version(path: Path, verify_checksums: bool = True) -> VersionFiles:
    """Load and check one version directory; any problem raises :class:`MemoryCorruptError`."""
    manifest_path = path / MANIFEST_FILE
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise MemoryCorruptError(manifest_path, "missing") from exc
    except (OSError, ValueError) as exc:
        raise MemoryCorruptError(manifest_path, f"not valid JSON (truncated?): {exc}") from exc
    try:
        files = manifest["files"]
        rows = int(manifest["counts"]["rows"])
        dim = manifest["dim"]
        kind = manifest["index"]["kind"]
        int(manifest["version"])
    except (KeyError, TypeError, ValueError) as exc:
        raise MemoryCorruptError(manifest_path, f"missing or bad field: {exc}") from exc
    if manifest.get("format") != FORMAT:
        raise MemoryCorruptError(manifest_path, f"unknown format {manifest.get('format')!r}")
    required = [EDITS_FILE, EMBEDDINGS_FILE, TOMBSTONES_FILE]
    if kind in PERSISTED_INDEX_KINDS:
        required.append(INDEX_FILE)
    for name in required:
        if name not in files:
            raise MemoryCorruptError(manifest_path, f"does not list {name}")
    for name, meta in files.items():
        file_path = path / name
        if not isinstance(meta, dict) or not {"sha256", "bytes"} <= meta.keys() or "/" in name:
            raise MemoryCorruptError(manifest_path, f"bad entry for {name!r}")
        if not file_path.is_file():
            raise MemoryCorruptError(file_path, "missing")
        if file_path.stat().st_size != meta["bytes"]:
            raise MemoryCorruptError(file_path, f"size {file_path.stat().st_size} != {meta['bytes']} in manifest")
        if verify_checksums and sha256_file(file_path) != meta["sha256"]:
            raise MemoryCorruptError(file_path, "sha256 does not match the manifest")

    edits_path = path / EDITS_FILE
    try:
        table = pq.read_table(edits_path).cast(EDIT_SCHEMA)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise MemoryCorruptError(edits_path, f"unreadable Parquet: {exc}") from exc
    if table.num_rows != rows:
        raise MemoryCorruptError(edits_path, f"{table.num_rows} rows, manifest says {rows}")

    emb_path = path / EMBEDDINGS_FILE
    try:
        embeddings = np.load(emb_path, mmap_mode="r") if rows else np.load(emb_path)
    except Exception as exc:
        raise MemoryCorruptError(emb_path, f"unreadable .npy: {exc}") from exc
    expected = (rows, dim if dim is not None else 0)
    if embeddings.dtype != np.float32 or embeddings.shape != expected:
        raise MemoryCorruptError(emb_path, f"{embeddings.dtype} {embeddings.shape}, expected float32 {expected}")

    tomb_path = path / TOMBSTONES_FILE
    try:
        tombstones = json.loads(tomb_path.read_text(encoding="utf-8"))
        if not isinstance(tombstones, list) or not all(isinstance(t, str) for t in tombstones):
            raise ValueError("expected a JSON list of edit ids")
    except (OSError, ValueError) as exc:
        raise MemoryCorruptError(tomb_path, f"unreadable: {exc}") from exc
    return VersionFiles(path, manifest, table, embeddings, frozenset(tombstones))


def reopen_written(path: Path, table: pa.Table, tombstones: frozenset[str]) -> VersionFiles:
    """A version this process just wrote, without reading back the rows it still holds."""
    manifest = json.loads((path / MANIFEST_FILE).read_text(encoding="utf-8"))
    emb_path = path / EMBEDDINGS_FILE
    embeddings = np.load(emb_path, mmap_mode="r") if table.num_rows else np.load(emb_path)
    return VersionFiles(path, manifest, table, embeddings, tombstones)


EmbeddingsSource = np.ndarray | Callable[[Path], None] | Path
"""What a new version's embeddings.npy comes from: an array to save, a function that
writes the file at the path it is given, or the parent's file to hard-link."""


def write_version(
    root: Path,
    version: int,
    *,
    parent: VersionFiles | None,
    table: pa.Table | Path,
    embeddings: EmbeddingsSource,
    tombstones: frozenset[str],
    dim: int | None,
    encoder_fingerprint: str | None,
    index_kind: str,
    index_params: dict[str, Any],
    index_writer: Callable[[Path], None] | Path | None,
) -> Path:
    """Write ``versions/vNNNNNN`` completely (via :func:`serac.io.atomic_dir`) and return it.

    ``table`` / ``embeddings`` / ``index_writer`` given as a :class:`Path` are hard-linked
    (copied where links are not supported) and keep the parent's checksum. ``CURRENT`` is
    not touched: the caller swaps it once this returns.
    """
    target = version_dir(root, version)
    parent_files = parent.manifest["files"] if parent is not None else {}
    files: dict[str, dict[str, Any]] = {}
    with atomic_dir(target) as tmp:

        def place(name: str, source: Any, write: Callable[[Path], None]) -> None:
            dest = tmp / name
            if isinstance(source, Path):
                _link_or_copy(source, dest)
                meta = parent_files.get(name) if source.parent == (parent.path if parent else None) else None
                files[name] = meta or {"sha256": sha256_file(dest), "bytes": dest.stat().st_size}
            else:
                write(dest)
                fsync_path(dest)
                files[name] = {"sha256": sha256_file(dest), "bytes": dest.stat().st_size}

        place(EDITS_FILE, table, lambda p: pq.write_table(table, p))
        place(EMBEDDINGS_FILE, embeddings, lambda p: _save_embeddings(p, embeddings))
        tomb_bytes = (json.dumps(sorted(tombstones), indent=0) + "\n").encode("utf-8")
        place(TOMBSTONES_FILE, None, lambda p: p.write_bytes(tomb_bytes))
        if index_kind in PERSISTED_INDEX_KINDS:
            assert index_writer is not None, "a persisted index kind needs an index writer"
            place(INDEX_FILE, index_writer, index_writer if callable(index_writer) else _no_write)
        rows = _rows_of(table, parent)
        manifest = {
            "format": FORMAT,
            "version": version,
            "parent_version": parent.version if parent is not None else None,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "counts": {"rows": rows, "live": rows - len(tombstones), "tombstoned": len(tombstones)},
            "dim": dim,
            "encoder_fingerprint": encoder_fingerprint,
            "index": {"kind": index_kind, **index_params},
            "files": files,
            "serac_version": SERAC_VERSION,
            "libraries": _library_versions(),
        }
        write_json(tmp / MANIFEST_FILE, manifest)
    return target


def collect_garbage(root: Path, current: int, keep: int) -> list[int]:
    """Delete versions beyond the newest ``keep`` at or below ``current``; return those removed.

    Call only while holding the write lock. Readers that already opened a removed version
    keep working on POSIX (open files and memory maps outlive the unlink).
    """
    committed = [v for v in list_versions(root) if v <= current]
    doomed = committed[:-keep] if keep > 0 else committed
    for v in doomed:
        shutil.rmtree(version_dir(root, v), ignore_errors=True)
    return doomed


def remove_leftovers(root: Path, current: int) -> None:
    """Delete what a killed writer left behind: temporaries and versions never committed.

    Call only while holding the write lock (no other writer can be mid-write then).
    """
    base = root / VERSIONS_DIR
    if base.is_dir():
        for entry in base.iterdir():
            number = parse_version_name(entry.name)
            if entry.name.startswith(".") or (number is not None and number > current):
                shutil.rmtree(entry, ignore_errors=True)
    for entry in root.glob(f".{CURRENT_FILE}.*.tmp"):
        entry.unlink(missing_ok=True)


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file()) if path.is_dir() else 0


def _no_write(path: Path) -> None:
    """Placeholder writer for a file that is linked, never written."""


def _rows_of(table: pa.Table | Path, parent: VersionFiles | None) -> int:
    if isinstance(table, Path):
        assert parent is not None
        return parent.table.num_rows
    return table.num_rows


def _save_embeddings(path: Path, source: Any) -> None:
    if callable(source):
        source(path)
    else:
        with open(path, "wb") as fh:
            np.save(fh, np.ascontiguousarray(source, dtype=np.float32))


def _link_or_copy(source: Path, dest: Path) -> None:
    try:
        os.link(source, dest)
    except OSError:
        shutil.copy2(source, dest)


def _library_versions() -> dict[str, str]:
    versions = {"numpy": np.__version__, "pyarrow": pa.__version__}
    with contextlib.suppress(ImportError):
        import faiss

        versions["faiss"] = faiss.__version__
    return versions
