"""Small transformers helpers shared by the text-to-text models: quiet loads, offline tokenizers, configs."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from serac.models.artifacts import ArtifactError
from serac.models.hub import ensure_offline, resolve_name_or_path


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load reports and progress bars (expected missing weights are not news)."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def load_tokenizer_at(name_or_path: str, revision: str | None = None) -> Any:
    """A tokenizer loaded offline, at ``revision`` when given (not cached, unlike ``hub.load_tokenizer``)."""
    ensure_offline()
    from transformers import AutoTokenizer

    extra = {"revision": revision} if revision else {}
    return AutoTokenizer.from_pretrained(resolve_name_or_path(name_or_path), trust_remote_code=False, **extra)


def hf_config_from_dict(values: Any, config_path: Path) -> Any:
    """A transformers config from its ``to_dict()`` form; a bad one raises ArtifactError naming ``config_path``."""
    from transformers import AutoConfig

    if not isinstance(values, dict) or "model_type" not in values:
        raise ArtifactError(f"{config_path}: 'hf_config' is missing or has no 'model_type'")
    rest = {k: v for k, v in values.items() if k != "model_type"}
    try:
        return AutoConfig.for_model(values["model_type"], **rest)
    except (ValueError, TypeError, KeyError) as exc:
        raise ArtifactError(f"{config_path}: cannot rebuild the model config: {exc}") from exc
