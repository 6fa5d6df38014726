"""The shared training loop: it learns, checkpoints, resumes identically and stops early."""

from dataclasses import replace

import pytest
import torch

from serac.config import TrainConfig
from serac.models.optim import StepSampler, lr_at
from serac.training.loop import train_loop


def _problem(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 4, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0])
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.1), torch.nn.Linear(8, 1))

    def loss_fn(idx):
        return torch.nn.functional.mse_loss(model(x[idx]).squeeze(-1), y[idx])

    def eval_fn():
        return {"mse": float(torch.nn.functional.mse_loss(model(x).squeeze(-1), y).detach())}

    return model, loss_fn, eval_fn


CFG = TrainConfig(max_steps=60, batch_size=8, lr=0.05, warmup_steps=5, eval_every=20, checkpoint_every=10)


def test_sampler_is_a_function_of_the_step():
    a, b = StepSampler(10, 4, seed=3), StepSampler(10, 4, seed=3)
    seq = [a.batch(i) for i in range(6)]
    assert [b.batch(i) for i in reversed(range(6))][::-1] == seq
    # every index appears once per epoch (10 examples = 2.5 batches)
    flat = [i for batch in seq for i in batch][:20]
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:20]) == list(range(10))


def test_lr_schedule_warms_up_then_decays():
    assert lr_at(0, CFG) < lr_at(4, CFG) == pytest.approx(1.0)
    assert lr_at(CFG.max_steps, CFG) == pytest.approx(0.1)


def test_loop_reduces_loss_and_keeps_best(tmp_path):
    model, loss_fn, eval_fn = _problem()
    before = eval_fn()["mse"]
    result = train_loop(model, [{"params": model.parameters(), "lr": CFG.lr}], loss_fn, 64, CFG, tmp_path,
                        eval_fn=eval_fn, eval_metric="mse")
    assert result.steps == 60 and result.stopped == "max_steps"
    assert eval_fn()["mse"] < before / 5
    assert eval_fn()["mse"] == pytest.approx(result.best_metric, rel=1e-5)
    assert (tmp_path / "checkpoint" / "trainer.json").exists()


def test_interrupted_run_resumes_to_the_same_weights(tmp_path):
    full_model, loss_fn, _ = _problem()
    train_loop(full_model, [{"params": full_model.parameters(), "lr": CFG.lr}], loss_fn, 64, CFG, tmp_path / "a")

    model, loss_fn2, _ = _problem()
    calls = {"n": 0}

    def crashing_loss(idx):
        calls["n"] += 1
        if calls["n"] == 36:  # killed in step 36; the last checkpoint is step 30
            raise KeyboardInterrupt
        return loss_fn2(idx)

    with pytest.raises(KeyboardInterrupt):
        train_loop(model, [{"params": model.parameters(), "lr": CFG.lr}], crashing_loss, 64, CFG, tmp_path / "b")
    model2, loss_fn3, _ = _problem()
    resumed = train_loop(model2, [{"params": model2.parameters(), "lr": CFG.lr}], loss_fn3, 64,
                         CFG, tmp_path / "b")
    assert resumed.resumed_from == 30 and resumed.steps == 60
    for p, q in zip(full_model.parameters(), model2.parameters()):
        torch.testing.assert_close(p, q)


def test_early_stopping_on_a_flat_metric(tmp_path):
    model, loss_fn, _ = _problem()
    cfg = replace(CFG, max_steps=200, eval_every=5, patience=2)
    result = train_loop(model, [{"params": model.parameters(), "lr": CFG.lr}], loss_fn, 64, cfg, tmp_path,
                        eval_fn=lambda: {"acc": 0.5}, eval_metric="acc", higher_is_better=True)
    assert result.stopped == "early_stopping" and result.steps < 200
