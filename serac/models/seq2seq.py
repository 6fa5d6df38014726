"""One text-to-text wrapper for every Hugging Face model the editor runs.

The counterfactual model and the offline base model both map a list of strings
to a list of strings. :class:`TextToText` puts a transformers model and its
tokenizer behind that interface; *how* it does so is chosen by ``kind``, looked
up in :data:`KINDS`, never by the model's name:

* ``seq2seq`` -- encoder-decoder (``AutoModelForSeq2SeqLM``: T5, BART, or the
  MiniLM->MiniLM ``EncoderDecoderModel``); the target ends with the EOS token.
* ``seq2seq_copy`` -- the same encoder-decoder with a pointer-generator copy
  head (:mod:`serac.models.copy_head`): answers may copy input tokens directly.
* ``causal`` -- decoder-only (``AutoModelForCausalLM``): prompt and target are
  concatenated and the loss is masked to the target tokens.
* ``causal_lora`` -- the same with the pretrained weights frozen and LoRA adapters
  trained (:mod:`serac.models.lora`); its artifact holds the adapters only and
  names the pretrained model (``base_model``), which is loaded again.
* ``classifier`` -- ``AutoModelForSequenceClassification`` over a fixed label
  list; "generation" is the arg-max label name.

The kinds live in :mod:`serac.models.text_kinds`, the MiniLM encoder-decoder build in
:mod:`serac.models.minilm_seq2seq`, small transformers helpers in :mod:`serac.models.hf`;
this module re-exports what other packages use.

Artifacts store the HF model config inside ``config.json`` and the tokenizer in
``tokenizer/``, so :meth:`TextToText.load` rebuilds the model from the artifact
alone, without the original weights.

Like transformers' ``from_pretrained``, :meth:`TextToText.from_pretrained` and
:meth:`TextToText.load` return the model in eval mode: a training loop calls
``.train()`` first (dropout on); :meth:`TextToText.generate` always decodes in
eval mode and restores the previous mode afterwards.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from serac.io import atomic_dir
from serac.models.artifacts import (
    ArtifactError,
    load_partial_weights,
    load_weights,
    read_artifact_info,
    save_artifact,
)
from serac.models.device import resolve_device
from serac.models.hf import hf_config_from_dict, load_tokenizer_at, quiet_transformers
from serac.models.hub import OFFLINE_DEFAULT, ensure_offline, load_tokenizer, resolve_name_or_path
from serac.models.lora import ADAPTER_MARKER, adapter_state_dict
from serac.models.minilm_seq2seq import (
    build_minilm_encoder_decoder,
    embeddings_tied,
    tie_encoder_decoder_embeddings,
)
from serac.models.text_kinds import IGNORE_INDEX, KINDS, Kind, check_kind

__all__ = [
    "ARTIFACT_KIND",
    "IGNORE_INDEX",
    "KINDS",
    "Kind",
    "TextToText",
    "build_minilm_encoder_decoder",
    "text_to_text_from_config",
    "tie_encoder_decoder_embeddings",
]

ARTIFACT_KIND = "text_to_text"


class TextToText(nn.Module):
    """A transformers model + tokenizer mapping strings to strings (see the module docstring)."""

    def __init__(
        self,
        kind: str,
        model: nn.Module,
        tokenizer: Any,
        *,
        labels: Sequence[str] = (),
        max_input_length: int = 128,
        max_target_length: int = 32,
        max_new_tokens: int = 16,
        source: dict[str, str | None] | None = None,
    ) -> None:
        super().__init__()
        check_kind(kind)
        if kind == "classifier" and (len(labels) < 2 or model.config.num_labels != len(labels)):
            raise ValueError(f"classifier: need >= 2 labels, one per model output; got {list(labels)}")
        self.kind = kind
        self.model = model
        self.tokenizer = tokenizer
        self.labels = tuple(labels)
        self.max_input_length = max_input_length
        self.max_target_length = max_target_length
        self.max_new_tokens = max_new_tokens
        self.source = source
        """``name_or_path`` and ``revision`` of the pretrained weights (``from_pretrained`` sets it)."""
        if KINDS[kind].adapter_only and source is None:
            raise ValueError(f"{kind}: the pretrained model it adapts must be named (source)")
        if kind != "classifier":
            # Let direct ``model.generate`` calls behave like ours (greedy, stop at EOS).
            gen = model.generation_config
            gen.eos_token_id, gen.pad_token_id = self.eos_token_id, self.pad_token_id
            gen.do_sample, gen.num_beams = False, 1

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_config(cls, kind: str, hf_config: Any, tokenizer: Any, **options: Any) -> TextToText:
        """A randomly initialised model of ``kind`` from a transformers config (tests, tiny models).

        ``options`` are the keyword arguments of ``TextToText`` (labels, lengths).
        """
        model = KINDS[check_kind(kind)].build_from_config(hf_config)
        return cls(kind, model, tokenizer, **options)

    @classmethod
    def from_pretrained(
        cls,
        kind: str,
        name_or_path: str = OFFLINE_DEFAULT,
        *,
        revision: str | None = None,
        decoder_layers: int | None = None,
        **options: Any,
    ) -> TextToText:
        """Load pretrained weights offline; ``minilm`` + ``seq2seq`` builds the MiniLM encoder-decoder
        (``decoder_layers`` applies to that build only).

        Any other name must be a local directory or already in the Hugging Face cache.
        """
        ensure_offline()
        labels = tuple(options.get("labels", ()))
        if KINDS[check_kind(kind)].auto_class_name == "AutoModelForSeq2SeqLM" and name_or_path == OFFLINE_DEFAULT:
            model = build_minilm_encoder_decoder(decoder_layers)
        else:
            extra: dict[str, Any] = {"revision": revision} if revision else {}
            if kind == "classifier":
                extra["id2label"] = dict(enumerate(labels))
                extra["label2id"] = {label: i for i, label in enumerate(labels)}
            if KINDS[kind].auto_class_name == "AutoModelForCausalLM" and name_or_path == OFFLINE_DEFAULT:
                extra["is_decoder"] = True  # MiniLM is an encoder; a causal LM head needs the causal mask
            with quiet_transformers():
                model = KINDS[kind].auto_class().from_pretrained(
                    resolve_name_or_path(name_or_path), trust_remote_code=False, **extra
                )
        if KINDS[kind].attach is not None:
            model = KINDS[kind].attach(model)
        tokenizer = load_tokenizer(name_or_path) if not revision else load_tokenizer_at(name_or_path, revision)
        source = {"name_or_path": name_or_path, "revision": revision}
        return cls(kind, model, tokenizer, source=source, **options).eval()

    # -- special tokens -----------------------------------------------------------------------

    @property
    def eos_token_id(self) -> int:
        """EOS if the tokenizer has one, else [SEP] (BERT-style vocabularies such as MiniLM's)."""
        tok = self.tokenizer
        eos = tok.eos_token_id if tok.eos_token_id is not None else tok.sep_token_id
        if eos is None:
            raise ValueError("tokenizer has neither an EOS nor a SEP token")
        return int(eos)

    @property
    def pad_token_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return int(pad) if pad is not None else self.eos_token_id

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # -- training and inference ---------------------------------------------------------------

    def loss(self, inputs: Sequence[str], targets: Sequence[str]) -> torch.Tensor:
        """Mean token negative log-likelihood of ``targets`` given ``inputs`` (cross-entropy for classifier)."""
        if len(inputs) != len(targets):
            raise ValueError(f"{len(inputs)} inputs but {len(targets)} targets")
        if not inputs:
            raise ValueError("loss of an empty batch")
        return KINDS[self.kind].loss(self, list(inputs), list(targets))

    @torch.inference_mode()
    def generate(
        self, inputs: Sequence[str], batch_size: int = 32, max_new_tokens: int | None = None
    ) -> list[str]:
        """Greedy answers, decoded without special tokens and stripped (label names for classifier)."""
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        max_new_tokens = max_new_tokens or self.max_new_tokens
        answers: list[str] = []
        with _eval_mode(self):
            for start in range(0, len(inputs), batch_size):
                batch = list(inputs[start : start + batch_size])
                answers.extend(KINDS[self.kind].generate(self, batch, max_new_tokens))
        return answers

    @torch.inference_mode()
    def sequence_logprob(self, inputs: Sequence[str], targets: Sequence[str], batch_size: int = 32) -> list[float]:
        """Per (input, target): the summed log-probability of the target's tokens and EOS, as
        :meth:`loss` tokenises them (ValueError for the classifier kind)."""
        if len(inputs) != len(targets):
            raise ValueError(f"{len(inputs)} inputs but {len(targets)} targets")
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        logprob = KINDS[self.kind].logprob
        if logprob is None:
            raise ValueError(f"{self.kind}: no token-level likelihood")
        scores: list[float] = []
        with _eval_mode(self):
            for start in range(0, len(inputs), batch_size):
                stop = start + batch_size
                scores.extend(logprob(self, list(inputs[start:stop]), list(targets[start:stop])).tolist())
        return scores

    # -- persistence --------------------------------------------------------------------------

    def save(self, directory: str | Path, *, artifact_kind: str = ARTIFACT_KIND, extra: dict | None = None) -> Path:
        """Write config.json (with the HF model config), model.safetensors and tokenizer/.

        ``directory`` is replaced as a whole, atomically. ``extra`` is stored verbatim
        under ``config["extra"]`` for wrappers (e.g. the counterfactual template).
        """
        config = {
            "kind": self.kind,
            "hf_config": self.model.config.to_dict(),
            "labels": list(self.labels),
            "max_input_length": self.max_input_length,
            "max_target_length": self.max_target_length,
            "max_new_tokens": self.max_new_tokens,
            "tied_encoder_decoder_embeddings": embeddings_tied(self.model),
            "extra": extra or {},
        }
        tensors = None
        if KINDS[self.kind].adapter_only:  # the pretrained weights are referenced, never copied
            config["base_model"] = self.source
            tensors = adapter_state_dict(self.model)
        with atomic_dir(directory) as tmp:
            save_artifact(
                tmp, kind=artifact_kind, config=config, module=self.model, tokenizer=self.tokenizer, tensors=tensors
            )
        return Path(directory)

    @classmethod
    def load(
        cls, directory: str | Path, device: str | torch.device = "cpu", *, artifact_kind: str = ARTIFACT_KIND
    ) -> TextToText:
        """Rebuild from an artifact written by :meth:`save`; problems raise ArtifactError naming the file."""
        info = read_artifact_info(directory, artifact_kind)
        config_path = info.path / "config.json"
        cfg = info.config
        kind = cfg.get("kind")
        if kind not in KINDS:
            raise ArtifactError(f"{config_path}: unknown text-to-text kind {kind!r}")
        options = {k: cfg[k] for k in ("max_input_length", "max_target_length", "max_new_tokens") if k in cfg}
        if KINDS[kind].adapter_only:
            return cls._load_adapted(info, kind, options, resolve_device(device))
        hf_config = hf_config_from_dict(cfg.get("hf_config"), config_path)
        if info.tokenizer_dir is None:
            raise ArtifactError(f"{info.path / 'tokenizer'}: missing tokenizer directory")
        try:
            tokenizer = load_tokenizer_at(str(info.tokenizer_dir))
        except (OSError, ValueError, json.JSONDecodeError) as exc:
            raise ArtifactError(f"{info.tokenizer_dir}: cannot load tokenizer: {exc}") from exc
        with quiet_transformers():
            model = KINDS[kind].build_from_config(hf_config)
        if cfg.get("tied_encoder_decoder_embeddings"):
            tie_encoder_decoder_embeddings(model)
        load_weights(info.path, model)
        t2t = cls(kind, model, tokenizer, labels=tuple(cfg.get("labels") or ()), **options)
        return t2t.to(resolve_device(device)).eval()

    @classmethod
    def _load_adapted(cls, info: Any, kind: str, options: dict[str, Any], device: torch.device) -> TextToText:
        """The named pretrained model (loaded again, offline) with the artifact's adapter weights."""
        base = info.config.get("base_model")
        config_path = info.path / "config.json"
        if not isinstance(base, dict) or not isinstance(base.get("name_or_path"), str):
            raise ArtifactError(f"{config_path}: {kind} artifact names no base_model.name_or_path")
        try:
            t2t = cls.from_pretrained(kind, base["name_or_path"], revision=base.get("revision"), **options)
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"{config_path}: cannot load base_model {base['name_or_path']!r}: {exc}") from exc
        load_partial_weights(info.path, t2t.model, ADAPTER_MARKER)
        return t2t.to(device).eval()


def text_to_text_from_config(cfg: Any) -> TextToText:
    """The pretrained starting point of a model section of params.yaml (``counterfactual`` or ``base``):
    its kind, name or path, revision, decoder depth, labels and lengths. Offline; in eval mode."""
    return TextToText.from_pretrained(
        cfg.kind,
        cfg.name_or_path,
        revision=getattr(cfg, "revision", None),
        decoder_layers=cfg.decoder_layers,
        labels=cfg.labels,
        max_input_length=cfg.max_input_length,
        max_target_length=cfg.max_target_length,
        max_new_tokens=cfg.max_new_tokens,
    )


@contextlib.contextmanager
def _eval_mode(module: nn.Module) -> Iterator[None]:
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)
