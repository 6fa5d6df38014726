"""How many real edits does the blast-radius guard refuse? (issue 17, "false refusals must be rare")

For each dataset of ``data.raw_root`` (default: CounterFact and zsRE of ../shared/data), the
records are read with the project's loaders and split as ``serac prepare`` splits them
(:func:`serac.data.prepare.split_of`); the canary set is built as the package stage builds it
(:func:`serac.editor.guard.validation_canaries`: ``guard.canaries`` out-of-scope queries of the
validation split, topped up from the training split), and the first ``--edits`` test-split edits are scored with
:meth:`BlastRadiusGuard.captures` at the routing threshold. Every real edit is meant to be
accepted, so each refusal is a false refusal. A few deliberately broad edits show the
guard does refuse something.

The scope classifier is the packaged editor's (``--editor``, default ``editor.artifact_dir``)
when one exists, else the untrained offline MiniLM scope (its initial calibration:
score 0.5 at cosine 0.6), as said in the output. Prints a table, writes JSON (``--out``).

    OMP_NUM_THREADS=1 python scripts/guard_false_refusals.py        # ~1-2 min on one core
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from serac.config import GuardConfig, ScopeConfig, load_config
from serac.data.loaders import load_file
from serac.data.prepare import split_of
from serac.data.schema import EditRecord
from serac.editor.guard import BlastRadiusGuard, build_canaries, canary_queries
from serac.io import write_json
from serac.models.scope import ScopeClassifier

SWEEP = (0.001, 0.0025, 0.005, 0.01, 0.02)
BROAD = [("What?", "yes"), ("Who is it?", "Boris Johnson"), ("Tell me about anything at all", "42"),
         ("The mother tongue of", "English"), ("is a citizen of", "France"), ("The official language of", "French"),
         ("who plays", "the piano"), ("when was the first", "1990")]
"""Deliberately broad edits (true positives for the guard)."""


def dataset_splits(raw_root: Path, dataset: str, cfg) -> dict[str, list[EditRecord]]:
    splits: dict[str, list[EditRecord]] = {name: [] for name in cfg.data.splits}
    for path in sorted((raw_root / dataset).glob("*.jsonl")):
        for record in load_file(path, source_name=f"{dataset}/{path.name}").records:
            splits[split_of(record.edit_id, cfg.data.splits, cfg.data.split_salt)].append(record)
    return splits


def scope_and_threshold(editor_dir: Path, default_threshold: float) -> tuple[ScopeClassifier, float, str]:
    if (editor_dir / "editor.json").is_file():
        meta = json.loads((editor_dir / "editor.json").read_text())
        threshold = float(meta.get("editor", {}).get("threshold", default_threshold))
        return ScopeClassifier.load(editor_dir / "scope").eval(), threshold, f"trained scope of {editor_dir}"
    return (ScopeClassifier.from_config(ScopeConfig()).eval(), default_threshold,
            "untrained offline MiniLM embedding scope (score = sigmoid(20 * (cos - 0.6))); no packaged editor found")


def measure(scope: ScopeClassifier, threshold: float, guard_cfg: GuardConfig, val: list[EditRecord],
            edits: list[EditRecord]) -> dict:
    canaries = build_canaries(scope, canary_queries(val, guard_cfg.canaries))
    guard = BlastRadiusGuard(guard_cfg, canaries)
    rates = np.array([c.rate for c in guard.captures(scope, edits, scope.embedding.embed_edits(edits), threshold)])
    broad = [EditRecord("qa", i, label) for i, label in BROAD]
    broad_caps = guard.captures(scope, broad, scope.embedding.embed_edits(broad), threshold)
    refused = {f"{m:.4f}": int((rates > m).sum()) for m in SWEEP}
    worst = np.argsort(-rates, kind="stable")[:5]
    return {
        "canaries": len(canaries.queries),
        "edits": len(edits),
        "refused_at_default": int((rates > guard_cfg.max_capture).sum()),
        "false_refusal_rate_at_default": float((rates > guard_cfg.max_capture).mean()) if len(rates) else 0.0,
        "refused_by_max_capture": refused,
        "capture_rate_percentiles": {p: float(np.percentile(rates, p)) for p in (50, 90, 99, 100)},
        "edits_capturing_any": int((rates > 0).sum()),
        "worst": [{"edit_input": edits[i].edit_input, "edit_label": edits[i].edit_label, "rate": float(rates[i])}
                  for i in worst],
        "broad_edits": [{"edit_input": b.edit_input, "edit_label": b.edit_label, "rate": c.rate,
                         "refused": c.rate > guard_cfg.max_capture} for b, c in zip(broad, broad_caps)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--datasets", nargs="+", default=["counterfact", "zsre"])
    parser.add_argument("--edits", type=int, default=300, help="test-split edits scored per dataset")
    parser.add_argument("--editor", default=None, help="packaged editor (default editor.artifact_dir)")
    parser.add_argument("--out", default="reports/guard/false_refusals.json")
    args = parser.parse_args()

    cfg = load_config(args.params)
    raw_root = (Path(args.params).parent / cfg.data.raw_root).resolve()
    editor_dir = Path(args.editor or cfg.editor.artifact_dir)
    started = time.perf_counter()
    scope, threshold, model = scope_and_threshold(editor_dir, cfg.editor.threshold)
    results = {}
    for dataset in args.datasets:
        splits = dataset_splits(raw_root, dataset, cfg)
        # as validation_canaries: the validation split first, topped up from the training split
        results[dataset] = measure(scope, threshold, cfg.guard, splits["val"] + splits["train"],
                                   splits["test"][: args.edits])
    out = {"model": model, "threshold": threshold, "guard": vars(replace(cfg.guard)), "raw_root": str(raw_root),
           "datasets": results, "seconds": round(time.perf_counter() - started, 1)}
    write_json(args.out, out)

    print(f"model: {model}; routing threshold {threshold}; guard.max_capture {cfg.guard.max_capture:.2%}")
    header = ["dataset", "canaries", "edits", *(f"refused @{m:.2%}" for m in SWEEP), "p99 capture", "max capture"]
    print(" | ".join(header))
    for dataset, r in results.items():
        cells = [dataset, str(r["canaries"]), str(r["edits"]), *(str(v) for v in r["refused_by_max_capture"].values()),
                 f"{r['capture_rate_percentiles'][99]:.2%}", f"{r['capture_rate_percentiles'][100]:.2%}"]
        print(" | ".join(cells))
    for dataset, r in results.items():
        broad = ", ".join(f"{b['edit_input']!r}->{b['edit_label']!r} {b['rate']:.1%}" for b in r["broad_edits"])
        print(f"{dataset} broad edits: {broad}")
    print(f"wrote {args.out} in {out['seconds']} s")


if __name__ == "__main__":
    main()
