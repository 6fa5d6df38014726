"""SERAC's scope classifier: how likely a query falls in the scope of an edit.

Two classifiers from the paper (Mitchell et al., 2022, section 3):

* :class:`EmbeddingScope` embeds edit and query separately and scores their
  similarity. It is cheap (edit vectors are computed once and live in the
  memory index) and always present, because it feeds the memory's retrieval.
* :class:`CrossEncoderScope` reads edit and query together as one text pair.
  It is more accurate and costs one forward pass per (edit, query) pair, so it
  either scans the whole memory (``cross_encoder``) or reranks the embedding's
  top-k (``rerank``).

:class:`ScopeClassifier` is the facade the editor uses; the editor does the
routing (threshold, counterfactual vs base model), this module only scores.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from serac.config import ConfigError, ScopeConfig
from serac.edit_text import EditFields, format_edit
from serac.io import atomic_dir, write_json
from serac.models.artifacts import (
    CONFIG_FILE,
    FORMAT_VERSION,
    ArtifactError,
    library_versions,
    load_weights,
    read_artifact_info,
    save_artifact,
)
from serac.models.device import resolve_device
from serac.models.encoder import (
    TextEncoder,
    artifact_backbone,
    artifact_field,
    as_str_list,
    batches,
    build_backbone,
    eval_mode,
    load_backbone,
    mean_pool,
    stable_config_dict,
    tokenize,
)

DEFAULT_SCALE = 20.0
"""Initial ``a`` of the embedding scope: a softmax temperature of 0.05, as in SimCSE."""
DEFAULT_CUTOFF_COSINE = 0.6
"""Initial ``b = -a * 0.6``: an untrained MiniLM scores cos 0.6 as 0.5, the lookup
baseline's cut-off measured on CounterFact (shared/STACK.md)."""

KINDS_WITH_CROSS = ("cross_encoder", "rerank")


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Overflow-free logistic function, float32 out."""
    z = np.asarray(z, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -z)).astype(np.float32)


class EmbeddingScope(nn.Module):
    """score(edit, query) = sigmoid(a * cos(e, q) + b), e and q unit-norm embeddings.

    The paper uses exp(-||e - q||^2). For unit vectors ||e - q||^2 = 2 - 2 cos, so
    that score is exp(2 cos - 2): a fixed monotone function of the cosine with a
    fixed slope and no way to put 0.5 where the data wants it. Learning a slope
    ``a`` and an offset ``b`` ranks queries identically, keeps the memory a plain
    inner-product index, and makes the scores calibrated probabilities under BCE.
    ``a = exp(log_scale)`` stays positive, so the score stays monotone in the
    cosine and the memory's nearest edit is always the best-scoring one.
    """

    ARTIFACT_KIND = "scope_embedding"

    def __init__(
        self,
        encoder: TextEncoder,
        edit_template: str = ScopeConfig.edit_template,
        init_scale: float = DEFAULT_SCALE,
        init_cutoff_cosine: float = DEFAULT_CUTOFF_COSINE,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.edit_template = edit_template
        if init_scale <= 0:
            raise ValueError(f"init_scale must be > 0, got {init_scale}")
        self.log_scale = nn.Parameter(torch.tensor(math.log(init_scale)))
        self.bias = nn.Parameter(torch.tensor(-float(init_scale) * float(init_cutoff_cosine)))

    @property
    def scale(self) -> torch.Tensor:
        """The slope ``a`` (a tensor in the graph)."""
        return self.log_scale.exp()

    @classmethod
    def from_pretrained(
        cls, name_or_path: str, max_length: int = 128, edit_template: str = ScopeConfig.edit_template
    ) -> "EmbeddingScope":
        return cls(TextEncoder.from_pretrained(name_or_path, max_length=max_length), edit_template)

    def edit_texts(self, records: Sequence[EditFields]) -> list[str]:
        return [format_edit(r, self.edit_template) for r in records]

    def embed_edits(
        self, records_or_texts: Sequence[EditFields] | Sequence[str], batch_size: int = 128, progress: bool = False
    ) -> np.ndarray:
        """Unit-norm float32 edit embeddings ``[n, dim]`` (records go through the edit template)."""
        texts = [r if isinstance(r, str) else format_edit(r, self.edit_template) for r in records_or_texts]
        return self.encoder.encode(texts, batch_size=batch_size, progress=progress)

    def embed_queries(self, texts: Sequence[str], batch_size: int = 128, progress: bool = False) -> np.ndarray:
        return self.encoder.encode(texts, batch_size=batch_size, progress=progress)

    def probs_from_cosine(self, cos: np.ndarray) -> np.ndarray:
        """Scope probabilities for precomputed cosines (any shape), float32."""
        a, b = float(self.scale.detach()), float(self.bias.detach())
        return sigmoid(a * np.asarray(cos, dtype=np.float64) + b)

    def logits(self, edit_texts: Sequence[str], queries: Sequence[str]) -> torch.Tensor:
        """Logits ``[n]`` of the aligned pairs ``(edit_texts[i], queries[i])``; grad-enabled."""
        edit_texts, queries = as_str_list(edit_texts), as_str_list(queries)
        if len(edit_texts) != len(queries):
            raise ValueError(f"{len(edit_texts)} edits but {len(queries)} queries")
        edits, qs = self._embed_both(edit_texts, queries)
        return self.scale * (edits * qs).sum(dim=-1) + self.bias

    def logit_matrix(self, edit_texts: Sequence[str], queries: Sequence[str]) -> torch.Tensor:
        """Logits ``[n_queries, n_edits]`` of every (edit, query) pair: in-batch negatives."""
        edits, qs = self._embed_both(as_str_list(edit_texts), as_str_list(queries))
        return self.scale * qs @ edits.T + self.bias

    def _embed_both(self, edit_texts: list[str], queries: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        # One forward pass for both sides: one tokenizer call and fewer kernel launches.
        both = self.encoder(edit_texts + queries)
        return both[: len(edit_texts)], both[len(edit_texts) :]

    def param_groups(self, lr: float, scalar_lr: float, weight_decay: float = 0.0) -> list[dict[str, Any]]:
        """Optimiser groups: the encoder at ``lr``, the scalars (log a, b) at ``scalar_lr``, no decay.

        At an encoder-sized lr (5e-5) a and b barely move (shared/STACK.md).
        """
        return [
            {"name": "encoder", "params": list(self.encoder.parameters()), "lr": lr, "weight_decay": weight_decay},
            {"name": "scalars", "params": [self.log_scale, self.bias], "lr": scalar_lr, "weight_decay": 0.0},
        ]

    def save(self, directory: str | Path) -> Path:
        config = {
            "backbone": stable_config_dict(self.encoder.backbone.config),
            "max_length": self.encoder.max_length,
            "edit_template": self.edit_template,
            "encoder_fingerprint": self.encoder.fingerprint(),
        }
        return save_artifact(
            directory, kind=self.ARTIFACT_KIND, config=config, module=self, tokenizer=self.encoder.tokenizer
        )

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> "EmbeddingScope":
        info = read_artifact_info(directory, cls.ARTIFACT_KIND)
        hf_config, tokenizer = artifact_backbone(info)
        encoder = TextEncoder.from_config(hf_config, tokenizer, max_length=artifact_field(info, "max_length", int))
        module = cls(encoder, edit_template=artifact_field(info, "edit_template", str))
        load_weights(directory, module)
        return module.to(resolve_device(device))


POOLERS = {
    "mean": mean_pool,
    "cls": lambda hidden, mask: hidden[:, 0],
}
"""How the cross-encoder turns token states into one pair vector."""


class CrossEncoderScope(nn.Module):
    """A backbone reading ``[CLS] edit text [SEP] query [SEP]`` and a linear head → one logit.

    Mean pooling by default: MiniLM's [CLS] state was never trained as a sentence
    summary, its mean-pooled state was.
    """

    ARTIFACT_KIND = "scope_cross_encoder"

    def __init__(self, backbone: nn.Module, tokenizer: Any, max_length: int = 128, pooling: str = "mean") -> None:
        super().__init__()
        if pooling not in POOLERS:
            raise ValueError(f"pooling {pooling!r}: expected one of {sorted(POOLERS)}")
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.pooling = pooling
        config = backbone.config
        self.dropout = nn.Dropout(float(getattr(config, "hidden_dropout_prob", 0.1) or 0.0))
        self.head = nn.Linear(int(config.hidden_size), 1)
        # Small init: every pair starts near p = 0.5 instead of at a random confident guess.
        nn.init.normal_(self.head.weight, std=float(getattr(config, "initializer_range", 0.02)))
        nn.init.zeros_(self.head.bias)

    @classmethod
    def from_pretrained(cls, name_or_path: str, max_length: int = 128, pooling: str = "mean") -> "CrossEncoderScope":
        backbone, tokenizer = load_backbone(name_or_path)
        return cls(backbone, tokenizer, max_length=max_length, pooling=pooling)

    @classmethod
    def from_config(
        cls, hf_config: Any, tokenizer: Any, max_length: int = 128, pooling: str = "mean"
    ) -> "CrossEncoderScope":
        return cls(build_backbone(hf_config), tokenizer, max_length=max_length, pooling=pooling)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def logits(self, edit_texts: Sequence[str], queries: Sequence[str]) -> torch.Tensor:
        """Logits ``[n]`` of the aligned pairs ``(edit_texts[i], queries[i])``; grad-enabled."""
        if len(edit_texts) == 0:
            return torch.zeros(0, device=self.device)
        inputs = tokenize(self.tokenizer, edit_texts, queries, max_length=self.max_length, device=self.device)
        hidden = self.backbone(**inputs).last_hidden_state
        pooled = POOLERS[self.pooling](hidden, inputs["attention_mask"])
        return self.head(self.dropout(pooled)).squeeze(-1)

    def score(self, edit_texts: Sequence[str], queries: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Scope probabilities ``[n]`` of the aligned pairs, float32; eval mode, no grad."""
        edit_texts, queries = as_str_list(edit_texts), as_str_list(queries)
        if len(edit_texts) != len(queries):
            raise ValueError(f"{len(edit_texts)} edits but {len(queries)} queries")
        out = np.zeros(len(edit_texts), dtype=np.float32)
        with eval_mode(self):
            for idx in batches(len(edit_texts), batch_size):
                logits = self.logits([edit_texts[i] for i in idx], [queries[i] for i in idx])
                out[idx] = torch.sigmoid(logits.float()).cpu().numpy()
        return out

    def save(self, directory: str | Path) -> Path:
        config = {
            "backbone": stable_config_dict(self.backbone.config),
            "max_length": self.max_length,
            "pooling": self.pooling,
        }
        return save_artifact(directory, kind=self.ARTIFACT_KIND, config=config, module=self, tokenizer=self.tokenizer)

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> "CrossEncoderScope":
        info = read_artifact_info(directory, cls.ARTIFACT_KIND)
        hf_config, tokenizer = artifact_backbone(info)
        pooling = artifact_field(info, "pooling", str)
        if pooling not in POOLERS:
            raise ArtifactError(f"{info.path / CONFIG_FILE}: unknown pooling {pooling!r}")
        module = cls.from_config(hf_config, tokenizer, max_length=artifact_field(info, "max_length", int), pooling=pooling)
        load_weights(directory, module)
        return module.to(resolve_device(device))


class ScopeClassifier:
    """The editor's view of scope: the embedding scope (always) plus an optional cross-encoder.

    On disk (``save``/``load``): ``config.json`` (kind ``scope_classifier``, the
    :class:`ScopeConfig`), ``embedding/`` and, for kinds ``cross_encoder`` and
    ``rerank``, ``cross/``; each part is config.json + model.safetensors +
    tokenizer/, with the backbone config inside, so loading needs no original weights.
    """

    ARTIFACT_KIND = "scope_classifier"
    EMBEDDING_DIR = "embedding"
    CROSS_DIR = "cross"

    def __init__(
        self, config: ScopeConfig, embedding: EmbeddingScope, cross: CrossEncoderScope | None = None
    ) -> None:
        if config.kind in KINDS_WITH_CROSS and cross is None:
            raise ValueError(f"scope kind {config.kind!r} needs a cross-encoder")
        self.config = config
        self.embedding = embedding
        self.cross = cross

    @classmethod
    def from_config(cls, config: ScopeConfig, device: str | torch.device = "cpu") -> "ScopeClassifier":
        """Untrained classifier from pretrained weights (offline): ``config.encoder`` for both parts."""
        embedding = EmbeddingScope.from_pretrained(config.encoder, config.max_length, config.edit_template)
        cross = None
        if config.kind in KINDS_WITH_CROSS:
            cross = CrossEncoderScope.from_pretrained(config.encoder, max_length=config.max_length)
        return cls(config, embedding, cross).to(device)

    def to(self, device: str | torch.device) -> "ScopeClassifier":
        device = resolve_device(device)
        self.embedding.to(device)
        if self.cross is not None:
            self.cross.to(device)
        return self

    def eval(self) -> "ScopeClassifier":
        self.embedding.eval()
        if self.cross is not None:
            self.cross.eval()
        return self

    @property
    def dim(self) -> int:
        """Size of the edit and query embeddings (the memory index's dimension)."""
        return self.embedding.encoder.dim

    def edit_text(self, record: EditFields) -> str:
        return format_edit(record, self.embedding.edit_template)

    def embed_queries(self, texts: Sequence[str], batch_size: int = 128, progress: bool = False) -> np.ndarray:
        return self.embedding.embed_queries(texts, batch_size=batch_size, progress=progress)

    def encoder_fingerprint(self) -> str:
        """Changes whenever the edit embeddings stored in the memory go stale."""
        return self.embedding.encoder.fingerprint()

    def score_candidates(
        self, query: str, candidate_edit_texts: Sequence[str], cosines: np.ndarray, batch_size: int = 64
    ) -> np.ndarray:
        """Scope probabilities ``[k]`` of one query against its candidate edits, float32.

        ``cosines`` are the memory index's similarities of the same candidates; the
        ``embedding`` kind scores from them alone, the others run the cross-encoder.
        """
        return self.score_batch([query], [candidate_edit_texts], [cosines], batch_size)[0]

    def score_batch(
        self,
        queries: Sequence[str],
        candidate_edit_texts: Sequence[Sequence[str]],
        cosines: Sequence[np.ndarray],
        batch_size: int = 64,
    ) -> list[np.ndarray]:
        """:meth:`score_candidates` for many queries; cross-encoder pairs share batches."""
        if not len(queries) == len(candidate_edit_texts) == len(cosines):
            raise ValueError("queries, candidate_edit_texts and cosines must have the same length")
        for cands, cos in zip(candidate_edit_texts, cosines):
            if len(cands) != len(np.asarray(cos).reshape(-1)):
                raise ValueError(f"{len(cands)} candidate edits but {np.asarray(cos).size} cosines")
        embedded = [self.embedding.probs_from_cosine(np.asarray(cos).reshape(-1)) for cos in cosines]
        if self.config.kind == "embedding" or self.cross is None:
            return embedded
        crossed = self.reranked(embedded)
        edits = [text for i in crossed for text in candidate_edit_texts[i]]
        pair_queries = [queries[i] for i in crossed for _ in candidate_edit_texts[i]]
        flat = self.cross.score(edits, pair_queries, batch_size=batch_size)
        bounds = np.cumsum([0] + [len(candidate_edit_texts[i]) for i in crossed])
        out = list(embedded)
        w = self.config.rerank_mix
        for i, start, end in zip(crossed, bounds[:-1], bounds[1:]):
            out[i] = flat[start:end] if w == 0.0 else ((1.0 - w) * flat[start:end] + w * embedded[i]).astype(np.float32)
        return out

    def reranked(self, embedded: Sequence[np.ndarray]) -> list[int]:
        """Which queries the cross-encoder scores, given their candidates' embedding probabilities:
        all of them for ``cross_encoder``; for ``rerank``, those whose best embedding probability
        exceeds ``rerank_above`` (the rest are out of scope by the embedding alone)."""
        if self.config.kind != "rerank":
            return list(range(len(embedded)))
        cut = self.config.rerank_above
        return [i for i, p in enumerate(embedded) if p.size and float(p.max()) > cut]

    def save(self, directory: str | Path) -> Path:
        """Write the classifier into ``directory``, replacing it as a whole (atomically)."""
        directory = Path(directory)
        with atomic_dir(directory) as tmp:
            self.embedding.save(tmp / self.EMBEDDING_DIR)
            if self.cross is not None:
                self.cross.save(tmp / self.CROSS_DIR)
            # Same layout as artifacts.save_artifact writes, minus the weights: the parts hold them.
            write_json(
                tmp / CONFIG_FILE,
                {
                    "format_version": FORMAT_VERSION,
                    "kind": self.ARTIFACT_KIND,
                    "config": {
                        "scope": dataclasses.asdict(self.config),
                        "has_cross": self.cross is not None,
                        "encoder_fingerprint": self.encoder_fingerprint(),
                    },
                    "versions": library_versions(),
                },
            )
        return directory

    @classmethod
    def load(
        cls, directory: str | Path, device: str | torch.device = "cpu", kind: str | None = None
    ) -> "ScopeClassifier":
        """Load a saved classifier; ``kind`` overrides the stored kind (e.g. rerank → embedding)."""
        directory = Path(directory)
        info = read_artifact_info(directory, cls.ARTIFACT_KIND)
        stored = info.config.get("scope")
        if not isinstance(stored, dict):
            raise ArtifactError(f"{directory / CONFIG_FILE}: missing the 'scope' config")
        known = {f.name for f in dataclasses.fields(ScopeConfig)}
        values = {k: v for k, v in stored.items() if k in known}
        if kind is not None:
            values["kind"] = kind
        try:
            config = ScopeConfig(**values)
        except (ConfigError, TypeError) as exc:
            raise ArtifactError(f"{directory / CONFIG_FILE}: invalid scope config: {exc}") from exc
        embedding = EmbeddingScope.load(directory / cls.EMBEDDING_DIR, device)
        cross = None
        if config.kind in KINDS_WITH_CROSS:
            if not (directory / cls.CROSS_DIR).is_dir():
                raise ArtifactError(f"{directory / cls.CROSS_DIR}: missing; scope kind {config.kind!r} needs it")
            cross = CrossEncoderScope.load(directory / cls.CROSS_DIR, device)
        return cls(config, embedding, cross)
