"""``serac generate``: write a generated task's prepared splits from prepared source datasets.

For each split, the first ``max_source_edits[split]`` records of every source dataset
(``data/prepared/<source>/<split>.parquet``, file order) get their nearest neighbours
among the same source split (:func:`~serac.data.generators.nearest_by_embedding` over
MiniLM embeddings of ``edit_input``) and go through the task's generator; the sources'
outputs are interleaved (one record of each in turn), so a training cap keeps every
source. Splits follow the sources' splits: no generated record shares a source edit
with another split. Output: ``<prepared_dir>/<task>/<split>.parquet``, then validated
like any prepared dataset (``serac validate``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path

import numpy as np

from serac.data.generators import GENERATORS, generate, nearest_by_embedding
from serac.data.prepare import read_split
from serac.data.schema import EditRecord, records_to_table
from serac.io import write_parquet

Encode = Callable[[list[str]], np.ndarray]
"""Texts -> unit-norm embeddings (rows)."""

SPLITS = ("train", "val", "test")


@dataclass
class GenerateReport:
    task: str
    sources: list[str]
    splits: dict[str, int] = field(default_factory=dict)
    skipped: int = 0
    """Source edits without a usable ground truth."""


def minilm_encode() -> Encode:
    """The offline MiniLM sentence encoder (untrained), as an :data:`Encode` function."""
    from serac.models.encoder import TextEncoder  # deferred: torch + transformers load only when encoding here

    encoder = TextEncoder.from_pretrained("minilm")
    return lambda texts: encoder.encode(texts)


def interleave(parts: Sequence[Sequence[EditRecord]]) -> list[EditRecord]:
    return [r for group in zip_longest(*parts) for r in group if r is not None]


def generate_dataset(
    task: str,
    sources: Sequence[str],
    prepared_dir: str | Path,
    *,
    neighbours: int = 2,
    max_source_edits: dict[str, int] | None = None,
    encode: Encode | None = None,
    out_dir: str | Path | None = None,
) -> GenerateReport:
    """Generate ``task`` from ``sources`` into ``out_dir`` (default ``<prepared_dir>/<task>``)."""
    if task not in GENERATORS:
        raise ValueError(f"no generator for task {task!r}; expected one of {sorted(GENERATORS)}")
    encode = encode or minilm_encode()
    out = Path(out_dir) if out_dir is not None else Path(prepared_dir) / task
    report = GenerateReport(task, list(sources))
    for split in SPLITS:
        limit = (max_source_edits or {}).get(split)
        parts = []
        for source in sources:
            records = read_split(prepared_dir, source, split, limit=limit)
            near = nearest_by_embedding(encode([r.edit_input for r in records]), neighbours) if records else []
            made = generate(task, records, near)
            report.skipped += len(records) - len(made)
            parts.append(made)
        records = interleave(parts)
        write_parquet(out / f"{split}.parquet", records_to_table(records))
        report.splits[split] = len(records)
    return report
