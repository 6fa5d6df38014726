"""A pointer-generator copy head for encoder-decoder models (See et al., 2017).

SERAC's counterfactual model mostly has to *copy*: the answer to an in-scope
query is usually the edit label, which sits in the model's input. A decoder
whose cross-attention starts from random weights (the MiniLM encoder-decoder
default) learns to copy arbitrary strings slowly and, on a few thousand edits,
memorises question -> answer instead. The copy head mixes the decoder's
vocabulary distribution with a distribution over the *input tokens*:

    p(w) = g * p_vocab(w) + (1 - g) * sum_{i: x_i = w} a_i

where ``a`` is an attention of the decoder state over the encoder states and the
gate ``g = sigmoid(w . [h_dec; context])`` is learned. Copying any string then
takes one attention pattern, whatever the vocabulary says.
"""

from __future__ import annotations

import math

import torch
from torch import nn

LOG_EPS = 1e-12


class CopyHead(nn.Module):
    """Attention over encoder states + copy gate; returns mixed log-probabilities."""

    def __init__(self, decoder_hidden: int, encoder_hidden: int, attention_dim: int | None = None) -> None:
        super().__init__()
        dim = attention_dim or decoder_hidden
        self.query = nn.Linear(decoder_hidden, dim)
        self.key = nn.Linear(encoder_hidden, dim)
        self.gate = nn.Linear(decoder_hidden + encoder_hidden, 1)
        self.scale = 1.0 / math.sqrt(dim)

    def forward(
        self,
        decoder_hidden: torch.Tensor,
        encoder_hidden: torch.Tensor,
        encoder_mask: torch.Tensor,
        encoder_ids: torch.Tensor,
        vocab_logits: torch.Tensor,
    ) -> torch.Tensor:
        """Log p(w) of shape (batch, target_len, vocab).

        decoder_hidden (B, T, Hd), encoder_hidden (B, S, He), encoder_mask and
        encoder_ids (B, S), vocab_logits (B, T, V).
        """
        scores = (self.query(decoder_hidden) @ self.key(encoder_hidden).transpose(1, 2)).float() * self.scale
        scores = scores.masked_fill(~encoder_mask.bool()[:, None, :], torch.finfo(scores.dtype).min)
        attention = scores.softmax(-1)  # (B, T, S)
        context = attention.to(encoder_hidden.dtype) @ encoder_hidden
        generate = torch.sigmoid(self.gate(torch.cat([decoder_hidden, context], dim=-1)).float())  # (B, T, 1)
        p_vocab = vocab_logits.float().softmax(-1)
        index = encoder_ids[:, None, :].expand(-1, attention.shape[1], -1)
        p_copy = torch.zeros_like(p_vocab).scatter_add_(-1, index, attention)
        return torch.log((generate * p_vocab + (1.0 - generate) * p_copy).clamp_min(LOG_EPS))


def attach_copy_head(model: nn.Module) -> nn.Module:
    """Give an encoder-decoder model a :class:`CopyHead` as ``model.copy_head`` (saved with its weights)."""
    if not hasattr(model, "copy_head"):
        config = model.config
        enc = getattr(getattr(config, "encoder", None), "hidden_size", None) or config.d_model
        dec = getattr(getattr(config, "decoder", None), "hidden_size", None) or config.d_model
        model.copy_head = CopyHead(dec, enc).to(next(model.parameters()).device)
    return model
