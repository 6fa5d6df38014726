"""Evaluation report: a rich table, DVC-friendly metrics JSON and plot rows, PNG plots.

Plots are drawn on a bare :class:`matplotlib.figure.Figure` (Agg canvas), never through
``pyplot``: no global backend state, safe in flows and worker threads.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from serac.evaluation.results import KMetrics, MethodResult
from serac.io import atomic_path, write_bytes

JSON_METRICS = ("es", "es_edit", "es_rephrase", "dd", "precision", "recall", "fpr", "auroc", "p50_ms", "p99_ms",
                "n_queries", "n_out_of_scope", "n_groups", "edits_per_group")
"""Per-k keys of :func:`metrics_dict` (and of ``write_metrics_json``), plus ``es_<part>`` for the
factors of ES a task's scorer reports (``KMetrics.part_scalars``)."""


def _clean(value: Any) -> Any:
    """NaN / inf become None (JSON has no NaN; DVC and most readers reject it)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"


def locality_kinds(results: Sequence[MethodResult]) -> list[str]:
    """The locality kinds with a DD of their own in ``results`` (sorted)."""
    return sorted({k for r in results for m in r.per_k for k in m.dd_by_kind if not k.startswith("n_")})


def results_table(results: Sequence[MethodResult], title: str = "SERAC evaluation") -> Table:
    """One row per method and k; a skipped method gets one ``skipped`` row, its reason goes in the caption.

    With more than one locality kind, DD is also shown per kind (``DD <kind>``); the factors or
    variants of ES a scorer reports (``ES-contains``, ConvSent's ``ES-sentiment``) get a column each."""
    table = Table(title=title)
    kinds = locality_kinds(results)
    kinds = kinds if len(kinds) > 1 else []
    parts = sorted({p for r in results for m in r.per_k for p in m.es_parts})
    columns = [("method", "left"), ("k", "right"), ("groups", "right"), ("ES", "right"),
               *((f"ES-{p}", "right") for p in parts), ("ES-edit", "right"), ("ES-rephrase", "right"), ("DD", "right"), *((f"DD {k}", "right") for k in kinds),
               ("recall", "right"), ("FPR", "right"), ("AUROC", "right"), ("p50 ms", "right")]
    for name, justify in columns:
        table.add_column(name, justify=justify)
    notes = []
    for result in results:
        if result.note:
            notes.append(f"{result.method}: {result.note}")
        if result.skipped or not result.per_k:
            table.add_row(result.method, "-", "0", "skipped", *["-"] * (len(columns) - 4), style="dim",
                          end_section=True)
            continue
        for i, m in enumerate(result.per_k):
            table.add_row(
                result.method if i == 0 else "", m.k, str(m.n_groups), _fmt(m.es),
                *(_fmt(m.es_parts.get(p)) for p in parts), _fmt(m.es_edit),
                _fmt(m.es_rephrase), _fmt(m.dd), *(_fmt(m.dd_by_kind.get(k)) for k in kinds), _fmt(m.recall),
                _fmt(m.fpr), _fmt(m.auroc), _fmt(m.p50_ms, 1),
                end_section=i == len(result.per_k) - 1,
            )
    if notes:
        table.caption = "\n".join(notes)
    return table


def metrics_dict(results: Sequence[MethodResult]) -> dict[str, Any]:
    """``{method: {"k10": {"es": ..., "dd": ...}, ...}}``; NaN as None; a skipped method as ``{"skipped": reason}``."""
    out: dict[str, Any] = {}
    for result in results:
        if result.skipped:
            out[result.method] = {"skipped": result.note}
            continue
        out[result.method] = {
            f"k{m.k}": {**{key: _clean(getattr(m, key)) for key in JSON_METRICS},
                        **{key: _clean(value) for key, value in m.part_scalars().items()},
                        **{key: _clean(value) for key, value in m.kind_scalars().items()}}
            for m in result.per_k
        }
    return out


def write_metrics_json(results: Sequence[MethodResult], path: str | Path) -> Path:
    """Write :func:`metrics_dict` as JSON (DVC ``metrics:``); atomic."""
    text = json.dumps(metrics_dict(results), indent=2, sort_keys=True, allow_nan=False) + "\n"
    write_bytes(path, text.encode("utf-8"))
    return Path(path)


def metrics_rows(results: Sequence[MethodResult]) -> list[dict[str, Any]]:
    """Flat rows for DVC plots: k (edits per group), k_label, method, es, es_edit, es_rephrase, dd, recall, fpr."""
    return [
        {"k": m.edits_per_group, "k_label": m.k, "method": r.method,
         **{key: _clean(getattr(m, key)) for key in ("es", "es_edit", "es_rephrase", "dd", "recall", "fpr")}}
        for r in results
        for m in r.per_k
    ]


def write_metrics_rows(results: Sequence[MethodResult], path: str | Path) -> Path:
    """Write :func:`metrics_rows` as a JSON list (a DVC ``plots:`` file, x=k, y=es or dd)."""
    write_bytes(path, (json.dumps(metrics_rows(results), indent=2, allow_nan=False) + "\n").encode("utf-8"))
    return Path(path)


def _figure(width: float, height: float):  # -> matplotlib.figure.Figure
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _save(fig, path: str | Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    return Path(path)


def plot_es_dd_vs_k(results: Sequence[MethodResult], path: str | Path) -> Path:
    """PNG: ES, DD and the scope's false-positive rate against edits in memory, log x, one line per
    method (DD per locality kind dashed, for SERAC, when there are several kinds)."""
    fig = _figure(15, 4)
    ax_es, ax_dd, ax_fpr = fig.subplots(1, 3)
    kinds = locality_kinds(results)
    for result in results:
        points = sorted(((m.edits_per_group, m) for m in result.per_k if not result.skipped), key=lambda p: p[0])
        if not points:
            continue
        ks = [k for k, _ in points]
        ax_es.plot(ks, [_nan(m.es) for _, m in points], marker="o", label=result.method)
        line = ax_dd.plot(ks, [_nan(m.dd) for _, m in points], marker="o", label=result.method)[0]
        if result.method == "serac" and len(kinds) > 1:
            for kind, style in zip(kinds, ("--", ":", "-.")):
                ax_dd.plot(ks, [_nan(m.dd_by_kind.get(kind)) for _, m in points], linestyle=style,
                           color=line.get_color(), label=f"serac: {kind}")
        if any(math.isfinite(m.fpr) for _, m in points):
            ax_fpr.plot(ks, [_nan(m.fpr) for _, m in points], marker="o", label=result.method)
    for ax, name in ((ax_es, "edit success (ES)"), (ax_dd, "drawdown (DD)"), (ax_fpr, "scope false-positive rate")):
        ax.set_xscale("log")
        ax.set_xlabel("edits in memory (k)")
        ax.set_ylabel(name)
        ax.grid(True, which="both", alpha=0.3)
    ax_es.set_ylim(-0.02, 1.02)
    for ax in (ax_es, ax_dd, ax_fpr):
        if any(ax.get_lines()):
            ax.legend(fontsize="small")
    return _save(fig, path)


def plot_score_histogram(
    scores_in: Sequence[float], scores_out: Sequence[float], threshold: float | None, path: str | Path,
    title: str = "scope scores",
) -> Path:
    """PNG: histograms of scope scores of in-scope vs out-of-scope queries, with the threshold line."""
    fig = _figure(6, 4)
    ax = fig.subplots()
    values = list(scores_in) + list(scores_out)
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    bins = [lo + (hi - lo) * i / 40 for i in range(41)]
    ax.hist(list(scores_in), bins=bins, alpha=0.6, label=f"in scope (n={len(scores_in)})")
    ax.hist(list(scores_out), bins=bins, alpha=0.6, label=f"out of scope (n={len(scores_out)})")
    if threshold is not None:
        ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:g}")
    ax.set_xlabel("scope score")
    ax.set_ylabel("queries")
    ax.set_title(title)
    ax.legend()
    return _save(fig, path)


def plot_result_scores(metrics: KMetrics, path: str | Path, method: str = "") -> Path:
    """:func:`plot_score_histogram` of one method's scores at one k."""
    return plot_score_histogram(metrics.scores_in, metrics.scores_out, metrics.threshold, path,
                                title=f"{method} scope scores, k={metrics.k}".strip())


def _nan(value: float | None) -> float:
    return float("nan") if value is None else value
