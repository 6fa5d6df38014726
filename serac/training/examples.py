"""Training examples derived from edit records (pure functions, no models).

- Scope classifier (paper, sec. 3): positives are (edit, in-scope input) pairs,
  including the edit input itself; negatives are the edit's out-of-scope inputs
  and *hard negatives*: inputs of the nearest other edits by embedding.
- Counterfactual model: label-swapped copies of the task's examples
  (:mod:`serac.tasks.examples` holds the examples every task starts from).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from serac.data.schema import EditRecord
from serac.tasks.examples import CounterfactualExample


@dataclass(frozen=True)
class ScopePair:
    edit: int
    """Index of the edit in the record list."""
    query: str
    in_scope: bool
    hard: bool = False
    """A generated negative (nearest other edit, same-subject / other-relation query), not one of
    the dataset's own out-of-scope queries: losses weigh the two kinds separately."""


def scope_pairs(
    records: Sequence[EditRecord],
    neighbours: Sequence[Sequence[int]] | None = None,
    extra_negatives: Sequence[Sequence[str]] | None = None,
) -> list[ScopePair]:
    """Positive and negative (edit, query) pairs for the scope classifier.

    ``neighbours[i]`` lists the indices of the nearest other edits of edit ``i``;
    their inputs become hard negatives of edit ``i`` (a neighbour with the same edit id,
    an upsampled copy, is skipped). ``extra_negatives[i]`` are more negative queries of
    edit ``i`` (same-subject / other-relation ones, :mod:`serac.data.relations`). A query
    that is also in scope of edit ``i`` (same text) is never used as its negative.
    """
    pairs: list[ScopePair] = []
    for i, rec in enumerate(records):
        positives = {rec.edit_input, *(e.input for e in rec.in_scope)}
        pairs.extend(ScopePair(i, q, True) for q in sorted(positives))
        negatives = [(e.input, False) for e in rec.out_of_scope]
        if extra_negatives is not None:
            negatives.extend((q, True) for q in extra_negatives[i])
        for j in (neighbours[i] if neighbours is not None else ()):
            if j != i and records[j].edit_id != rec.edit_id:
                other = records[j]
                negatives.append((other.edit_input, True))
                negatives.extend((e.input, True) for e in other.in_scope[:1])
        seen: set[str] = set()
        for q, hard in negatives:
            if q not in positives and q not in seen:
                seen.add(q)
                pairs.append(ScopePair(i, q, False, hard))
    return pairs


def label_swap_examples(
    examples: Sequence[CounterfactualExample], copies: int, seed: int
) -> list[CounterfactualExample]:
    """``copies`` counterfactual variants of every example whose answer is the edit label.

    The edit label (and so the target) is replaced by another edit's label, drawn
    deterministically from the pool of labels in ``examples``. The same query then
    has different answers under different edits, so the model can only succeed
    by reading the answer from the edit, not by memorising question -> answer
    (with a few thousand edits it otherwise does the latter; see the zsRE result).
    Examples whose target differs from the edit label (e.g. true/false tasks) are skipped.
    """
    pool = sorted({e.edit_label for e in examples})
    if copies <= 0 or len(pool) < 2:
        return []
    rng = np.random.default_rng(seed)
    out: list[CounterfactualExample] = []
    for e in examples:
        if e.target != e.edit_label:
            continue
        for _ in range(copies):
            label = pool[int(rng.integers(len(pool)))]
            while label == e.edit_label:
                label = pool[int(rng.integers(len(pool)))]
            out.append(CounterfactualExample(e.edit_input, label, e.query, label))
    return out


def nearest_neighbours(embeddings: np.ndarray, k: int) -> list[list[int]]:
    """For each row, the indices of its ``k`` most similar other rows (cosine on unit rows)."""
    n = embeddings.shape[0]
    if k <= 0 or n < 2:
        return [[] for _ in range(n)]
    k = min(k, n - 1)
    out: list[list[int]] = []
    for start in range(0, n, 1024):
        sims = embeddings[start : start + 1024] @ embeddings.T
        for r in range(sims.shape[0]):
            sims[r, start + r] = -np.inf
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(sims, top, axis=1).argsort(axis=1)[:, ::-1]
        out.extend(np.take_along_axis(top, order, axis=1).tolist())
    return out
