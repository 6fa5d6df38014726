"""Benchmark: 1 vs N processes of ``serac train`` under torchrun (gloo on CPU, nccl on GPUs).

    .venv/bin/python benchmarks/distributed.py [--components scope,counterfactual] [--nprocs 1,2]
        [--train-edits 300] [--steps 40] [--batch-size 16] [--out benchmarks/results/distributed.json]

Each (component, N) trains from scratch with the same seed and global batch, on the first
``--train-edits`` edits of the prepared CounterFact train split (``serac prepare``), and ends
with the loop's validation pass on ``--val-edits`` val edits; the val metrics come back from
the run's MLflow store (a throwaway SQLite per run). Every process gets one thread
(``OMP_NUM_THREADS=1``), so on a 2-core machine 2 processes use both cores. Wall time is the
whole ``torchrun`` command (model loading included).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
TORCHRUN = str(Path(sys.executable).with_name("torchrun"))


def overlay(root: Path, args: argparse.Namespace) -> Path:
    steps = {"max_steps": args.steps, "batch_size": args.batch_size, "warmup_steps": max(1, args.steps // 10),
             "eval_every": 10**6, "checkpoint_every": 10**6, "seed": 0}
    params = {
        "editor": {"device": "cpu"},
        "counterfactual": {"decoder_layers": 2},
        "training": {"dataset": "counterfact", "data_dir": str(REPO / "data" / "prepared"),
                     "max_train_edits": args.train_edits, "max_val_edits": args.val_edits,
                     "scope": steps, "counterfactual": steps},
        "tracking": {"tracking_uri": f"sqlite:///{root}/mlflow.db", "artifact_root": str(root / "mlruns")},
    }
    path = root / "overlay.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def run(component: str, nproc: int, args: argparse.Namespace) -> dict:
    import mlflow

    root = Path(tempfile.mkdtemp(prefix=f"serac-ddp-{component}-{nproc}-"))
    cmd = [TORCHRUN, "--standalone", f"--nproc_per_node={nproc}", "-m",
           "serac.cli.main", "train", "--component", component, "--params", str(REPO / "params.yaml"),
           "--overlay", str(overlay(root, args)), "--work", str(root / "work")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "DO_NOT_TRACK": "true", "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    started = time.monotonic()
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"{component} x{nproc} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{root}/mlflow.db")
    (train_run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    metrics = train_run.data.metrics
    losses = [m.value for m in sorted(client.get_metric_history(train_run.info.run_id, "train/loss"),
                                      key=lambda m: m.step)]
    return {"component": component, "nproc": nproc, "wall_s": round(seconds, 1),
            "val": {k[len("val/"):]: v for k, v in metrics.items() if k.startswith("val/")},
            "train_loss_first": losses[0], "train_loss_last": losses[-1],
            "train_loss_mean_last10": sum(losses[-10:]) / len(losses[-10:])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--components", default="scope,counterfactual")
    parser.add_argument("--nprocs", default="1,2")
    parser.add_argument("--train-edits", type=int, default=300)
    parser.add_argument("--val-edits", type=int, default=64)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "distributed.json")
    args = parser.parse_args()
    rows = []
    for component in args.components.split(","):
        for nproc in (int(n) for n in args.nprocs.split(",")):
            row = run(component, nproc, args)
            print(json.dumps(row), flush=True)
            rows.append(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    setup = {k: v for k, v in vars(args).items() if k != "out"}
    args.out.write_text(json.dumps({"setup": setup, "load_avg": os.getloadavg(), "runs": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
