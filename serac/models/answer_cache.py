"""A persistent cache of a frozen base model's answers.

A frozen base model decoded greedily answers a query the same way every time,
and evaluation asks it the same locality and rephrase queries for every method
and memory size. :class:`CachedBaseModel` wraps any :class:`BaseModel` and keeps
its answers in ``<root>/<model key>.parquet``, where the key is a hash of the
model's ``describe()`` (name, revision, generation settings): another model or
other settings never read this one's answers. New answers are written atomically
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

from serac.io import write_parquet
from serac.models.base import BaseModel


def model_key(description: dict[str, Any]) -> str:
    """A stable hash of a base model's description (same model + settings -> same key)."""
    canonical = json.dumps(description, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:24]


class CachedBaseModel:
    """A :class:`BaseModel` whose answers are computed once per query and kept on disk."""

    def __init__(self, base: BaseModel, root: str | Path) -> None:
        self.base = base
        self.key = model_key(base.describe())
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
        if missing:
            for query, answer in zip(missing, self.base.predict(missing)):
                self._answers[query] = answer
            self._dirty = True
            self.flush()
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
