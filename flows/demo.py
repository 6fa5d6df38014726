"""The main job end to end on the embedded offline default (``make demo``).

1. ``dvc repro validate``: prepare the real datasets and validate the training splits (GX);
2. the ``retrain`` flow with ``params.demo.yaml`` (small-data training): train the scope classifier
   and the counterfactual model beside the frozen base LM (referenced, never trained), evaluate
   ES/DD against the baselines, package, register in MLflow and run the promotion gate;
3. the ``nightly-ingest`` flow on the bundled sample inbox (with a few bad rows): validate,
   quarantine, add the good edits to the DVC-versioned edit memory;
4. the seed example on the packaged editor (the real base LM): the unedited answer to "Who is
   the prime minister of the UK?", the edit, then a rephrasing and unrelated questions, as a
   before/after table (printed, in ``reports/demo/seed_example.md`` and logged to MLflow);
5. print where to look.

Prefect runs without a server here (a temporary local API starts by itself).
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from prefect import flow

from serac.config import load_config

SAMPLE_INBOX = Path("data/sample/inbox")


@flow(name="serac-demo")
def demo(params_path: str = "params.yaml", overlay: str = "params.demo.yaml",
         work_dir: str = "artifacts/demo/work", reports_dir: str = "reports/demo") -> dict:
    from flows.nightly_ingest import nightly_ingest
    from flows.retrain import retrain
    from serac.pipeline.dvc import find_repo_root, run_dvc

    config = load_config(params_path, overlay)
    repo = find_repo_root(Path(params_path).resolve().parent)
    if repo is not None:
        run_dvc(["repro", "validate"], cwd=repo, timeout_s=1800)
    outcome = retrain(params_path=params_path, overlays=(overlay,), work_dir=work_dir, reports_dir=reports_dir)

    inbox = Path(config.ingest.inbox)
    inbox.mkdir(parents=True, exist_ok=True)
    for batch in sorted(SAMPLE_INBOX.glob("*")):
        shutil.copy2(batch, inbox / batch.name)
    report = nightly_ingest(params_path=params_path, editor_dir=config.editor.artifact_dir, trigger_retrain=False)
    showcase = seed_example(config, reports_dir, outcome.run_id)
    return {"outcome": outcome, "ingest": report, "config": config, "reports_dir": reports_dir, "showcase": showcase}


def seed_example(config, reports_dir: str, run_id: str | None) -> Path:
    """The seed edit on the packaged editor: before/after answers, printed, written and logged to MLflow."""
    from rich.console import Console
    from rich.table import Table

    from serac.editor import SeracEditor
    from serac.pipeline.showcase import before_after, write_showcase
    from serac.registry.tracking import configure_mlflow, log_file

    editor = SeracEditor.load(config.editor.artifact_dir, device=config.editor.device)
    base = editor.base.describe().get("name_or_path", "")
    rows = before_after(editor)
    table = Table(title=f"The seed edit on the real model ({base}): before and after")
    for column in ("query", "before (unedited)", "after (edited)", "route"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row.query, row.before, row.after, row.routed_to)
    Console(width=170).print(table)
    path = write_showcase(rows, Path(reports_dir) / "seed_example.md", base=base)
    if run_id:
        configure_mlflow(config.tracking)
        log_file(path, "showcase", run_id=run_id)
    return path


def where_to_look(result: dict, seconds: float) -> str:
    config, outcome, report = result["config"], result["outcome"], result["ingest"]
    quarantines = sorted(Path(config.ingest.validated_root).glob("*/quarantine.parquet"))
    alias = "champion" if outcome.promoted else "challenger"
    lines = [
        "",
        f"serac demo finished in {seconds / 60:.1f} min",
        f"  evaluation (ES/DD per memory size): {result['reports_dir']}/summary.md, es_dd_vs_k.png",
        f"  the seed edit, before/after: {result['showcase']}",
        f"  quarantined rows: {', '.join(map(str, quarantines)) or 'none'}",
        f"  ingest: {report.totals.get('passed', 0)} passed, {report.totals.get('quarantined', 0)} quarantined, "
        f"{report.totals.get('added', 0)} added; memory {report.memory_root} version {report.memory_version}"
        + (f" (DVC md5 {report.memory_md5})" if report.memory_md5 else ""),
        f"  registered model: {outcome.model_name} version {outcome.version} (alias @{alias}): {outcome.reason}",
        "  MLflow UI:  .venv/bin/mlflow ui --backend-store-uri sqlite:///mlflow/mlflow.db --port 5000",
        f"  try it:     .venv/bin/serac query --editor {config.editor.artifact_dir} \"<a rephrased question>\"",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Run the serac main job end to end (small data).")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--overlay", default="params.demo.yaml")
    args = parser.parse_args()
    started = time.monotonic()
    result = demo(params_path=args.params, overlay=args.overlay)
    print(where_to_look(result, time.monotonic() - started))
