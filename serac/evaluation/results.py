"""Typed results of the evaluation protocol: metrics per memory size, per method."""

from __future__ import annotations

from dataclasses import dataclass, field

KSpec = int | str
"""A memory size: a positive number of edits, or ``"all"``."""


@dataclass(frozen=True)
class KMetrics:
    """Pooled metrics of one method at one memory size."""

    k: str
    """As asked: ``"10"``, ``"all"``."""
    edits_per_group: int
    n_groups: int
    es: float
    es_edit: float
    es_rephrase: float
    dd: float
    dd_kind: str
    precision: float
    recall: float
    fpr: float
    auroc: float
    threshold: float | None
    n_queries: int
    """In-scope queries with a label (the ES denominator)."""
    n_edit_queries: int
    n_rephrase_queries: int
    n_out_of_scope: int
    """Out-of-scope queries (the DD denominator for ``changed``)."""
    p50_ms: float
    p99_ms: float
    mean_ms: float
    """Per-query latency of ``predict``, measured per batch call."""
    seconds: float
    scores_in: tuple[float, ...] = field(default=(), repr=False)
    scores_out: tuple[float, ...] = field(default=(), repr=False)
    es_parts: dict[str, float] = field(default_factory=dict)
    """Factors of ES where a task's scorer has them (ConvSent: ``sentiment`` and ``topic`` means)."""
    dd_by_kind: dict[str, float] = field(default_factory=dict)
    """DD per locality kind of the out-of-scope queries, and ``n_<kind>``: how many there were."""

    SCALARS = ("es", "es_edit", "es_rephrase", "dd", "precision", "recall", "fpr", "auroc", "p50_ms", "p99_ms",
               "mean_ms", "n_queries", "n_edit_queries", "n_rephrase_queries", "n_out_of_scope", "n_groups",
               "edits_per_group", "seconds")

    def part_scalars(self) -> dict[str, float]:
        """``es_<part>`` per factor of ES in :attr:`es_parts`."""
        return {f"es_{name}": value for name, value in self.es_parts.items()}

    def kind_scalars(self) -> dict[str, float]:
        """``dd_<kind>`` per locality kind and ``n_out_<kind>``: its number of queries."""
        return {(f"n_out_{k[2:]}" if k.startswith("n_") else f"dd_{k}"): v for k, v in self.dd_by_kind.items()}

    def scalars(self) -> dict[str, float | int]:
        """The numeric fields (no score lists), for JSON and tables."""
        return {**{name: getattr(self, name) for name in self.SCALARS}, **self.part_scalars(), **self.kind_scalars()}


@dataclass(frozen=True)
class MethodResult:
    """One method's metrics at every memory size evaluated."""

    method: str
    task: str
    dd_kind: str
    per_k: tuple[KMetrics, ...] = ()
    note: str = ""
    """Why the method was skipped, or which k were left out."""
    skipped: bool = False

    def at(self, k: KSpec) -> KMetrics:
        for m in self.per_k:
            if m.k == str(k):
                return m
        raise KeyError(f"{self.method}: no result for k={k}; have {[m.k for m in self.per_k]}")
