"""Run by the distributed tests under torchrun (or alone): train_loop on a fixed regression problem.

Writes ``<out>/rank<r>.json``: the metrics each rank's hook received, the final weights and
the TrainResult. No dropout and a mean loss, so 1 and N processes must agree to float precision.
``SERAC_DDP_DEVICE=cuda`` trains on the rank's GPU (nccl) instead of the CPU (gloo), with the
loop's default bf16 autocast unless ``SERAC_DDP_PRECISION=no``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import torch

from serac.config import TrainConfig
from serac.training.distributed import distributed_job
from serac.training.loop import train_loop

CFG = TrainConfig(max_steps=12, batch_size=8, grad_accum=2, lr=0.05, warmup_steps=2, eval_every=4,
                  checkpoint_every=5, seed=3)


class Recorder:
    def __init__(self) -> None:
        self.rows: list[dict] = []

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self.rows.append({"step": step, **metrics})


def main(out: Path, device_type: str = "cpu") -> None:
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 4, generator=g)  # 50 examples: epochs wrap inside a batch
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0])
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    if device_type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        x, y, model = x.to(device), y.to(device), model.to(device)

    def loss_fn(idx: list[int]) -> torch.Tensor:
        return torch.nn.functional.mse_loss(model(x[idx]).squeeze(-1), y[idx])

    def eval_fn() -> dict[str, float]:
        return {"mse": float(torch.nn.functional.mse_loss(model(x).squeeze(-1), y))}

    with distributed_job(device_type) as ctx:
        hook = Recorder()
        cfg = dataclasses.replace(CFG, mixed_precision=os.environ.get("SERAC_DDP_PRECISION", CFG.mixed_precision))
        result = train_loop(model, [{"params": model.parameters(), "lr": cfg.lr}], loss_fn, len(x), cfg,
                            out / "train", eval_fn=eval_fn, eval_metric="mse", hooks=[hook])
        report = {"rank": ctx.rank, "world_size": ctx.world_size, "backend": ctx.backend, "metrics": hook.rows,
                  "steps": result.steps, "best": result.best_metric, "history": result.history,
                  "weights": [p.detach().flatten().tolist() for p in model.parameters()]}
        (out / f"rank{ctx.rank}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main(Path(sys.argv[1]), os.environ.get("SERAC_DDP_DEVICE", "cpu"))
