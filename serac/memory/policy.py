"""When segments are merged and sealed: pure functions over segment sizes.

A version's segments are *sealed* ANN segments (a prefix, each searched by its own faiss
index) followed by *delta* segments (searched exactly, from one float32 matrix in RAM).

* Delta segments stay few: after an append, trailing segments merge while the one before
  the last is at most twice the last's size (a binary-counter schedule: O(log n) delta
  segments, each row rewritten O(log n) times).
* Once the memory's index kind is an ANN kind, all delta rows are sealed into one new ANN
  segment when there is no ANN segment yet or the delta reached ``delta_max_rows``.
* More than ``max_ann_segments`` sealed segments: the adjacent pair with the fewest rows
  merges (its index is rebuilt), so a query searches a bounded number of indexes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


def trailing_merge_count(sizes: Sequence[int]) -> int:
    """How many trailing segments of ``sizes`` (the last one just appended) merge into one (>= 1)."""
    merged = list(sizes)
    count = 1
    while len(merged) >= 2 and merged[-2] <= 2 * merged[-1]:
        merged[-2:] = [merged[-2] + merged[-1]]
        count += 1
    return min(count, len(sizes)) if sizes else 0


def should_seal(kind: str, n_sealed: int, delta_rows: int, delta_max_rows: int) -> bool:
    """Seal every delta row into a new ANN segment now?"""
    if kind == "exact" or delta_rows == 0:
        return False
    return n_sealed == 0 or delta_rows >= delta_max_rows


def pair_to_merge(sealed_sizes: Sequence[int], max_segments: int) -> int | None:
    """Index ``i`` of the adjacent pair (i, i+1) to merge, or None while within ``max_segments``."""
    if len(sealed_sizes) <= max_segments or len(sealed_sizes) < 2:
        return None
    sums = [sealed_sizes[i] + sealed_sizes[i + 1] for i in range(len(sealed_sizes) - 1)]
    return min(range(len(sums)), key=lambda i: (sums[i], -i))


@dataclass(frozen=True)
class AppendPlan:
    """What an append of ``new_rows`` writes."""

    merge_delta: int
    """Existing trailing delta segments rewritten together with the new rows (0 = none)."""
    seal: bool
    """True: all delta segments and the new rows become one ANN segment."""


def plan_append(
    kind: str, sealed_sizes: Sequence[int], delta_sizes: Sequence[int], new_rows: int, delta_max_rows: int
) -> AppendPlan:
    delta_rows = sum(delta_sizes) + new_rows
    if should_seal(kind, len(sealed_sizes), delta_rows, delta_max_rows):
        return AppendPlan(len(delta_sizes), True)
    return AppendPlan(trailing_merge_count([*delta_sizes, new_rows]) - 1, False)
