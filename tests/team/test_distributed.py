"""Data-parallel training under torchrun: 2 processes (gloo) match 1 process, rank 0 alone writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, child_env

from serac.data.schema import records_to_table
from serac.data.synthetic import synthetic_edits
from serac.io import write_parquet
from serac.team.ports import free_port
from serac.training.distributed import DistContext, shard_indices

TORCHRUN = str(Path(sys.executable).with_name("torchrun"))


def torchrun(nproc: int, *args: str, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    cmd = [TORCHRUN, f"--nproc_per_node={nproc}", "--master-addr=127.0.0.1", f"--master-port={free_port()}", *args]
    done = subprocess.run(cmd, cwd=cwd, env=child_env(), capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return done


def test_shards_partition_the_global_batch():
    batch = list(range(10, 21))  # 11 indices over 3 ranks: 4 + 4 + 3, in order
    shards = [shard_indices(batch, r, 3) for r in range(3)]
    assert [len(s) for s in shards] == [4, 4, 3] and sum(shards, []) == batch
    with pytest.raises(ValueError, match="batch size"):
        shard_indices([1], 0, 2)
    assert not DistContext().enabled and DistContext().sum([1.0, 2.0]) == [1.0, 2.0]


def test_two_processes_train_like_one(tmp_path):
    """Same seed and global batch (with gradient accumulation and evaluation): same losses and weights."""
    worker = str(Path(__file__).with_name("ddp_worker.py"))
    torchrun(1, worker, str(tmp_path / "one"), cwd=REPO)
    torchrun(2, worker, str(tmp_path / "two"), cwd=REPO)
    one = json.loads((tmp_path / "one" / "rank0.json").read_text())
    main, other = (json.loads((tmp_path / "two" / f"rank{r}.json").read_text()) for r in (0, 1))
    assert (one["world_size"], main["world_size"], main["backend"]) == (1, 2, "gloo")

    def losses(report):
        return [row["train/loss"] for row in report["metrics"] if "train/loss" in row]

    assert len(losses(main)) == one["steps"] == main["steps"] == 12
    assert losses(main) == pytest.approx(losses(one), abs=1e-5)
    assert [h["mse"] for h in main["history"]] == pytest.approx([h["mse"] for h in one["history"]], rel=1e-5)
    flat = [sum(r["weights"], []) for r in (one, main, other)]
    assert flat[1] == pytest.approx(flat[0], abs=1e-5)
    assert flat[2] == flat[1], "every rank ends with the same weights"
    assert other["metrics"] == [], "only rank 0 logs"
    assert (tmp_path / "two" / "train" / "checkpoint" / "trainer.json").exists()


def write_setup(root: Path, steps: int = 3) -> Path:
    records = synthetic_edits(24, seed=7)
    for split, part in {"train": records[:16], "val": records[16:20], "test": records[20:]}.items():
        write_parquet(root / "data" / "syn" / f"{split}.parquet", records_to_table(part))
    tiny = {"max_steps": steps, "batch_size": 4, "warmup_steps": 1, "eval_every": 2, "checkpoint_every": 2}
    params = {
        "editor": {"device": "cpu", "artifact_dir": str(root / "editor")},
        "memory": {"root": str(root / "memory")},
        "training": {"dataset": "syn", "data_dir": str(root / "data"), "hard_negatives": 1, "max_val_edits": 4,
                     "scope": tiny, "counterfactual": tiny, "base": tiny},
        "tracking": {"tracking_uri": f"sqlite:///{root}/mlflow.db", "artifact_root": str(root / "mlruns")},
    }
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_serac_train_runs_unchanged_under_torchrun(tmp_path):
    """`serac train` on 2 processes: the component is trained and saved once, one MLflow run from rank 0."""
    import mlflow

    params = write_setup(tmp_path)
    done = torchrun(2, "-m", "serac.cli.main", "train", "--component", "scope", "--params", str(params),
                    "--work", str(tmp_path / "work"), cwd=tmp_path)
    assert "(2 processes, gloo)" in done.stdout
    assert done.stdout.count("scope classifier ready") == 1, done.stdout
    assert (tmp_path / "work" / "scope" / "config.json").exists()
    assert (tmp_path / "work" / "checkpoints" / "scope_embedding" / "checkpoint" / "trainer.json").exists()
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert [r.info.run_name for r in runs] == ["train-scope"], "rank 1 opened no MLflow run"
    history = client.get_metric_history(runs[0].info.run_id, "scope/train/loss")  # the component prefix
    assert sorted(m.step for m in history) == [1, 2, 3], "each step logged once"
