"""Edit groups of the k-edits protocol: seeded draws, the queries of a group, cached base answers.

Pure bookkeeping, no metrics: :mod:`serac.evaluation.protocol` runs the methods on these groups.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from serac.config import EvaluationConfig
from serac.data.schema import EditRecord
from serac.evaluation.results import KSpec
from serac.metrics import normalize_answer
from serac.models.base import BaseModel
from serac.tasks import TASK_SPECS

DEFAULT_KS: tuple[KSpec, ...] = (1, 10, 100, 1000, "all")

TRUE_FALSE = frozenset({"true", "false"})


@dataclass(frozen=True)
class ProtocolOptions:
    """How the protocol draws its groups and runs the methods (the same for evaluation and threshold tuning)."""

    seed: int = 0
    """Seeds the group draws: the same groups for every method."""
    max_groups: int | None = None
    """At most this many groups per memory size (None: only ``max_queries`` bounds)."""
    max_queries: int | None = 2000
    """Groups are drawn until they hold this many in-scope queries (at least one group)."""
    batch_size: int = 32
    work_dir: str | Path | None = None
    """Holds the temporary group memories (default: the system temp directory)."""
    progress: bool = True

    @classmethod
    def of(cls, config: EvaluationConfig, **changes: Any) -> ProtocolOptions:
        """The options of ``evaluation`` in params.yaml (``max_groups_per_k``, ``max_queries_per_k``, ...)."""
        return dataclasses.replace(cls(seed=config.seed, max_groups=config.max_groups_per_k,
                                       max_queries=config.max_queries_per_k, batch_size=config.batch_size), **changes)


class BaseAnswers:
    """The frozen base model's answers, computed once per distinct query and then cached."""

    def __init__(self, base: BaseModel, batch_size: int = 32) -> None:
        self.base = base
        self.batch_size = batch_size
        self.cache: dict[str, str] = {}

    def __call__(self, queries: Sequence[str]) -> list[str]:
        missing = [q for q in dict.fromkeys(queries) if q not in self.cache]
        if missing:  # in one call: the base model batches them itself (a causal LM by length)
            self.cache.update(zip(missing, self.base.predict(missing)))
        return [self.cache[q] for q in queries]


def infer_task(records: Sequence[EditRecord]) -> str:
    tasks = sorted({r.task for r in records})
    if len(tasks) != 1:
        raise ValueError(f"records mix tasks {tasks}: evaluate one task at a time or pass task=")
    return tasks[0]


def drawdown_kind(task: str, records: Sequence[EditRecord] = ()) -> str:
    """``accuracy`` for true/false tasks (the task's ``TaskSpec.dd_kind``, or every label true/false), else ``changed``."""
    if task in TASK_SPECS and TASK_SPECS[task].dd_kind == "accuracy":
        return "accuracy"
    labels = [r.edit_label for r in records] + [e.label for r in records for e in r.out_of_scope if e.label is not None]
    if labels and all(normalize_answer(x) in TRUE_FALSE for x in labels):
        return "accuracy"
    return "changed"


def resolve_k(k: KSpec, n: int) -> int | None:
    """Edits per group for ``k`` among ``n`` records; None when k > n."""
    if k == "all":
        return n
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive integer or 'all', got {k!r}")
    return k if k <= n else None


def draw_groups(
    records: Sequence[EditRecord],
    k: int,
    *,
    seed: int,
    max_groups: int | None = None,
    max_queries: int | None = None,
) -> list[list[int]]:
    """Disjoint groups of ``k`` record indices, a pure function of (records count, k, seed).

    A seeded permutation is cut into ``len(records) // k`` groups, taken in order until
    ``max_groups`` groups or ``max_queries`` in-scope queries (edit input + labelled
    rephrasings) are reached; there is always at least one group.
    """
    n = len(records)
    if not 1 <= k <= n:
        raise ValueError(f"k={k} edits per group from {n} records")
    order = np.random.default_rng([seed, k]).permutation(n)
    groups: list[list[int]] = []
    queries = 0
    for start in range(0, n - k + 1, k):
        if groups and ((max_groups is not None and len(groups) >= max_groups)
                       or (max_queries is not None and queries >= max_queries)):
            break
        group = order[start : start + k].tolist()
        groups.append(group)
        queries += sum(1 + sum(e.label is not None for e in records[i].in_scope) for i in group)
    return groups


def distinct_records(records: Sequence[EditRecord]) -> list[EditRecord]:
    """Records with distinct edit ids, first occurrence kept (the memory deduplicates by id)."""
    first: dict[str, EditRecord] = {}
    for r in records:
        first.setdefault(r.edit_id, r)
    return list(first.values())


@dataclass
class GroupQueries:
    """The queries of one group, by role, with their gold labels."""

    edit: list[tuple[str, str]] = field(default_factory=list)
    rephrase: list[tuple[str, str]] = field(default_factory=list)
    unlabelled: list[str] = field(default_factory=list)
    """In-scope queries without a label: scope positives, not in ES."""
    out: list[tuple[str, str | None]] = field(default_factory=list)

    @classmethod
    def of(cls, group: Sequence[EditRecord]) -> "GroupQueries":
        q = cls()
        for r in group:
            q.edit.append((r.edit_input, r.edit_label))
            for e in r.in_scope:
                if e.label is None:
                    q.unlabelled.append(e.input)
                else:
                    q.rephrase.append((e.input, e.label))
        covered = {query for query, _ in q.edit + q.rephrase} | set(q.unlabelled)
        q.out = [(e.input, e.label) for r in group for e in r.out_of_scope if e.input not in covered]
        return q

    def positives(self) -> list[str]:
        return [x for x, _ in self.edit + self.rephrase] + self.unlabelled

    def distinct(self) -> list[str]:
        return list(dict.fromkeys(self.positives() + [x for x, _ in self.out]))


def subsample_edits(records: Sequence[EditRecord], n: int | None, seed: int) -> list[EditRecord]:
    """At most ``n`` distinct edits of ``records``, a seeded subset kept in the records' order
    (None or more than there are: all of them, distinct)."""
    records = distinct_records(records)
    if n is None or n >= len(records):
        return records
    keep = np.sort(np.random.default_rng([seed, len(records), 11]).permutation(len(records))[:n])
    return [records[int(i)] for i in keep]


def cap_out_of_scope(records: Sequence[EditRecord], n: int | None) -> list[EditRecord]:
    """Each record with at most ``n`` out-of-scope queries, spread evenly over its list (the first
    and the last kept), so every locality kind appended after the dataset's own stays represented."""
    if n is None:
        return list(records)
    out = []
    for r in records:
        m = len(r.out_of_scope)
        if m > n:
            picks = sorted({int(round(i)) for i in np.linspace(0, m - 1, n)}) if n > 0 else []
            r = dataclasses.replace(r, out_of_scope=tuple(r.out_of_scope[i] for i in picks))
        out.append(r)
    return out


@contextlib.contextmanager
def group_dirs(work_dir: str | Path | None) -> Iterator[Callable[[], Path]]:
    """Hands out a new empty directory per group; all are deleted at the end."""
    if work_dir is not None:
        Path(work_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="serac-eval-", dir=work_dir) as tmp:
        counter = iter(range(1 << 62))
        yield lambda: Path(tmp) / f"group-{next(counter):06d}"
