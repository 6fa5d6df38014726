"""The on-disk format of the edit memory: segments, version manifests, ``CURRENT``.

::

    <root>/
      CURRENT                    "v000007": the committed version, replaced atomically, last
      .lock                      flock'ed by the single writer
      audit.jsonl                one hash-chained record per change (see serac.memory.audit)
      segments/<name>/           immutable once renamed into place (see serac.memory.segment)
        edits.parquet            the segment's rows (EDIT_SCHEMA)
        embeddings.npy           float32 or float16 [rows, dim], L2-normalised, memory-mapped
        index.faiss              HNSW over the rows (sealed segments of kind "hnsw" only)
        segment.json             rows, dim, dtype, index kind, sha256 + size of each file above
      versions/v000007/
        manifest.json            version, parent, counts, dim, encoder fingerprint, index kind,
                                 the ordered segment list (name, rows, sha256 of segment.json),
                                 sha256 of tombstones.json, library versions
        tombstones.json          sorted row *positions* removed but not yet compacted away

A version is an ordered list of segments: row positions run through them in order
(segment 0 holds positions 0..rows0-1, and so on). Versions share segments, so adding one
edit writes one tiny segment plus a small manifest instead of copying the whole memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from serac import __version__ as SERAC_VERSION
from serac.io import atomic_dir, write_bytes, write_json

FORMAT = "serac-memory/2"
CURRENT_FILE = "CURRENT"
LOCK_FILE = ".lock"
VERSIONS_DIR = "versions"
SEGMENTS_DIR = "segments"
MANIFEST_FILE = "manifest.json"
TOMBSTONES_FILE = "tombstones.json"
TRASH_DIR = ".trash"

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


def segment_dir(root: Path, name: str) -> Path:
    return root / SEGMENTS_DIR / name


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


def file_meta(path: Path) -> dict[str, Any]:
    return {"sha256": sha256_file(path), "bytes": path.stat().st_size}


def check_file(path: Path, meta: Any, verify: bool) -> None:
    """Raise :class:`MemoryCorruptError` when ``path`` is missing, has the wrong size or (``verify``) hash."""
    if not isinstance(meta, dict) or not {"sha256", "bytes"} <= meta.keys():
        raise MemoryCorruptError(path, "bad checksum entry in its manifest")
    if not path.is_file():
        raise MemoryCorruptError(path, "missing")
    size = path.stat().st_size
    if size != meta["bytes"]:
        raise MemoryCorruptError(path, f"size {size} != {meta['bytes']} in manifest")
    if verify and sha256_file(path) != meta["sha256"]:
        raise MemoryCorruptError(path, "sha256 does not match the manifest")


def read_json_file(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise MemoryCorruptError(path, "missing") from exc
    except (OSError, ValueError) as exc:
        raise MemoryCorruptError(path, f"not valid JSON (truncated?): {exc}") from exc


@dataclass(frozen=True)
class SegmentRef:
    """A segment as a version manifest lists it: its name and what is needed to check and open it."""

    name: str
    rows: int
    index: str | None
    """``hnsw`` / ``flat`` for a sealed segment searched by its own index; None for a delta segment."""
    meta: dict[str, Any]
    """``dim``, ``dtype``, ``index_params`` and ``files`` (sha256 + size of each data file)."""

    def to_json(self) -> dict[str, Any]:
        return {**self.meta, "name": self.name, "rows": self.rows, "index": self.index}


@dataclass(frozen=True)
class Manifest:
    """One committed version: which segments, which positions are tombstoned, and metadata."""

    path: Path
    raw: dict[str, Any]
    segments: tuple[SegmentRef, ...]
    tombstones: np.ndarray
    """Sorted int64 positions."""

    @property
    def version(self) -> int:
        return int(self.raw["version"])

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.segments)

    @property
    def dim(self) -> int | None:
        return self.raw["dim"]

    @property
    def fingerprint(self) -> str | None:
        return self.raw["encoder_fingerprint"]

    @property
    def next_segment(self) -> int:
        return int(self.raw.get("next_segment", len(self.segments) + 1))


def read_manifest(path: Path) -> Manifest:
    """Load and check ``versions/vNNNNNN`` (manifest + tombstones); segments are checked by their reader."""
    manifest_path = path / MANIFEST_FILE
    raw = read_json_file(manifest_path)
    try:
        if raw.get("format") != FORMAT:
            hint = " (the first format: EditMemory.open(root) upgrades it)" if raw.get("format") == "serac-memory/1" else ""
            raise MemoryCorruptError(manifest_path, f"unknown format {raw.get('format')!r}{hint}")
        int(raw["version"])
        segments = tuple(
            SegmentRef(str(s["name"]), int(s["rows"]), s["index"],
                       {k: v for k, v in s.items() if k not in ("name", "rows", "index")})
            for s in raw["segments"]
        )
        tomb_meta = raw["files"][TOMBSTONES_FILE]
        raw["dim"], raw["encoder_fingerprint"], raw["index"]["kind"]  # noqa: B018 - presence check
    except MemoryCorruptError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MemoryCorruptError(manifest_path, f"missing or bad field: {exc}") from exc
    for ref in segments:
        if "/" in ref.name or ref.name.startswith("."):
            raise MemoryCorruptError(manifest_path, f"bad segment name {ref.name!r}")
    tomb_path = path / TOMBSTONES_FILE
    check_file(tomb_path, tomb_meta, verify=True)  # small: always verified
    try:
        values = json.loads(tomb_path.read_text(encoding="utf-8"))
        if not isinstance(values, list) or not all(isinstance(t, int) for t in values):
            raise ValueError("expected a JSON list of row positions")
    except (OSError, ValueError) as exc:
        raise MemoryCorruptError(tomb_path, f"unreadable: {exc}") from exc
    tombstones = np.unique(np.asarray(values, dtype=np.int64))
    rows = sum(s.rows for s in segments)
    if len(tombstones) and (tombstones[0] < 0 or tombstones[-1] >= rows):
        raise MemoryCorruptError(tomb_path, f"position outside 0..{rows - 1}")
    return Manifest(path, raw, segments, tombstones)


def write_version(
    root: Path,
    version: int,
    *,
    parent: Manifest | None,
    segments: list[SegmentRef],
    tombstones: np.ndarray,
    dim: int | None,
    encoder_fingerprint: str | None,
    embedding_dtype: str,
    index: dict[str, Any],
    next_segment: int,
) -> Path:
    """Write ``versions/vNNNNNN`` (via :func:`serac.io.atomic_dir`) and return it; CURRENT is untouched.

    An unchanged tombstones file is hard-linked from the parent version.
    """
    target = version_dir(root, version)
    tombstones = np.unique(np.asarray(tombstones, dtype=np.int64))
    rows = sum(s.rows for s in segments)
    with atomic_dir(target) as tmp:
        tomb_path = tmp / TOMBSTONES_FILE
        if parent is not None and np.array_equal(parent.tombstones, tombstones):
            link_or_copy(parent.path / TOMBSTONES_FILE, tomb_path)
            tomb_meta = parent.raw["files"][TOMBSTONES_FILE]
        else:
            tomb_path.write_bytes((json.dumps(tombstones.tolist()) + "\n").encode("utf-8"))
            tomb_meta = file_meta(tomb_path)
        manifest = {
            "format": FORMAT,
            "version": version,
            "parent_version": parent.version if parent is not None else None,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "counts": {"rows": rows, "live": rows - len(tombstones), "tombstoned": len(tombstones)},
            "dim": dim,
            "encoder_fingerprint": encoder_fingerprint,
            "embedding_dtype": embedding_dtype,
            "index": index,
            "segments": [s.to_json() for s in segments],
            "next_segment": next_segment,
            "files": {TOMBSTONES_FILE: tomb_meta},
            "serac_version": SERAC_VERSION,
            "libraries": library_versions(),
        }
        write_json(tmp / MANIFEST_FILE, manifest)
    return target


def referenced_segments(root: Path, versions: list[int]) -> set[str]:
    """Segment names listed by the manifests of ``versions`` (unreadable manifests list none)."""
    names: set[str] = set()
    for v in versions:
        with contextlib.suppress(Exception):
            raw = json.loads((version_dir(root, v) / MANIFEST_FILE).read_text(encoding="utf-8"))
            names.update(str(s["name"]) for s in raw["segments"])
    return names


def collect_garbage(root: Path, current: int, keep: int) -> list[Path]:
    """Retire versions beyond the newest ``keep`` at or below ``current`` and the segments only
    they list: each is renamed into ``<root>/.trash/`` (cheap) and returned for the caller to
    delete, e.g. on a background thread (:func:`empty_trash`). Call only while holding the
    write lock. Readers that already opened a retired version keep working on POSIX.
    """
    committed = [v for v in list_versions(root) if v <= current]
    doomed = committed[:-keep] if keep > 0 else committed
    if not doomed:
        return []
    # Only segments a doomed version lists and no kept version does: no directory scan.
    unused = referenced_segments(root, doomed) - referenced_segments(root, committed[len(doomed) :])
    trash = root / TRASH_DIR
    trash.mkdir(exist_ok=True)
    moved = []
    for path in [version_dir(root, v) for v in doomed] + [segment_dir(root, n) for n in sorted(unused)]:
        dest = trash / f"{path.parent.name}-{path.name}-{os.urandom(3).hex()}"
        with contextlib.suppress(FileNotFoundError):
            os.replace(path, dest)
            moved.append(dest)
    return moved


def empty_trash(paths: list[Path] | None = None, root: Path | None = None) -> None:
    """Delete retired ``paths`` (or everything in ``root``'s trash); missing ones are fine."""
    if paths is None and root is not None:
        base = root / TRASH_DIR
        paths = list(base.iterdir()) if base.is_dir() else []
    for path in paths or []:
        shutil.rmtree(path, ignore_errors=True)


def remove_leftovers(root: Path, current: int) -> None:
    """Delete what a killed writer left behind: temporaries, versions never committed and
    segments no committed version lists. Call only while holding the write lock."""
    base = root / VERSIONS_DIR
    if base.is_dir():
        for entry in base.iterdir():
            number = parse_version_name(entry.name)
            if entry.name.startswith(".") or (number is not None and number > current):
                shutil.rmtree(entry, ignore_errors=True)
    for entry in root.glob(f".{CURRENT_FILE}.*.tmp"):
        entry.unlink(missing_ok=True)
    _remove_unreferenced_segments(root, [v for v in list_versions(root) if v <= current])


def _remove_unreferenced_segments(root: Path, versions: list[int]) -> None:
    base = root / SEGMENTS_DIR
    if not base.is_dir():
        return
    keep = referenced_segments(root, versions)
    for entry in base.iterdir():
        if entry.name not in keep:
            shutil.rmtree(entry, ignore_errors=True)


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file()) if path.is_dir() else 0


def link_or_copy(source: Path, dest: Path) -> None:
    try:
        os.link(source, dest)
    except OSError:
        shutil.copy2(source, dest)


def library_versions() -> dict[str, str]:
    versions = {"numpy": np.__version__, "pyarrow": pa.__version__}
    with contextlib.suppress(ImportError):
        import faiss

        versions["faiss"] = faiss.__version__
    return versions
