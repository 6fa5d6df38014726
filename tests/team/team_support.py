"""Helpers of the team-mode tests: a tiny retrain setup, REST calls to the Prefect and MLflow servers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import yaml

FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


def save_tiny_models(root: Path) -> dict[str, str]:
    """Tiny random models with the MiniLM tokenizer, saved as local model directories."""
    from tiny import minilm_tokenizer, tiny_bert_model, tiny_seq2seq

    encoder, seq2seq = root / "tiny-encoder", root / "tiny-seq2seq"
    tiny_bert_model(seed=0).save_pretrained(encoder)
    tiny_seq2seq(seed=0, tie=False, max_new_tokens=4).model.save_pretrained(seq2seq)
    for path in (encoder, seq2seq):
        minilm_tokenizer().save_pretrained(path)
    return {"encoder": str(encoder), "seq2seq": str(seq2seq)}


def write_retrain_setup(root: Path, models: dict[str, str], counterfactual_steps: int = 4,
                        checkpoint_every: int = 25) -> Path:
    """Synthetic edits split into train/val/test, params.yaml of a tiny retrain; returns the params path."""
    from serac.data.schema import records_to_table
    from serac.data.synthetic import synthetic_edits
    from serac.io import write_parquet

    records = synthetic_edits(40, seed=5)
    for split, part in {"train": records[:24], "val": records[24:32], "test": records[32:]}.items():
        write_parquet(root / "data" / "syn" / f"{split}.parquet", records_to_table(part))
    steps = {"max_steps": 4, "batch_size": 4, "warmup_steps": 1, "eval_every": 1000, "checkpoint_every": 2}
    params = {
        "scope": {"encoder": models["encoder"]},
        "counterfactual": {"name_or_path": models["seq2seq"], "max_new_tokens": 4},
        "base": {"name_or_path": models["seq2seq"], "max_new_tokens": 4},
        "editor": {"device": "cpu", "artifact_dir": str(root / "editor")},
        "memory": {"root": str(root / "memory")},
        "training": {"dataset": "syn", "data_dir": str(root / "data"), "hard_negatives": 1, "scope": steps,
                     "counterfactual": {**steps, "max_steps": counterfactual_steps, "checkpoint_every": checkpoint_every},
                     "base": steps},
        "evaluation": {"ks": [1, 4], "max_queries_per_k": 8, "baselines": ["unedited", "lu"], "tune_k": 4,
                       "threshold_candidates": [0.5, 0.9]},
        # the team's MLFLOW_TRACKING_URI wins over this (the worker's environment has it)
        "tracking": {"tracking_uri": f"sqlite:///{root}/unused-mlflow.db", "artifact_root": str(root / "unused")},
        "registry": {"primary_k": 4},
    }
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def run_deployment(api: httpx.Client, name: str, parameters: dict[str, Any]) -> str:
    """Create a flow run of deployment ``flow/deployment`` through the REST API; its id."""
    deployment = api.get(f"/deployments/name/{name}").raise_for_status().json()
    run = api.post(f"/deployments/{deployment['id']}/create_flow_run", json={"parameters": parameters})
    return run.raise_for_status().json()["id"]


def flow_run(api: httpx.Client, run_id: str) -> dict[str, Any]:
    return api.get(f"/flow_runs/{run_id}").raise_for_status().json()


def wait_final(api: httpx.Client, run_id: str, timeout: float, on_poll=None) -> dict[str, Any]:
    """Poll the flow run until it is in a final state (``on_poll(run)`` each time); the run."""
    deadline = time.monotonic() + timeout
    while True:
        run = flow_run(api, run_id)
        if on_poll is not None:
            on_poll(run)
        if run["state"]["type"] in FINAL:
            return run
        if time.monotonic() > deadline:
            raise TimeoutError(f"flow run {run_id} still {run['state']['name']} after {timeout:.0f} s")
        time.sleep(0.5)


def state_history(api: httpx.Client, run_id: str) -> list[dict[str, Any]]:
    states = api.get("/flow_run_states/", params={"flow_run_id": run_id}).raise_for_status().json()
    return sorted(states, key=lambda s: s["timestamp"])


def task_runs(api: httpx.Client, run_id: str) -> list[dict[str, Any]]:
    body = {"flow_runs": {"id": {"any_": [run_id]}}}
    return api.post("/task_runs/filter", json=body).raise_for_status().json()
