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

Content alone does not say *where* in the input a copy is: after copying "and"
from "Skidmore and Company", an attention over token contents can jump to any
token that resembles the one just copied, and long rare labels come out garbled
("skidmore anddm anddm"). The attention therefore also gets a learned
*successor* bias (the position-aware part of a pointer network): input position
``j`` gains ``s_1`` when the token before it equals the token just emitted and
``s_2`` more when the two tokens before it equal the last two emitted. A copy
then tends to continue where it is, up to the label's end: in SERAC's template
the label is followed by ``[SEP]``, MiniLM's EOS. Artifacts written before the
bias existed load with ``s = 0``, which is exactly the content-only attention.
"""

from __future__ import annotations

import math

import torch
from torch import nn

LOG_EPS = 1e-12
SUCCESSOR_INIT = 2.0
"""Starting successor bias of a fresh head (learned from there; Adam moves it by about lr per step,
so it starts where copying contiguously already matters)."""


class CopyHead(nn.Module):
    """Attention over encoder states + copy gate; returns mixed log-probabilities."""

    def __init__(self, decoder_hidden: int, encoder_hidden: int, attention_dim: int | None = None) -> None:
        super().__init__()
        dim = attention_dim or decoder_hidden
        self.query = nn.Linear(decoder_hidden, dim)
        self.key = nn.Linear(encoder_hidden, dim)
        self.gate = nn.Linear(decoder_hidden + encoder_hidden, 1)
        self.scale = 1.0 / math.sqrt(dim)
        self.successor = nn.Parameter(torch.full((2,), SUCCESSOR_INIT))
        self.register_load_state_dict_pre_hook(_content_only_when_absent)

    def forward(
        self,
        decoder_hidden: torch.Tensor,
        encoder_hidden: torch.Tensor,
        encoder_mask: torch.Tensor,
        encoder_ids: torch.Tensor,
        vocab_logits: torch.Tensor,
        decoder_ids: torch.Tensor,
    ) -> torch.Tensor:
        """Log p(w) of shape (batch, target_len, vocab).

        decoder_hidden (B, T, Hd), encoder_hidden (B, S, He), encoder_mask and
        encoder_ids (B, S), vocab_logits (B, T, V); decoder_ids (B, T_all >= T) are
        the decoder's input tokens so far, the last T of them at decoder_hidden's positions.
        """
        scores = (self.query(decoder_hidden) @ self.key(encoder_hidden).transpose(1, 2)).float() * self.scale
        one, two = successor_features(encoder_ids, decoder_ids, decoder_hidden.shape[1])
        scores = scores + self.successor[0].float() * one + self.successor[1].float() * two
        scores = scores.masked_fill(~encoder_mask.bool()[:, None, :], torch.finfo(scores.dtype).min)
        attention = scores.softmax(-1)  # (B, T, S)
        context = attention.to(encoder_hidden.dtype) @ encoder_hidden
        generate = torch.sigmoid(self.gate(torch.cat([decoder_hidden, context], dim=-1)).float())  # (B, T, 1)
        p_vocab = vocab_logits.float().softmax(-1)
        index = encoder_ids[:, None, :].expand(-1, attention.shape[1], -1)
        p_copy = torch.zeros_like(p_vocab).scatter_add_(-1, index, attention)
        return torch.log((generate * p_vocab + (1.0 - generate) * p_copy).clamp_min(LOG_EPS))


def _shift(ids: torch.Tensor, n: int) -> torch.Tensor:
    """``ids`` (B, L) moved ``n`` places right along L, -1 filling the front."""
    keep = max(ids.shape[1] - n, 0)
    return torch.cat([ids.new_full((ids.shape[0], ids.shape[1] - keep), -1), ids[:, :keep]], dim=1)


def successor_features(
    encoder_ids: torch.Tensor, decoder_ids: torch.Tensor, steps: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two (B, steps, S) float masks for the last ``steps`` decoder positions.

    ``one[b, t, j]``: the input token before ``j`` is the decoder's input at ``t`` (the token
    just emitted); ``two``: the two input tokens before ``j`` are the last two emitted. The
    first decoder position (the start token) and, for ``two``, the second have none.
    """
    total = decoder_ids.shape[1]
    position = torch.arange(total - steps, total, device=decoder_ids.device)[None, :, None]
    last, before = decoder_ids[:, -steps:, None], _shift(decoder_ids, 1)[:, -steps:, None]
    one = (_shift(encoder_ids, 1)[:, None, :] == last) & (position >= 1)
    two = one & (_shift(encoder_ids, 2)[:, None, :] == before) & (position >= 2)
    return one.float(), two.float()


def _content_only_when_absent(module: nn.Module, state_dict: dict, prefix: str, *args: object) -> None:
    """Artifacts from before the successor bias: load them as the content-only head they were."""
    key = prefix + "successor"
    if key not in state_dict and any(k.startswith(prefix) for k in state_dict):
        state_dict[key] = torch.zeros_like(module.successor)


def attach_copy_head(model: nn.Module) -> nn.Module:
    """Give an encoder-decoder model a :class:`CopyHead` as ``model.copy_head`` (saved with its weights)."""
    if not hasattr(model, "copy_head"):
        config = model.config
        enc = getattr(getattr(config, "encoder", None), "hidden_size", None) or config.d_model
        dec = getattr(getattr(config, "decoder", None), "hidden_size", None) or config.d_model
        model.copy_head = CopyHead(dec, enc).to(next(model.parameters()).device)
    return model
