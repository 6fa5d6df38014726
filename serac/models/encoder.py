"""Sentence encoder: a Hugging Face backbone, mean pooling over the attention mask, L2 norm.

This is exactly what sentence-transformers does for all-MiniLM-L6-v2 (its
``1_Pooling`` config is mean pooling, followed by a ``Normalize`` module), done
with plain transformers because importing sentence-transformers costs ~5 s.
The scope classifier and the edit memory both embed through this class, so an
edit's stored vector and a query's vector always come from the same code path.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from serac.models.artifacts import CONFIG_FILE, ArtifactError, ArtifactInfo
from serac.models.hub import ensure_offline, load_tokenizer, resolve_name_or_path

_VOLATILE_CONFIG_KEYS = frozenset({"transformers_version", "architectures", "dtype", "torch_dtype"})
"""Config keys that change with how a model was loaded, not with what it computes."""

_FINGERPRINT_SAMPLES = 4096
"""Elements hashed per parameter tensor (evenly strided) by :meth:`TextEncoder.fingerprint`."""


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average ``hidden[b, t, :]`` over the tokens where ``attention_mask`` is 1."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    summed = (hidden * mask).sum(dim=1)
    counts = mask.sum(dim=1).clamp(min=1e-9)
    return summed / counts


def stable_config_dict(hf_config: Any) -> dict[str, Any]:
    """The backbone config as a dict without load-dependent keys (paths, versions, dtype)."""
    return {
        key: value
        for key, value in hf_config.to_dict().items()
        if not key.startswith("_") and key not in _VOLATILE_CONFIG_KEYS
    }


def config_from_dict(values: dict[str, Any]) -> Any:  # -> PretrainedConfig
    """Rebuild a Hugging Face config from :meth:`PretrainedConfig.to_dict` output."""
    from transformers import AutoConfig

    values = dict(values)
    model_type = values.pop("model_type", None)
    if not model_type:
        raise ValueError("backbone config has no 'model_type'")
    return AutoConfig.for_model(model_type, **values)


def build_backbone(hf_config: Any) -> nn.Module:
    """A randomly initialised ``AutoModel`` for ``hf_config`` (float32)."""
    from transformers import AutoModel

    return AutoModel.from_config(hf_config, dtype=torch.float32, trust_remote_code=False)


def load_backbone(name_or_path: str) -> tuple[nn.Module, Any]:
    """Pretrained ``AutoModel`` + tokenizer, offline; ``minilm`` is the packaged default."""
    ensure_offline()
    from transformers import AutoModel

    path = resolve_name_or_path(name_or_path)
    backbone = AutoModel.from_pretrained(path, dtype=torch.float32, trust_remote_code=False)
    return backbone, load_tokenizer(name_or_path)


def artifact_field(info: ArtifactInfo, key: str, typ: type) -> Any:
    """``info.config[key]``, checked to be a ``typ``; otherwise :class:`ArtifactError` naming the file."""
    value = info.config.get(key)
    if not isinstance(value, typ):
        raise ArtifactError(f"{info.path / CONFIG_FILE}: missing or invalid {key!r}")
    return value


def artifact_backbone(info: ArtifactInfo) -> tuple[Any, Any]:
    """The backbone's HF config (under ``backbone``) and the tokenizer stored in an artifact."""
    from transformers import AutoTokenizer

    try:
        hf_config = config_from_dict(artifact_field(info, "backbone", dict))
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{info.path / CONFIG_FILE}: invalid backbone config: {exc}") from exc
    if info.tokenizer_dir is None:
        raise ArtifactError(f"{info.path / 'tokenizer'}: missing tokenizer directory")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(info.tokenizer_dir), trust_remote_code=False)
    except (OSError, ValueError, TypeError) as exc:
        raise ArtifactError(f"{info.tokenizer_dir}: cannot load tokenizer: {exc}") from exc
    return hf_config, tokenizer


@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Iterator[None]:
    """Eval mode and no grad for the block; the previous train/eval mode comes back after.

    Restoring the mode matters: a validation pass in the middle of training must
    not silently switch dropout off for the rest of the run.
    """
    was_training = module.training
    module.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        module.train(was_training)


def batches(n: int, batch_size: int, order: Sequence[int] | None = None) -> Iterator[list[int]]:
    """Index lists of at most ``batch_size`` over ``range(n)`` (or over ``order``)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    indices = list(order) if order is not None else list(range(n))
    for start in range(0, n, batch_size):
        yield indices[start : start + batch_size]


class TextEncoder(nn.Module):
    """Texts in, unit-norm embeddings out: backbone → mean pooling → L2 normalisation."""

    def __init__(self, backbone: nn.Module, tokenizer: Any, max_length: int = 128) -> None:
        super().__init__()
        if max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {max_length}")
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.max_length = max_length

    @classmethod
    def from_pretrained(cls, name_or_path: str, max_length: int = 128) -> "TextEncoder":
        """Load pretrained weights offline; ``minilm`` resolves to the packaged MiniLM."""
        backbone, tokenizer = load_backbone(name_or_path)
        return cls(backbone, tokenizer, max_length=max_length)

    @classmethod
    def from_config(cls, hf_config: Any, tokenizer: Any, max_length: int = 128) -> "TextEncoder":
        """Random initialisation from a Hugging Face config (tests; loading saved artifacts)."""
        return cls(build_backbone(hf_config), tokenizer, max_length=max_length)

    @property
    def dim(self) -> int:
        return int(self.backbone.config.hidden_size)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        """Unit-norm embeddings ``[len(texts), dim]``; gradients flow (for training)."""
        if len(texts) == 0:
            return torch.zeros((0, self.dim), device=self.device)
        inputs = tokenize(self.tokenizer, texts, max_length=self.max_length, device=self.device)
        hidden = self.backbone(**inputs).last_hidden_state
        pooled = mean_pool(hidden, inputs["attention_mask"])
        return nn.functional.normalize(pooled, p=2, dim=-1)

    def encode(self, texts: Sequence[str], batch_size: int = 128, progress: bool = False) -> np.ndarray:
        """Float32 unit-norm embeddings ``[len(texts), dim]``, eval mode, no grad.

        Texts are batched by length (less padding), results come back in input order.
        """
        texts = as_str_list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        chunks = list(batches(len(texts), batch_size, order))
        if progress:
            from tqdm.auto import tqdm

            chunks = tqdm(chunks, desc="encode", unit="batch")
        with eval_mode(self):
            for idx in chunks:
                out[idx] = self([texts[i] for i in idx]).float().cpu().numpy()
        return out

    def fingerprint(self) -> str:
        """Cheap stable hash of the config, max_length, tokenizer size and a sample of every weight.

        Equal for the same weights however they were loaded (pretrained, artifact,
        any device); different after any optimiser step, which moves every dense
        layer. An update confined to unsampled elements (e.g. a few rows of the
        word embeddings and nothing else) can go unnoticed: that is the price of
        not hashing all weights.
        """
        digest = hashlib.sha256()
        header = {
            "config": stable_config_dict(self.backbone.config),
            "max_length": self.max_length,
            "tokenizer": [type(self.tokenizer).__name__, len(self.tokenizer)],
        }
        digest.update(json.dumps(header, sort_keys=True, default=str).encode("utf-8"))
        with torch.no_grad():
            for name, param in self.backbone.named_parameters():
                flat = param.detach().reshape(-1)
                stride = max(1, flat.numel() // _FINGERPRINT_SAMPLES)
                sample = flat[::stride][:_FINGERPRINT_SAMPLES].to("cpu", torch.float32).contiguous()
                digest.update(f"{name}:{tuple(param.shape)}".encode("utf-8"))
                digest.update(sample.numpy().tobytes())
        return digest.hexdigest()[:32]


def tokenize(
    tokenizer: Any,
    texts: Sequence[str],
    pairs: Sequence[str] | None = None,
    *,
    max_length: int,
    device: torch.device | str = "cpu",
) -> dict[str, torch.Tensor]:
    """Padded, truncated token tensors on ``device``; text pairs ``(texts[i], pairs[i])`` when given."""
    texts = as_str_list(texts)
    args = (texts,) if pairs is None else (texts, as_str_list(pairs))
    if pairs is not None and len(args[1]) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(args[1])} pair texts")
    encoded = tokenizer(*args, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return {key: value.to(device) for key, value in encoded.items()}


def as_str_list(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("expected a list of strings, got a single string")
    out = list(texts)
    bad = [type(t).__name__ for t in out if not isinstance(t, str)]
    if bad:
        raise TypeError(f"expected strings, got {bad[0]}")
    return out
