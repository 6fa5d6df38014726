"""The training mixture: edits of several datasets in one seeded list (``training.mixture``).

Each dataset contributes ``round(factor * len(edits))`` edits: a factor of 1 takes every
edit once, 3 takes every edit three times (each pass a fresh permutation, so a capped
prefix still spreads over the dataset), 0.5 a seeded half. The result is shuffled once
more, so a cap on training edits (``training.max_train_edits``) keeps the mixture's
proportions. Everything is a pure function of the datasets, the factors and the seed:
a resumed run (``serac.training.loop`` checkpoints) sees the same examples in the same order.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")


def _name_seed(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


def repeat_draw(items: Sequence[T], count: int, seed: int, name: str) -> list[T]:
    """``count`` items of ``items``: whole seeded permutations, then a prefix of one more."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    if not items:
        return []
    out: list[T] = []
    for pass_no in range(-(-count // len(items))):
        order = np.random.default_rng([seed, _name_seed(name), pass_no]).permutation(len(items))
        out.extend(items[int(i)] for i in order[: count - len(out)])
    return out


def mix(datasets: Mapping[str, Sequence[T]], factors: Mapping[str, float], seed: int) -> list[T]:
    """The mixture of ``datasets`` (name -> items) by repeat factor (name -> factor > 0), shuffled."""
    missing = sorted(set(factors) - set(datasets))
    if missing:
        raise ValueError(f"mixture names datasets that were not given: {missing}")
    for name, factor in factors.items():
        if factor <= 0:
            raise ValueError(f"mixture factor of {name!r} must be > 0, got {factor}")
    drawn: list[T] = []
    for name in sorted(factors):
        drawn.extend(repeat_draw(datasets[name], int(round(factors[name] * len(datasets[name]))), seed, name))
    order = np.random.default_rng([seed, len(drawn)]).permutation(len(drawn))
    return [drawn[int(i)] for i in order]


def mixture_counts(sizes: Mapping[str, int], factors: Mapping[str, float]) -> dict[str, int]:
    """Items each dataset contributes (for logs and the training report)."""
    return {name: int(round(factors[name] * sizes[name])) for name in sorted(factors)}


__all__ = ["mix", "mixture_counts", "repeat_draw"]
