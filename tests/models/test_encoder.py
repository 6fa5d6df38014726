"""TextEncoder on a tiny random BERT: shapes, normalisation, gradients, fingerprint."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny import minilm_tokenizer, tiny_bert_config

from serac.models.encoder import TextEncoder, config_from_dict, stable_config_dict

TEXTS = [
    "Who is the president of France?",
    "paris",
    "The Eiffel Tower is located in the city of Rome, according to the new edit.",
    "What sport does Lionel Messi play?",
    "a",
]


def tiny_encoder(seed: int = 0, max_length: int = 32) -> TextEncoder:
    torch.manual_seed(seed)
    return TextEncoder.from_config(tiny_bert_config(), minilm_tokenizer(), max_length=max_length)


def test_encode_shapes_dtype_and_unit_norm():
    enc = tiny_encoder()
    out = enc.encode(TEXTS, batch_size=2)
    assert enc.dim == 32
    assert out.shape == (len(TEXTS), 32) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert enc.encode([]).shape == (0, 32)


def test_forward_and_encode_agree_whatever_the_batching():
    enc = tiny_encoder().eval()
    with torch.no_grad():
        forward = enc(TEXTS).numpy()
    np.testing.assert_allclose(enc.encode(TEXTS, batch_size=2), forward, atol=1e-5)
    np.testing.assert_allclose(enc.encode(TEXTS, batch_size=128, progress=True), forward, atol=1e-5)


def test_forward_rejects_a_single_string():
    with pytest.raises(TypeError, match="single string"):
        tiny_encoder()("just one text")


def test_gradients_flow_and_encode_restores_training_mode():
    enc = tiny_encoder().train()
    emb = enc(TEXTS[:3])
    assert emb.requires_grad
    (emb[0] @ emb[1]).backward()
    grads = [p.grad for name, p in enc.backbone.named_parameters() if "encoder.layer" in name]
    assert grads and all(g is not None and torch.any(g != 0) for g in grads)
    enc.encode(TEXTS)
    assert enc.training


def test_truncates_to_max_length():
    enc = tiny_encoder(max_length=8)
    assert enc.encode(["word " * 500]).shape == (1, 32)


def test_fingerprint_is_stable_across_rebuilds_and_changes_after_an_update():
    enc = tiny_encoder(seed=0)
    fp = enc.fingerprint()
    assert fp == enc.fingerprint() and len(fp) == 32
    # Rebuilt from the stored config dict (as an artifact load does), same weights: same fingerprint.
    rebuilt = TextEncoder.from_config(
        config_from_dict(stable_config_dict(enc.backbone.config)), minilm_tokenizer(), max_length=32
    )
    rebuilt.load_state_dict(enc.state_dict())
    assert rebuilt.fingerprint() == fp
    assert tiny_encoder(seed=1).fingerprint() != fp
    assert tiny_encoder(seed=0, max_length=16).fingerprint() != fp

    opt = torch.optim.SGD(enc.parameters(), lr=1e-3)
    loss = -(enc(TEXTS[:2]).prod(dim=0).sum())
    loss.backward()
    opt.step()
    assert enc.fingerprint() != fp
