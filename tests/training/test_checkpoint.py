"""Training checkpoints are data: weights and optimizer tensors in safetensors, the rest in JSON.
Nothing in a checkpoint directory is unpickled, so a planted object cannot run on resume."""

from __future__ import annotations

import json

import pytest
import torch

from serac.config import TrainConfig
from serac.training.loop import CHECKPOINT_DIR, train_loop

CFG = TrainConfig(max_steps=12, batch_size=8, lr=0.05, warmup_steps=2, eval_every=10**6, checkpoint_every=5)


def _problem(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(32, 4, generator=g)
    y = x.sum(-1)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.1), torch.nn.Linear(8, 1))
    return model, lambda idx: torch.nn.functional.mse_loss(model(x[idx]).squeeze(-1), y[idx])


def _train(out_dir, crash_at: int | None = None):
    """Train ``CFG``; with ``crash_at`` the process is "killed" during that loss call."""
    model, loss_fn = _problem()
    calls = {"n": 0}

    def loss(idx):
        calls["n"] += 1
        if calls["n"] == crash_at:
            raise KeyboardInterrupt
        return loss_fn(idx)

    result = train_loop(model, [{"params": model.parameters(), "lr": CFG.lr}], loss, 32, CFG, out_dir)
    return model, result


def _checkpointed(out_dir) -> None:
    with pytest.raises(KeyboardInterrupt):
        _train(out_dir, crash_at=8)  # the last checkpoint is step 5


class Planted:
    """Unpickling this creates ``path``: what a hostile object in a checkpoint could do."""

    def __init__(self, path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_checkpoint_holding_a_pickled_object_is_refused_without_unpickling(tmp_path):
    _checkpointed(tmp_path / "run")
    checkpoint = tmp_path / "run" / CHECKPOINT_DIR
    canary = tmp_path / "code-ran"
    # a pickle where the trainer state was (the old trainer.pt), and the new files gone
    for path in checkpoint.iterdir():
        if path.name != "model.safetensors":
            path.unlink()
    torch.save({"optimizer": Planted(canary), "state": {"step": 5}}, checkpoint / "trainer.pt")
    with pytest.raises(RuntimeError, match="trainer.pt"):
        _train(tmp_path / "run")
    assert not canary.exists()


def test_checkpoint_files_are_safetensors_and_json_only(tmp_path):
    _checkpointed(tmp_path / "run")
    checkpoint = tmp_path / "run" / CHECKPOINT_DIR
    assert sorted(p.name for p in checkpoint.iterdir()) == ["model.safetensors", "trainer.json", "trainer.safetensors"]
    meta = json.loads((checkpoint / "trainer.json").read_text())
    assert meta["state"]["step"] == 5


def test_a_corrupt_trainer_state_names_the_file(tmp_path):
    _checkpointed(tmp_path / "run")
    (tmp_path / "run" / CHECKPOINT_DIR / "trainer.json").write_text("{not json")
    with pytest.raises(RuntimeError, match="trainer.json"):
        _train(tmp_path / "run")


def test_resume_restores_optimizer_and_rng_exactly(tmp_path):
    full, _ = _train(tmp_path / "full")
    _checkpointed(tmp_path / "split")
    resumed, result = _train(tmp_path / "split")
    assert result.resumed_from == 5 and result.steps == CFG.max_steps
    for p, q in zip(full.parameters(), resumed.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
