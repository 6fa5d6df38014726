"""Evaluation report: table rows, metrics JSON round trip, DVC plot rows, PNG plots."""

from __future__ import annotations

import json

from rich.console import Console

from serac.evaluation.report import (
    JSON_METRICS,
    metrics_dict,
    metrics_rows,
    plot_es_dd_vs_k,
    plot_result_scores,
    plot_score_histogram,
    results_table,
    write_metrics_json,
    write_metrics_rows,
)
from serac.evaluation.results import KMetrics, MethodResult

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NAN = float("nan")


def km(k: str, per_group: int, es: float, dd: float, recall: float = NAN, scores=((), ())) -> KMetrics:
    return KMetrics(
        k=k, edits_per_group=per_group, n_groups=3, es=es, es_edit=1.0, es_rephrase=es, dd=dd, dd_kind="changed",
        precision=NAN if recall != recall else 0.9, recall=recall, fpr=NAN if recall != recall else 0.05,
        auroc=NAN, threshold=None if recall != recall else 0.5, n_queries=30, n_edit_queries=10,
        n_rephrase_queries=20, n_out_of_scope=10, p50_ms=1.5, p99_ms=4.0, mean_ms=2.0, seconds=0.1,
        scores_in=scores[0], scores_out=scores[1],
    )


RESULTS = [
    MethodResult("serac", "qa", "changed", (km("1", 1, 0.9, 0.01, 1.0, ((0.9, 0.8), (0.1,))), km("10", 10, 0.85, 0.02, 0.98),
                                            km("all", 40, 0.8, 0.05, 0.95))),
    MethodResult("unedited", "qa", "changed", (km("1", 1, 0.0, 0.0), km("10", 10, 0.0, 0.0), km("all", 40, 0.0, 0.0))),
    MethodResult("ft", "qa", "changed", note="FT needs a Hugging Face base model", skipped=True),
]


def test_table_has_a_row_per_method_and_k():
    table = results_table(RESULTS)
    assert table.row_count == 3 + 3 + 1  # the skipped method: one row, its reason in the caption
    console = Console(record=True, width=160)
    console.print(table)
    text = console.export_text()
    for needle in ("serac", "unedited", "ft", "all", "0.850", "FT needs a Hugging Face base model"):
        assert needle in text


def test_metrics_json_round_trip_is_flat_and_nan_free(tmp_path):
    path = write_metrics_json(RESULTS, tmp_path / "metrics" / "eval.json")
    loaded = json.loads(path.read_text())
    assert loaded == metrics_dict(RESULTS)
    assert set(loaded["serac"]) == {"k1", "k10", "kall"}
    assert loaded["serac"]["k10"]["es"] == 0.85 and loaded["serac"]["k10"]["dd"] == 0.02
    assert set(loaded["serac"]["k1"]) == set(JSON_METRICS)
    assert loaded["unedited"]["k1"]["recall"] is None  # NaN -> null
    assert loaded["ft"] == {"skipped": "FT needs a Hugging Face base model"}


def test_metrics_rows_for_dvc_plots(tmp_path):
    rows = metrics_rows(RESULTS)
    assert len(rows) == 6
    assert rows[2] == {"k": 40, "k_label": "all", "method": "serac", "es": 0.8, "es_edit": 1.0, "es_rephrase": 0.8,
                       "dd": 0.05, "recall": 0.95, "fpr": 0.05}
    assert json.loads(write_metrics_rows(RESULTS, tmp_path / "rows.json").read_text()) == rows


def test_plots_are_written_as_png(tmp_path):
    paths = [
        plot_es_dd_vs_k(RESULTS, tmp_path / "plots" / "es_dd.png"),
        plot_score_histogram([0.9, 0.8, 0.95], [0.1, 0.3, 0.6], 0.5, tmp_path / "hist.png"),
        plot_score_histogram([], [], None, tmp_path / "empty.png"),
        plot_result_scores(RESULTS[0].at(1), tmp_path / "serac_k1.png", method="serac"),
    ]
    for path in paths:
        data = path.read_bytes()
        assert len(data) > 1000 and data.startswith(PNG_MAGIC)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.png", "hist.png", "plots", "serac_k1.png"]


def test_metrics_json_carries_the_factors_of_es_a_scorer_reports():
    import dataclasses

    parts = dataclasses.replace(km("10", 10, 0.4, 0.0), es_parts={"sentiment": 0.8, "topic": NAN})
    loaded = metrics_dict([MethodResult("serac", "convsent", "changed", (parts,))])
    assert loaded["serac"]["k10"]["es_sentiment"] == 0.8 and loaded["serac"]["k10"]["es_topic"] is None
    assert parts.scalars()["es_sentiment"] == 0.8
