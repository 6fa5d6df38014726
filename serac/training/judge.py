"""Train a task's judge (:class:`~serac.tasks.spec.JudgeSpec`, e.g. ConvSent's sentiment classifier)
before the editor's components: MiniLM with a classification head on (text, label) pairs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch

from serac.config import ProjectConfig, TrainConfig
from serac.data.prepare import read_split
from serac.io import write_json
from serac.models.artifacts import CONFIG_FILE
from serac.models.device import resolve_device
from serac.models.seq2seq import TextToText
from serac.tasks.judge import LABELS
from serac.tasks.spec import JudgeSpec, TaskContext
from serac.training.generative import train_text_to_text
from serac.training.loop import TrainHook, TrainResult


def train_judge(cfg: TrainConfig, pairs: Sequence[tuple[str, str]], out_dir: str | Path, checkpoints: str | Path,
                device: str | torch.device = "cpu", hooks: Sequence[TrainHook] = (), max_input_length: int = 64,
                labels: tuple[str, ...] = LABELS) -> TrainResult | None:
    """Fine-tune MiniLM with a classification head on (text, label) pairs; save to ``out_dir``.

    Returns the training result (None when ``out_dir`` already holds a judge).
    """
    if (Path(out_dir) / CONFIG_FILE).exists():
        return None
    model = TextToText.from_pretrained("classifier", "minilm", labels=labels, max_input_length=max_input_length)
    model = model.to(device)
    result = train_text_to_text(model, list(pairs), cfg, checkpoints, hooks=hooks, desc="sentiment judge")
    model.save(out_dir)
    return result


def train_task_judge(config: ProjectConfig, judge: JudgeSpec, work_dir: Path, ctx: TaskContext,
                     hooks: Sequence[TrainHook] = ()) -> tuple[TrainResult | None, float]:
    """The judge on the pairs of the train split's groups (``tasks.judge`` steps); its accuracy on the test split's.

    The accuracy is written to ``work_dir/<judge directory>.json`` (and read from there on reuse).
    """
    tc = config.training
    train_groups = judge.groups(read_split(tc.data_dir, tc.dataset, "train"))
    test_groups = judge.groups(read_split(tc.data_dir, tc.dataset, "test"))
    device = resolve_device(config.editor.device)
    result = train_judge(config.tasks.judge, judge.pairs(train_groups, ctx), work_dir / judge.directory,
                         work_dir / "checkpoints" / judge.directory, device=device, hooks=hooks,
                         max_input_length=judge.max_input_length, labels=judge.labels)
    report_path = work_dir / f"{judge.directory}.json"
    if result is None and report_path.is_file():
        return None, float(json.loads(report_path.read_text())["heldout_accuracy"])
    heldout = judge.pairs(test_groups, ctx)
    accuracy = judge.load(work_dir / judge.directory, device).accuracy(heldout)
    write_json(report_path, {"heldout_accuracy": accuracy, "heldout_sentences": len(heldout),
                             "heldout_entities": len(test_groups), "train_entities": len(train_groups)})
    return result, accuracy
