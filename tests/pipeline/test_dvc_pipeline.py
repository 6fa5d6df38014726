"""The real dvc.yaml on a tiny synthetic dataset: `dvc repro` builds the editor end to end,
a second `dvc repro` is a no-op, `dvc status` then reports nothing changed, a changed parameter
re-runs only the stages that read it, and a changed module marks the stages that run it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from serac.data.synthetic import synthetic_edits

REPO = Path(__file__).resolve().parents[2]
TINY = {"max_steps": 2, "batch_size": 4, "warmup_steps": 1, "eval_every": 1000, "checkpoint_every": 1000}


def dvc(args: list[str], cwd: Path) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, f"dvc {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture
def project(tmp_path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    shutil.copytree(REPO / "serac", root / "serac", ignore=shutil.ignore_patterns("__pycache__"))
    raw = tmp_path / "raw" / "syn"
    raw.mkdir(parents=True)
    rows = [{k: v for k, v in r.to_row().items() if k not in ("ingested_at", "source")}
            for r in synthetic_edits(60, seed=11)]
    (raw / "edits.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"]["raw_root"] = str(tmp_path / "raw")
    params["data"]["splits"] = {"train": 0.6, "val": 0.2, "test": 0.2}
    params["training"].update({"dataset": "syn", "mixture": {"syn": 1.0}, "hard_negatives": 1, "scope": dict(TINY),
                               "scope_cross": dict(TINY), "counterfactual": dict(TINY),
                               "base": dict(TINY)})
    params["counterfactual"]["decoder_layers"] = 1
    params["base"]["decoder_layers"] = 1
    params["editor"]["device"] = "cpu"
    params["evaluation"].update({"ks": [1, 4], "max_queries_per_k": 8, "baselines": ["unedited", "lu"],
                                 "tune_k": 4, "threshold_candidates": [0.5, 0.9]})
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    dvc(["init", "--no-scm", "-q"], root)
    return root


def test_repro_builds_the_editor_then_is_a_no_op(project):
    dvc(["repro"], project)
    assert (project / "artifacts" / "editor" / "editor.json").exists()
    metrics = json.loads((project / "reports" / "metrics.json").read_text())
    assert "serac" in metrics and "k4" in metrics["serac"]

    again = dvc(["repro"], project)
    assert "Running stage" not in again
    assert "up to date" in dvc(["status"], project).lower()

    params = yaml.safe_load((project / "params.yaml").read_text())
    params["training"]["scope"]["max_steps"] = 3
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    status = dvc(["status"], project)
    assert "train_scope" in status and "train_base" not in status and "train_counterfactual" not in status
    params["training"]["scope"]["max_steps"] = TINY["max_steps"]
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    assert changed_stages(dvc(["status"], project)) == set()

    # a module the training stages run (models/hub.py: where the MiniLM weights come from) but prepare does not
    with (project / "serac" / "models" / "hub.py").open("a") as handle:
        handle.write("\n")
    changed = changed_stages(dvc(["status"], project))
    assert {"train_base", "train_scope", "train_counterfactual", "evaluate", "package"} <= changed
    assert "prepare" not in changed
    (project / "serac" / "models" / "hub.py").write_bytes((REPO / "serac" / "models" / "hub.py").read_bytes())
    with (project / "serac" / "__init__.py").open("a") as handle:  # every stage imports the package
        handle.write("\n")
    assert changed_stages(dvc(["status"], project)) == {s for s in stages_of(project)}


def changed_stages(status: str) -> set[str]:
    """Stage names `dvc status` reports (lines ``<stage>:`` at the left margin)."""
    return {line[:-1] for line in status.splitlines() if line.endswith(":") and line[:1] not in ("", " ", "\t")}


def stages_of(project: Path) -> set[str]:
    """Stage names of dvc.yaml, a ``foreach`` over a params value (``${training.mixture}``) resolved."""
    spec = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    params = yaml.safe_load((project / "params.yaml").read_text())

    def items(stage: dict) -> list:
        each = stage.get("foreach")
        if isinstance(each, str) and each.startswith("${"):
            value = params
            for part in each[2:-1].split("."):
                value = value[part]
            each = value
        return list(each) if each else [None]

    return {f"{name}@{item}" if "foreach" in stage else name for name, stage in spec.items() for item in items(stage)}


@pytest.mark.slow
def test_forced_repro_with_the_same_seed_gives_the_same_metrics(project):
    dvc(["repro"], project)
    first = json.loads((project / "reports" / "metrics.json").read_text())
    dvc(["repro", "-f"], project)
    second = json.loads((project / "reports" / "metrics.json").read_text())

    def drop_timings(metrics: dict) -> dict:
        return {m: {k: {name: v for name, v in row.items() if not name.endswith("_ms") and name != "seconds"}
                    for k, row in per_k.items()} for m, per_k in metrics.items()}

    assert drop_timings(second) == drop_timings(first)
