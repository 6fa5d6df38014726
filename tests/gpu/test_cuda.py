"""The ``device: auto`` switch on a CUDA machine: the same components train, score, answer and
round-trip on the GPU as on the CPU, and data-parallel training takes the nccl path."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny import minilm_tokenizer, tiny_bert_config, tiny_counterfactual

from serac.config import EditorConfig, MemoryConfig, ScopeConfig, TrainConfig
from serac.data.schema import EditRecord, Example
from serac.editor import SeracEditor
from serac.memory import EditMemory
from serac.models.base import CallableBaseModel
from serac.models.counterfactual import CounterfactualModel
from serac.models.device import resolve_device
from serac.models.encoder import TextEncoder
from serac.models.scope import CrossEncoderScope, EmbeddingScope, ScopeClassifier
from serac.tasks.examples import CounterfactualExample
from serac.training.generative import train_counterfactual

REPO = Path(__file__).resolve().parents[2]
CUDA = torch.device("cuda")
EDITS = [EditRecord("qa", "Who is the prime minister of the United Kingdom?", "Boris Johnson",
                    in_scope=[Example("Who is the UK's prime minister?", "Boris Johnson")]),
         EditRecord("qa", "What is the longest river in Africa?", "Congo")]
QUERIES = ["Who is the UK's prime minister?", "Which river in Africa is the longest?", "How do I bake bread?"]


def tiny_scope(seed: int = 0) -> ScopeClassifier:
    torch.manual_seed(seed)
    embedding = EmbeddingScope(TextEncoder.from_config(tiny_bert_config(), minilm_tokenizer(), max_length=32))
    cross = CrossEncoderScope.from_config(tiny_bert_config(), minilm_tokenizer(), max_length=48)
    return ScopeClassifier(ScopeConfig(kind="rerank"), embedding, cross).eval()


def test_auto_device_is_the_gpu():
    assert resolve_device("auto").type == "cuda"
    assert resolve_device("cuda:0") == torch.device("cuda", 0)


def test_scope_classifier_scores_on_the_gpu_like_on_the_cpu():
    cpu = tiny_scope()
    gpu = copy.deepcopy(cpu).to(CUDA)
    assert next(gpu.embedding.parameters()).is_cuda and next(gpu.cross.parameters()).is_cuda
    np.testing.assert_allclose(gpu.embed_queries(QUERIES), cpu.embed_queries(QUERIES), atol=1e-4)
    edits = [[gpu.edit_text(r) for r in EDITS]] * len(QUERIES)
    cosines = [np.array([0.9, 0.2], dtype=np.float32)] * len(QUERIES)
    for on_gpu, on_cpu in zip(gpu.score_batch(QUERIES, edits, cosines), cpu.score_batch(QUERIES, edits, cosines)):
        np.testing.assert_allclose(on_gpu, on_cpu, atol=1e-4)


def copy_examples(n: int = 64) -> list[CounterfactualExample]:
    words = ["alpha", "bravo", "delta", "tango", "zulu", "kilo", "lima", "oscar"]
    return [CounterfactualExample(f"what is item {i}?", words[i % len(words)], f"item {i} is?", words[i % len(words)])
            for i in range(n)]


def test_counterfactual_model_trains_on_the_gpu_and_reloads_on_the_cpu(tmp_path):
    model = tiny_counterfactual().to(CUDA)
    cfg = TrainConfig(max_steps=40, batch_size=16, lr=3e-3, warmup_steps=2, eval_every=20, checkpoint_every=20, seed=0)
    examples = copy_examples()
    inputs = ([e.edit_input for e in examples[:8]], [e.edit_label for e in examples[:8]], [e.query for e in examples[:8]],
              [e.target for e in examples[:8]])
    with torch.no_grad():
        before = float(model.loss(*inputs))
    result = train_counterfactual(model, examples, examples[:16], cfg, tmp_path / "ckpt")
    assert result.steps == 40 and next(model.parameters()).is_cuda
    model.eval()
    with torch.no_grad():
        after = float(model.loss(*inputs))
    assert after < before * 0.7, (before, after)
    answers = model.answer(*inputs[:3])
    model.save(tmp_path / "cf")
    on_cpu = CounterfactualModel.load(tmp_path / "cf", device="cpu")
    assert not next(on_cpu.parameters()).is_cuda
    with torch.no_grad():
        assert float(on_cpu.loss(*inputs)) == pytest.approx(after, rel=1e-3)
    assert on_cpu.answer(*inputs[:3]) == answers


def test_editor_routes_and_answers_on_the_gpu_like_on_the_cpu(tmp_path):
    def editor(device: torch.device, root: Path) -> SeracEditor:
        scope = tiny_scope().to(device)
        torch.manual_seed(0)
        counterfactual = tiny_counterfactual().to(device).eval()
        memory = EditMemory.open(root, MemoryConfig(root=str(root)))
        return SeracEditor(scope, counterfactual, CallableBaseModel(lambda qs: ["base:" + q for q in qs]), memory,
                           EditorConfig(threshold=0.5, device=str(device)))

    gpu, cpu = editor(CUDA, tmp_path / "gpu"), editor(torch.device("cpu"), tmp_path / "cpu")
    for e in (gpu, cpu):
        e.edit(EDITS)
    on_gpu, on_cpu = gpu.predict(QUERIES), cpu.predict(QUERIES)
    assert [(p.routed_to, p.edit_id, p.answer) for p in on_gpu] == [(p.routed_to, p.edit_id, p.answer) for p in on_cpu]
    assert [p.score for p in on_gpu] == pytest.approx([p.score for p in on_cpu], abs=1e-4)


def torchrun_one(script: str, out: Path, **env_extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]), **env_extra)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1", script, str(out)]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done


@pytest.mark.parametrize(("precision", "rel"), [("no", 1e-4), ("auto", 2e-2)])
def test_training_loop_under_torchrun_on_the_gpu_matches_the_cpu(tmp_path, precision, rel):
    """fp32 on the GPU follows the CPU closely; the default bf16 autocast within bf16's precision."""
    worker = str(REPO / "tests" / "team" / "ddp_worker.py")
    reports = {}
    for device in ("cpu", "cuda"):
        torchrun_one(worker, tmp_path / device, SERAC_DDP_DEVICE=device, SERAC_DDP_PRECISION=precision)
        reports[device] = json.loads((tmp_path / device / "rank0.json").read_text())
    assert reports["cuda"]["steps"] == reports["cpu"]["steps"] == 12

    def losses(report):
        return [row["train/loss"] for row in report["metrics"] if "train/loss" in row]

    on_gpu = losses(reports["cuda"])
    assert len(on_gpu) == 12 and on_gpu[-1] < on_gpu[0] / 2
    assert on_gpu == pytest.approx(losses(reports["cpu"]), rel=rel, abs=1e-5)


def test_ddp_wrapper_on_nccl_gives_the_plain_gradient(tmp_path):
    torchrun_one(str(Path(__file__).with_name("nccl_worker.py")), tmp_path)
    report = json.loads((tmp_path / "nccl.json").read_text())
    assert report["backend"] == "nccl" and report["device"].startswith("cuda")
    assert report["grad_diff"] < 1e-6 and report["weights_moved"] == 0.0
