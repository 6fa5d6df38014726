"""Tiny randomly initialised models for fast tests, with the real (offline) MiniLM tokenizer.

Shared by the model tests (scope classifier, counterfactual and base models):
keep it generic. Import as ``from tiny import ...`` (pytest puts this directory
on ``sys.path`` for the tests in it).
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from serac.models.hub import load_tokenizer


def minilm_tokenizer() -> Any:  # -> PreTrainedTokenizerBase
    """The packaged MiniLM tokenizer (uncased WordPiece, 30,522 tokens); cached, offline."""
    return load_tokenizer("minilm")


def tiny_bert_config(
    hidden: int = 32,
    layers: int = 2,
    heads: int = 2,
    intermediate: int | None = None,
    vocab_size: int | None = None,
    max_position: int = 128,
    dropout: float = 0.0,
    **overrides: Any,
) -> Any:  # -> BertConfig
    """A BERT config small enough to train in a test; the vocabulary matches MiniLM's tokenizer.

    Dropout defaults to 0 so that train-mode outputs are deterministic; ``overrides``
    go to ``BertConfig`` as they are (e.g. ``is_decoder=True, add_cross_attention=True``).
    """
    from transformers import BertConfig

    return BertConfig(
        vocab_size=vocab_size if vocab_size is not None else len(minilm_tokenizer()),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate if intermediate is not None else 2 * hidden,
        max_position_embeddings=max_position,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        **overrides,
    )


def tiny_bert_model(seed: int = 0, **config_kwargs: Any) -> torch.nn.Module:
    """A randomly initialised ``AutoModel`` for :func:`tiny_bert_config`, the same for the same seed."""
    from transformers import AutoModel

    torch.manual_seed(seed)
    return AutoModel.from_config(tiny_bert_config(**config_kwargs))


def tiny_seq2seq(
    seed: int = 0, tie: bool = True, max_new_tokens: int = 6, layers: int = 1, kind: str = "seq2seq"
) -> Any:  # -> TextToText
    """A randomly initialised BERT->BERT encoder-decoder behind ``TextToText`` (``kind`` seq2seq or seq2seq_copy)."""
    from transformers import EncoderDecoderConfig

    from serac.models.seq2seq import TextToText, tie_encoder_decoder_embeddings

    tok = minilm_tokenizer()
    config = EncoderDecoderConfig.from_encoder_decoder_configs(
        tiny_bert_config(layers=layers),
        tiny_bert_config(layers=layers, is_decoder=True, add_cross_attention=True),
        decoder_start_token_id=tok.cls_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(seed)
    t2t = TextToText.from_config(kind, config, tok, max_new_tokens=max_new_tokens)
    if tie:
        tie_encoder_decoder_embeddings(t2t.model)
    return t2t


def tiny_counterfactual(kind: str = "seq2seq", template: str | None = None) -> Any:  # -> CounterfactualModel
    """A tiny counterfactual model: encoder-decoder, or a 2-label classifier for ``kind="classifier"``."""
    from serac.config import CounterfactualConfig
    from serac.models.counterfactual import CounterfactualModel
    from serac.models.seq2seq import TextToText

    if kind == "classifier":
        torch.manual_seed(0)
        t2t = TextToText.from_config(
            "classifier", tiny_bert_config(layers=1, num_labels=2), minilm_tokenizer(), labels=("false", "true")
        )
    else:
        t2t = tiny_seq2seq(tie=False, max_new_tokens=4)
    return CounterfactualModel(t2t, template or CounterfactualConfig.template)


CHAT_TEMPLATE = (
    # a minimal Jinja chat template: role tags, then the generation prompt
    "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }} {% endfor %}"
    "{% if add_generation_prompt %}[assistant]{% endif %}"
)


def save_tiny_llama(directory: Any, *, chat_template: str | None = CHAT_TEMPLATE, seed: int = 0) -> Any:
    """A random 2-layer Llama + a private copy of the MiniLM tokenizer, saved as a local HF folder."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = copy.deepcopy(minilm_tokenizer())  # a private copy: the shared one stays untouched
    tok.eos_token = "[SEP]"
    tok.chat_template = chat_template
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=tok.cls_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(directory)
    tok.save_pretrained(directory)
    return directory
