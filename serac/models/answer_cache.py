"""A persistent cache of a frozen base model's answers.

A frozen base model decoded greedily answers a query the same way every time,
and evaluation asks it the same locality and rephrase queries for every method
and memory size. :class:`CachedBaseModel` wraps any :class:`BaseModel` and keeps
its answers in ``<root>/<model key>.parquet``, where the key is a hash of the
model's ``describe()`` (name, revision, generation settings) and of its weights'
folder (:func:`weights_fingerprint`: file names, sizes and modification times):
another model, other settings or retrained weights never read this one's answers. New answers are written atomically
by :meth:`CachedBaseModel.flush` (also called after every ``predict`` that
produced some), so an interrupted evaluation keeps what it computed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from serac.io import write_parquet
from serac.models.base import ARTIFACT_BASE_KINDS, BaseModel
from serac.models.hub import resolve_name_or_path

CHUNK = 256
"""Queries generated between two writes of the cache file (an interrupted run keeps the rest)."""


def weights_fingerprint(folder: str | Path) -> str | None:
    """A hash of every file's relative name, size and mtime under ``folder`` (None: not a folder).

    Cheap (no file is read) and changes whenever a file is rewritten, e.g. by retraining."""
    root = Path(folder)
    if not root.is_dir():
        return None
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(root).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


def base_weights_fingerprint(base: BaseModel) -> str | None:
    """The fingerprint of the folder ``base`` loads its weights from: its own artifact (the
    pipeline-trained default) or its resolved name/path (``smollm2`` -> the local cache)."""
    artifact = getattr(base, "artifact_dir", None)
    if artifact is not None:
        return weights_fingerprint(artifact)
    name = base.describe().get("name_or_path")
    return weights_fingerprint(resolve_name_or_path(name)) if isinstance(name, str) else None


def cached_base_model(base: BaseModel, root: str | Path | None) -> BaseModel:
    """``base`` behind a persistent :class:`CachedBaseModel` under ``root`` when its answers can be
    cached: a Hugging Face base (frozen weights, greedy decoding). A ``callable`` or ``http`` base
    may change behind the same name, and ``root=None`` turns caching off: ``base`` is returned."""
    if root is None or isinstance(base, CachedBaseModel) or base.describe().get("kind") not in ARTIFACT_BASE_KINDS:
        return base
    return CachedBaseModel(base, root, fingerprint=base_weights_fingerprint(base))


def model_key(description: dict[str, Any]) -> str:
    """A stable hash of a base model's description (same model + settings -> same key)."""
    canonical = json.dumps(description, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:24]


class CachedBaseModel:
    """A :class:`BaseModel` whose answers are computed once per query and kept on disk."""

    def __init__(self, base: BaseModel, root: str | Path, *, fingerprint: str | None = None) -> None:
        self.base = base
        description = base.describe()
        self.key = model_key(description if fingerprint is None else {**description, "weights": fingerprint})
        self.path = Path(root) / f"{self.key}.parquet"
        self._answers: dict[str, str] = {}
        self._dirty = False
        if self.path.exists():
            table = pq.read_table(self.path)
            self._answers = dict(zip(table.column("query").to_pylist(), table.column("answer").to_pylist()))

    def __len__(self) -> int:
        return len(self._answers)

    def predict(self, queries: Sequence[str]) -> list[str]:
        queries = list(queries)
        missing = list(dict.fromkeys(q for q in queries if q not in self._answers))
        with tqdm(total=len(missing), desc="base model answers", unit="query", leave=False,
                  disable=len(missing) <= CHUNK) as bar:
            for start in range(0, len(missing), CHUNK):
                chunk = missing[start : start + CHUNK]
                self._answers.update(zip(chunk, self.base.predict(chunk)))
                self._dirty = True
                self.flush()
                bar.update(len(chunk))
        return [self._answers[q] for q in queries]

    def describe(self) -> dict[str, Any]:
        return self.base.describe()

    def flush(self) -> None:
        """Write the cache file atomically (no-op when nothing new was answered)."""
        if not self._dirty:
            return
        queries = list(self._answers)
        table = pa.table({"query": queries, "answer": [self._answers[q] for q in queries]})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_parquet(self.path, table)
        self._dirty = False
