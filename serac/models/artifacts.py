"""Save and load trained components as ``config.json`` + ``model.safetensors`` (+ tokenizer).

Every trained part of the editor is stored the same way (peft-style): a JSON
config naming its ``kind``, the artifact format version and the library
versions it was written with, the weights in safetensors, and the tokenizer
files in ``tokenizer/``. Loading needs no training code. Unknown config keys
are ignored on load so newer writers stay readable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model

FORMAT_VERSION = 1
"""Bump when the on-disk layout changes incompatibly."""

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_DIR = "tokenizer"


class ArtifactError(RuntimeError):
    """An artifact directory is missing files, corrupt, or of the wrong kind."""


class ArtifactVersionError(ArtifactError):
    """An artifact was written by an incompatible format version."""


def library_versions() -> dict[str, str]:
    import transformers

    import serac

    return {"serac": serac.__version__, "torch": torch.__version__, "transformers": transformers.__version__}


@dataclass(frozen=True)
class ArtifactInfo:
    """The parsed ``config.json`` of an artifact."""

    path: Path
    kind: str
    config: dict[str, Any]
    versions: dict[str, str]
    format_version: int

    @property
    def tokenizer_dir(self) -> Path | None:
        path = self.path / TOKENIZER_DIR
        return path if path.is_dir() else None


def save_artifact(
    directory: str | Path,
    *,
    kind: str,
    config: dict[str, Any],
    module: torch.nn.Module,
    tokenizer: Any | None = None,
    tensors: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write ``module``'s weights (or only ``tensors``, e.g. adapters), ``config`` and the tokenizer.

    The caller makes the directory atomic (e.g. with :func:`serac.io.atomic_dir`).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if tensors is not None:
        save_file(tensors, str(directory / WEIGHTS_FILE))
    else:
        # save_model handles tied/shared tensors (e.g. decoder embeddings tied to the LM head).
        save_model(module, str(directory / WEIGHTS_FILE))
    write_artifact_config(directory, kind=kind, config=config)
    if tokenizer is not None:
        tokenizer.save_pretrained(str(directory / TOKENIZER_DIR))
    return directory


def write_artifact_config(directory: str | Path, *, kind: str, config: dict[str, Any]) -> Path:
    """Write ``config.json`` alone (format version, artifact kind, ``config``, library versions):
    the whole artifact of a component without weights of its own."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    meta = {"format_version": FORMAT_VERSION, "kind": kind, "config": config, "versions": library_versions()}
    (directory / CONFIG_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")
    return directory


def read_json(path: Path) -> Any:
    """A JSON file of an artifact; unreadable or corrupt files raise :class:`ArtifactError` naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:
        raise ArtifactError(f"{path}: corrupt JSON: {exc}") from exc


def read_artifact_info(directory: str | Path, expected_kind: str | tuple[str, ...] | None = None) -> ArtifactInfo:
    """Parse and check ``config.json``; raise :class:`ArtifactError` naming the file."""
    directory = Path(directory)
    config_path = directory / CONFIG_FILE
    if not directory.is_dir():
        raise ArtifactError(f"{directory}: artifact directory does not exist")
    if not config_path.is_file():
        raise ArtifactError(f"{config_path}: missing (not a serac artifact?)")
    meta = read_json(config_path)
    if not isinstance(meta, dict) or "kind" not in meta or "format_version" not in meta:
        raise ArtifactError(f"{config_path}: missing 'kind' or 'format_version'")
    version = meta["format_version"]
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ArtifactVersionError(
            f"{config_path}: artifact format version {version!r} is newer than this serac supports "
            f"({FORMAT_VERSION}); upgrade serac (written with {meta.get('versions', {})})"
        )
    kinds = (expected_kind,) if isinstance(expected_kind, str) else expected_kind
    if kinds is not None and meta["kind"] not in kinds:
        raise ArtifactError(f"{config_path}: artifact kind {meta['kind']!r}, expected one of {kinds}")
    return ArtifactInfo(
        path=directory,
        kind=meta["kind"],
        config=dict(meta.get("config") or {}),
        versions=dict(meta.get("versions") or {}),
        format_version=version,
    )


def load_weights(directory: str | Path, module: torch.nn.Module, strict: bool = True) -> None:
    """Load ``model.safetensors`` into ``module``; corrupt or mismatched files raise :class:`ArtifactError`."""
    path = Path(directory) / WEIGHTS_FILE
    if not path.is_file():
        raise ArtifactError(f"{path}: missing weights file")
    try:
        missing, unexpected = load_model(module, str(path), strict=False)
    except (SafetensorError, OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: corrupt weights: {exc}") from exc
    except RuntimeError as exc:
        raise ArtifactError(f"{path}: weights do not fit the configured model: {exc}") from exc
    if strict and (missing or unexpected):
        raise ArtifactError(
            f"{path}: weights do not fit the configured model (missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]})"
        )


def load_partial_weights(directory: str | Path, module: torch.nn.Module, marker: str) -> None:
    """Load a ``model.safetensors`` holding only the tensors whose names contain ``marker`` (adapters).

    Every such tensor of ``module`` must be in the file and the file may hold nothing else.
    """
    path = Path(directory) / WEIGHTS_FILE
    if not path.is_file():
        raise ArtifactError(f"{path}: missing weights file")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: corrupt weights: {exc}") from exc
    expected = {k for k in module.state_dict() if marker in k}
    if set(tensors) != expected:
        raise ArtifactError(
            f"{path}: adapter weights do not fit the configured model (missing {sorted(expected - set(tensors))[:5]}, "
            f"unexpected {sorted(set(tensors) - expected)[:5]})"
        )
    try:
        module.load_state_dict(tensors, strict=False)
    except RuntimeError as exc:
        raise ArtifactError(f"{path}: adapter weights do not fit the configured model: {exc}") from exc
