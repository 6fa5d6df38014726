"""The offline default encoder-decoder: MiniLM as encoder and (causal, cross-attending) decoder."""

from __future__ import annotations

from typing import Any

from torch import nn

from serac.models.hf import quiet_transformers
from serac.models.hub import OFFLINE_DEFAULT, ensure_offline, load_tokenizer, resolve_name_or_path


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
    with quiet_transformers():
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


def embeddings_tied(model: nn.Module) -> bool:
    """True when encoder and decoder share one word-embedding matrix."""
    try:
        return model.encoder.get_input_embeddings().weight is model.decoder.get_input_embeddings().weight
    except AttributeError:  # no encoder/decoder submodules with embeddings
        return False
