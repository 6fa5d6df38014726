"""The training loop's resumable state as data only: tensors in safetensors, the rest in JSON.

A checkpoint directory holds ``model.safetensors`` (the weights, written by the loop),
``trainer.safetensors`` (the optimizer's per-parameter tensors and the torch RNG state) and
``trainer.json`` (the optimizer's parameter groups, its non-tensor per-parameter values and
the loop's counters). Nothing is unpickled on resume, so a file planted in a checkpoint can
at worst fail to load; a pickled ``trainer.pt`` of the earlier format is refused unopened.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

TRAINER_TENSORS = "trainer.safetensors"
TRAINER_META = "trainer.json"
LEGACY_PICKLE = "trainer.pt"
FORMAT_VERSION = 1
_RNG_KEY = "torch_rng"


class CheckpointError(RuntimeError):
    """A checkpoint directory is incomplete, corrupt, or in the refused pickle format."""


def has_trainer_state(directory: Path) -> bool:
    """True when ``directory`` holds a checkpoint to resume from (in any format: see :func:`load_trainer_state`)."""
    return (directory / TRAINER_META).exists() or (directory / LEGACY_PICKLE).exists()


def save_trainer_state(directory: Path, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Write the optimizer, the torch RNG and ``state`` (JSON-able loop counters) into ``directory``."""
    saved = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {_RNG_KEY: torch.get_rng_state()}
    values: dict[str, dict[str, Any]] = {}
    for param_id, param_state in saved["state"].items():
        values[str(param_id)] = {}
        for name, value in param_state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer/{param_id}/{name}"] = value.detach().cpu().contiguous()
            else:
                values[str(param_id)][name] = value
    meta = {"format_version": FORMAT_VERSION, "state": dict(state),
            "optimizer": {"param_groups": saved["param_groups"], "values": values}}  # fmt: skip
    save_file(tensors, str(directory / TRAINER_TENSORS))
    (directory / TRAINER_META).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")


def load_trainer_state(directory: Path, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Restore the optimizer and the torch RNG; returns the loop counters. Errors name the file."""
    if (directory / LEGACY_PICKLE).exists() and not (directory / TRAINER_META).exists():
        raise CheckpointError(
            f"{directory / LEGACY_PICKLE}: pickled checkpoint (earlier serac format) refused without opening it: "
            f"unpickling can run code. Delete {directory} to train this component from the start"
        )
    meta_path, tensors_path = directory / TRAINER_META, directory / TRAINER_TENSORS
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        groups, values, state = meta["optimizer"]["param_groups"], meta["optimizer"]["values"], meta["state"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{meta_path}: corrupt trainer state: {exc!r}") from exc
    try:
        tensors = load_file(str(tensors_path))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{tensors_path}: corrupt trainer tensors: {exc}") from exc
    try:
        per_param: dict[int, dict[str, Any]] = {int(k): dict(v) for k, v in values.items()}
    except (ValueError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{meta_path}: corrupt optimizer values: {exc!r}") from exc
    for key, tensor in tensors.items():
        if key == _RNG_KEY:
            continue
        prefix, param_id, name = (key.split("/", 2) + ["", ""])[:3]
        if prefix != "optimizer" or not param_id.isdigit() or not name:
            raise CheckpointError(f"{tensors_path}: unexpected tensor {key!r}")
        per_param.setdefault(int(param_id), {})[name] = tensor
    if _RNG_KEY not in tensors:
        raise CheckpointError(f"{tensors_path}: no {_RNG_KEY!r} tensor")
    try:
        optimizer.load_state_dict({"state": per_param, "param_groups": groups})
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"{meta_path}: optimizer state does not fit this model: {exc}") from exc
    torch.set_rng_state(tensors[_RNG_KEY])  # dropout masks continue as in an uninterrupted run
    return dict(state)
