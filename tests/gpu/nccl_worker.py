"""Run under torchrun on one GPU: a one-rank nccl group, the project's DDP wrapper, gradients vs plain autograd.

Writes ``<out>/nccl.json`` with the backend and the largest gradient difference.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from serac.training.distributed import DistContext, sharded_loss


def main(out: Path) -> None:
    torch.cuda.set_device(0)
    dist.init_process_group(backend="nccl")
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(0)).cuda()
    y = x.sum(-1)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).cuda()
    reference = [p.detach().clone() for p in model.parameters()]

    def loss_fn(idx: list[int]) -> torch.Tensor:
        return torch.nn.functional.mse_loss(model(x[idx]).squeeze(-1), y[idx])

    batch = list(range(16))
    loss_fn(batch).backward()
    plain = [p.grad.detach().clone() for p in model.parameters()]
    model.zero_grad()
    wrapped = sharded_loss(DistContext(0, 1, 0, dist.get_backend()), model, loss_fn)
    wrapped(batch).backward()
    diff = max(float((p.grad - g).abs().max()) for p, g in zip(model.parameters(), plain))
    moved = max(float((p.detach() - r).abs().max()) for p, r in zip(model.parameters(), reference))
    out.mkdir(parents=True, exist_ok=True)
    (out / "nccl.json").write_text(json.dumps({"backend": dist.get_backend(), "grad_diff": diff,
                                               "weights_moved": moved, "device": str(x.device)}))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
