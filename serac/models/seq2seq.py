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
* ``classifier`` -- ``AutoModelForSequenceClassification`` over a fixed label
  list; "generation" is the arg-max label name.

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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from serac.io import atomic_dir
from serac.models.artifacts import ArtifactError, load_weights, read_artifact_info, save_artifact
from serac.models.copy_head import attach_copy_head
from serac.models.device import resolve_device
from serac.models.hub import OFFLINE_DEFAULT, ensure_offline, load_tokenizer, resolve_name_or_path

ARTIFACT_KIND = "text_to_text"
IGNORE_INDEX = -100


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
    ) -> None:
        super().__init__()
        _check_kind(kind)
        if kind == "classifier" and (len(labels) < 2 or model.config.num_labels != len(labels)):
            raise ValueError(f"classifier: need >= 2 labels, one per model output; got {list(labels)}")
        self.kind = kind
        self.model = model
        self.tokenizer = tokenizer
        self.labels = tuple(labels)
        self.max_input_length = max_input_length
        self.max_target_length = max_target_length
        self.max_new_tokens = max_new_tokens
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
        model = KINDS[_check_kind(kind)].build_from_config(hf_config)
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
        if KINDS[_check_kind(kind)].auto_class_name == "AutoModelForSeq2SeqLM" and name_or_path == OFFLINE_DEFAULT:
            model = build_minilm_encoder_decoder(decoder_layers)
        else:
            extra: dict[str, Any] = {"revision": revision} if revision else {}
            if kind == "classifier":
                extra["id2label"] = dict(enumerate(labels))
                extra["label2id"] = {label: i for i, label in enumerate(labels)}
            if kind == "causal" and name_or_path == OFFLINE_DEFAULT:
                extra["is_decoder"] = True  # MiniLM is an encoder; a causal LM head needs the causal mask
            with _quiet_transformers():
                model = KINDS[kind].auto_class().from_pretrained(
                    resolve_name_or_path(name_or_path), trust_remote_code=False, **extra
                )
        if KINDS[kind].attach is not None:
            model = KINDS[kind].attach(model)
        tokenizer = load_tokenizer(name_or_path) if not revision else _load_tokenizer(name_or_path, revision)
        return cls(kind, model, tokenizer, **options).eval()

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
            "tied_encoder_decoder_embeddings": _embeddings_tied(self.model),
            "extra": extra or {},
        }
        with atomic_dir(directory) as tmp:
            save_artifact(tmp, kind=artifact_kind, config=config, module=self.model, tokenizer=self.tokenizer)
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
        hf_config = _hf_config_from_dict(cfg.get("hf_config"), config_path)
        if info.tokenizer_dir is None:
            raise ArtifactError(f"{info.path / 'tokenizer'}: missing tokenizer directory")
        try:
            tokenizer = _load_tokenizer(str(info.tokenizer_dir))
        except (OSError, ValueError, json.JSONDecodeError) as exc:
            raise ArtifactError(f"{info.tokenizer_dir}: cannot load tokenizer: {exc}") from exc
        with _quiet_transformers():
            model = KINDS[kind].build_from_config(hf_config)
        if cfg.get("tied_encoder_decoder_embeddings"):
            tie_encoder_decoder_embeddings(model)
        load_weights(info.path, model)
        options = {k: cfg[k] for k in ("max_input_length", "max_target_length", "max_new_tokens") if k in cfg}
        t2t = cls(kind, model, tokenizer, labels=tuple(cfg.get("labels") or ()), **options)
        return t2t.to(resolve_device(device) if isinstance(device, str) else device).eval()


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


# -- MiniLM encoder-decoder ---------------------------------------------------------------------


def build_minilm_encoder_decoder(decoder_layers: int | None = None) -> nn.Module:
    """An ``EncoderDecoderModel`` warm-started from the packaged MiniLM for encoder and decoder.

    The decoder is MiniLM with a causal mask and new (randomly initialised)
    cross-attention and LM-head transform; ``decoder_layers`` keeps its first k
    layers (None = all 6). Decoding starts at [CLS] and stops at [SEP]; pad is
    [PAD]. The word embeddings are shared by encoder, decoder and LM head: one
    vocabulary, one matrix (11.7M parameters instead of 35M). Fully offline.
    """
    ensure_offline()
    from transformers import AutoModel, AutoModelForCausalLM, EncoderDecoderModel

    path = resolve_name_or_path(OFFLINE_DEFAULT)
    tokenizer = load_tokenizer(OFFLINE_DEFAULT)
    decoder_kwargs: dict[str, Any] = {"is_decoder": True, "add_cross_attention": True}
    if decoder_layers is not None:
        if not 1 <= decoder_layers <= 6:
            raise ValueError(f"decoder_layers must be within [1, 6], got {decoder_layers}")
        decoder_kwargs["num_hidden_layers"] = decoder_layers
    # The load reports list the cross-attention and LM-head weights as missing: that is expected here.
    with _quiet_transformers():
        # keep the (unused) pooler: EncoderDecoderModel.from_config rebuilds the encoder with one on load
        encoder = AutoModel.from_pretrained(path)
        decoder = AutoModelForCausalLM.from_pretrained(path, **decoder_kwargs)
    model = EncoderDecoderModel(encoder=encoder, decoder=decoder)
    model.config.decoder_start_token_id = tokenizer.cls_token_id
    model.config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.decoder_start_token_id = tokenizer.cls_token_id
    tie_encoder_decoder_embeddings(model)
    return model


def tie_encoder_decoder_embeddings(model: nn.Module) -> None:
    """Make the decoder's input embeddings and LM head share the encoder's word embeddings."""
    shared = model.encoder.get_input_embeddings()
    decoder = model.decoder
    if decoder.get_input_embeddings().weight.shape != shared.weight.shape:
        raise ValueError("encoder and decoder vocabularies differ; cannot tie their embeddings")
    decoder.set_input_embeddings(shared)
    head = decoder.get_output_embeddings()
    if head is not None:
        head.weight = shared.weight


def _embeddings_tied(model: nn.Module) -> bool:
    try:
        return model.encoder.get_input_embeddings().weight is model.decoder.get_input_embeddings().weight
    except AttributeError:  # no encoder/decoder submodules with embeddings
        return False


# -- kinds ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """How one family of models is loaded, trained and decoded."""

    auto_class_name: str
    loss: Callable[[TextToText, list[str], list[str]], torch.Tensor]
    generate: Callable[[TextToText, list[str], int], list[str]]
    attach: Callable[[nn.Module], nn.Module] | None = None
    """Adds the kind's own modules (e.g. a copy head) to a freshly built transformers model."""

    def auto_class(self) -> Any:
        import transformers

        return getattr(transformers, self.auto_class_name)

    def build_from_config(self, hf_config: Any) -> nn.Module:
        model = self.auto_class().from_config(hf_config, trust_remote_code=False)
        return self.attach(model) if self.attach is not None else model


def _encode_inputs(t2t: TextToText, inputs: list[str]) -> dict[str, torch.Tensor]:
    enc = t2t.tokenizer(
        inputs, padding=True, truncation=True, max_length=t2t.max_input_length, return_tensors="pt"
    )
    # token_type_ids are all zero for single texts; not every model accepts them.
    return {"input_ids": enc["input_ids"].to(t2t.device), "attention_mask": enc["attention_mask"].to(t2t.device)}


def _target_ids(t2t: TextToText, targets: list[str]) -> list[list[int]]:
    """Target tokens without special tokens, truncated, ending with EOS."""
    ids = t2t.tokenizer(targets, add_special_tokens=False)["input_ids"]
    return [list(x[: t2t.max_target_length - 1]) + [t2t.eos_token_id] for x in ids]


def _pad(rows: list[list[int]], value: int, left: bool = False) -> torch.Tensor:
    width = max(len(r) for r in rows)
    padded = [([value] * (width - len(r)) + r) if left else (r + [value] * (width - len(r))) for r in rows]
    return torch.tensor(padded, dtype=torch.long)


def _decode(t2t: TextToText, ids: torch.Tensor) -> list[str]:
    return [text.strip() for text in t2t.tokenizer.batch_decode(ids, skip_special_tokens=True)]


def _teacher_forcing(t2t: TextToText, inputs: list[str], targets: list[str]) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """Encoder inputs, padded labels and the shifted decoder inputs of one seq2seq batch."""
    enc = _encode_inputs(t2t, inputs)
    labels = _pad(_target_ids(t2t, targets), IGNORE_INDEX).to(t2t.device)
    # Shift the labels ourselves (the HF EncoderDecoderModel warns on every call when given labels).
    return enc, labels, t2t.model.prepare_decoder_input_ids_from_labels(labels=labels)


def _seq2seq_loss(t2t: TextToText, inputs: list[str], targets: list[str]) -> torch.Tensor:
    enc, labels, decoder_input_ids = _teacher_forcing(t2t, inputs, targets)
    decoder_mask = (labels != IGNORE_INDEX).long()
    logits = t2t.model(**enc, decoder_input_ids=decoder_input_ids, decoder_attention_mask=decoder_mask).logits
    return F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE_INDEX)


def _greedy(t2t: TextToText, input_ids: torch.Tensor, attention_mask: torch.Tensor, max_new: int) -> torch.Tensor:
    return t2t.model.generate(
        input_ids=input_ids,
        attention_mask=attention_mask,
        max_new_tokens=max_new,
        do_sample=False,
        num_beams=1,
        eos_token_id=t2t.eos_token_id,
        pad_token_id=t2t.pad_token_id,
    )


def _seq2seq_generate(t2t: TextToText, inputs: list[str], max_new_tokens: int) -> list[str]:
    enc = _encode_inputs(t2t, inputs)
    return _decode(t2t, _greedy(t2t, enc["input_ids"], enc["attention_mask"], max_new_tokens))


def _copy_loss(t2t: TextToText, inputs: list[str], targets: list[str]) -> torch.Tensor:
    enc, labels, decoder_input_ids = _teacher_forcing(t2t, inputs, targets)
    out = t2t.model(
        **enc, decoder_input_ids=decoder_input_ids, decoder_attention_mask=(labels != IGNORE_INDEX).long(),
        output_hidden_states=True,
    )
    log_probs = t2t.model.copy_head(
        out.decoder_hidden_states[-1], out.encoder_last_hidden_state, enc["attention_mask"], enc["input_ids"], out.logits
    )
    return F.nll_loss(log_probs.flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX)


def _copy_generate(t2t: TextToText, inputs: list[str], max_new_tokens: int) -> list[str]:
    """Greedy decoding over the copy head's mixed distribution (no KV cache: answers are short)."""
    model = t2t.model
    enc = _encode_inputs(t2t, inputs)
    encoder_outputs = model.get_encoder()(**enc)
    start = model.config.decoder_start_token_id
    if start is None:
        start = model.generation_config.decoder_start_token_id
    ids = torch.full((len(inputs), 1), int(start), dtype=torch.long, device=t2t.device)
    done = torch.zeros(len(inputs), dtype=torch.bool, device=t2t.device)
    for _ in range(max_new_tokens):
        out = model(
            encoder_outputs=encoder_outputs, attention_mask=enc["attention_mask"], decoder_input_ids=ids,
            output_hidden_states=True,
        )
        log_probs = model.copy_head(
            out.decoder_hidden_states[-1][:, -1:], encoder_outputs.last_hidden_state, enc["attention_mask"],
            enc["input_ids"], out.logits[:, -1:],
        )
        nxt = log_probs[:, 0].argmax(-1).masked_fill(done, t2t.pad_token_id)
        ids = torch.cat([ids, nxt[:, None]], dim=1)
        done |= nxt == t2t.eos_token_id
        if bool(done.all()):
            break
    return _decode(t2t, ids[:, 1:])


def _prompt_ids(t2t: TextToText, inputs: list[str]) -> list[list[int]]:
    ids = t2t.tokenizer(inputs, truncation=True, max_length=t2t.max_input_length)["input_ids"]
    return [list(x) for x in ids]


def _causal_loss(t2t: TextToText, inputs: list[str], targets: list[str]) -> torch.Tensor:
    prompts, answers = _prompt_ids(t2t, inputs), _target_ids(t2t, targets)
    rows = [p + a for p, a in zip(prompts, answers)]
    label_rows = [[IGNORE_INDEX] * len(p) + a for p, a in zip(prompts, answers)]
    # Right padding: positions start at 0 as in generation, whose left padding gets
    # position ids from the attention mask.
    input_ids = _pad(rows, t2t.pad_token_id).to(t2t.device)
    attention_mask = _pad([[1] * len(r) for r in rows], 0).to(t2t.device)
    labels = _pad(label_rows, IGNORE_INDEX).to(t2t.device)
    logits = t2t.model(input_ids=input_ids, attention_mask=attention_mask).logits
    # Token t predicts token t+1.
    return F.cross_entropy(
        logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=IGNORE_INDEX
    )


def _causal_generate(t2t: TextToText, inputs: list[str], max_new_tokens: int) -> list[str]:
    prompts = _prompt_ids(t2t, inputs)
    input_ids = _pad(prompts, t2t.pad_token_id, left=True).to(t2t.device)
    attention_mask = _pad([[1] * len(p) for p in prompts], 0, left=True).to(t2t.device)
    out = _greedy(t2t, input_ids, attention_mask, max_new_tokens)
    return _decode(t2t, out[:, input_ids.shape[1] :])  # only the continuation, not the prompt


def _label_indices(t2t: TextToText, targets: list[str]) -> torch.Tensor:
    # Case-insensitive: uncased tokenizers and human-written labels ("True") must match ("true").
    index = {label.strip().lower(): i for i, label in enumerate(t2t.labels)}
    unknown = sorted({t for t in targets if t.strip().lower() not in index})
    if unknown:
        raise ValueError(f"classifier targets {unknown[:5]} are not among the labels {list(t2t.labels)}")
    return torch.tensor([index[t.strip().lower()] for t in targets], device=t2t.device)


def _classifier_loss(t2t: TextToText, inputs: list[str], targets: list[str]) -> torch.Tensor:
    logits = t2t.model(**_encode_inputs(t2t, inputs)).logits
    return F.cross_entropy(logits.float(), _label_indices(t2t, targets))


def _classifier_generate(t2t: TextToText, inputs: list[str], max_new_tokens: int) -> list[str]:
    logits = t2t.model(**_encode_inputs(t2t, inputs)).logits
    return [t2t.labels[i] for i in logits.argmax(-1).tolist()]


KINDS: dict[str, Kind] = {
    "seq2seq": Kind("AutoModelForSeq2SeqLM", _seq2seq_loss, _seq2seq_generate),
    "seq2seq_copy": Kind("AutoModelForSeq2SeqLM", _copy_loss, _copy_generate, attach_copy_head),
    "causal": Kind("AutoModelForCausalLM", _causal_loss, _causal_generate),
    "classifier": Kind("AutoModelForSequenceClassification", _classifier_loss, _classifier_generate),
}
"""The registry of text-to-text kinds; ``CounterfactualConfig.kind`` / ``BaseModelConfig.kind`` index it."""


# -- helpers --------------------------------------------------------------------------------------


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown text-to-text kind {kind!r}; expected one of {sorted(KINDS)}")
    return kind


def _hf_config_from_dict(values: Any, config_path: Path) -> Any:
    from transformers import AutoConfig

    if not isinstance(values, dict) or "model_type" not in values:
        raise ArtifactError(f"{config_path}: 'hf_config' is missing or has no 'model_type'")
    rest = {k: v for k, v in values.items() if k != "model_type"}
    try:
        return AutoConfig.for_model(values["model_type"], **rest)
    except (ValueError, TypeError, KeyError) as exc:
        raise ArtifactError(f"{config_path}: cannot rebuild the model config: {exc}") from exc


def _load_tokenizer(name_or_path: str, revision: str | None = None) -> Any:
    ensure_offline()
    from transformers import AutoTokenizer

    extra = {"revision": revision} if revision else {}
    return AutoTokenizer.from_pretrained(resolve_name_or_path(name_or_path), trust_remote_code=False, **extra)


@contextlib.contextmanager
def _eval_mode(module: nn.Module) -> Iterator[None]:
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
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
