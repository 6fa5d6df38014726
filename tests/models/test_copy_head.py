"""The pointer-generator copy head and the ``seq2seq_copy`` kind."""

from __future__ import annotations

import random

import pytest
import torch
from tiny import minilm_tokenizer, tiny_seq2seq

from serac.models.copy_head import CopyHead
from serac.models.seq2seq import TextToText


def test_mixture_is_a_distribution_and_pure_copy_stays_on_input_tokens():
    torch.manual_seed(0)
    head = CopyHead(8, 8)
    B, T, S, V = 2, 3, 5, 20
    ids = torch.tensor([[1, 4, 4, 7, 0], [2, 3, 9, 0, 0]])
    mask = (ids != 0).long()
    args = (torch.randn(B, T, 8), torch.randn(B, S, 8), mask, ids, torch.randn(B, T, V))
    assert torch.allclose(head(*args).exp().sum(-1), torch.ones(B, T), atol=1e-5)
    with torch.no_grad():  # gate closed: all mass on the (unmasked) input tokens
        head.gate.weight.zero_()
        head.gate.bias.fill_(-40.0)
    p = head(*args).exp()
    for b in range(B):
        allowed = set(ids[b][mask[b].bool()].tolist())
        outside = [w for w in range(V) if w not in allowed]
        assert p[b][:, outside].max() < 1e-6
        assert p[b][:, sorted(allowed)].sum(-1).allclose(torch.ones(T), atol=1e-5)


def _copy_task(words: list[str], rng: random.Random) -> tuple[list[str], list[str]]:
    inputs, targets = [], []
    for w in words:
        filler = rng.choice(["the answer is", "it is", "now it is"])
        inputs.append(f"{filler} {w} [SEP] what is it?")
        targets.append(w)
    return inputs, targets


def test_copy_kind_learns_to_copy_words_it_never_saw():
    """Answers that are in the input but never in training: only copying gets them right."""
    tok = minilm_tokenizer()
    vocab = [w for w in tok.get_vocab() if w.isalpha() and len(w) > 3 and not w.startswith("#")]
    rng = random.Random(0)
    words = rng.sample(sorted(vocab), 400)
    train_words, test_words = words[:300], words[300:]
    t2t = tiny_seq2seq(kind="seq2seq_copy", tie=True, max_new_tokens=3)
    optimizer = torch.optim.AdamW(t2t.parameters(), lr=3e-3)
    t2t.train()
    for step in range(150):
        batch = rng.sample(train_words, 16)
        inputs, targets = _copy_task(batch, rng)
        optimizer.zero_grad()
        t2t.loss(inputs, targets).backward()
        optimizer.step()
    inputs, targets = _copy_task(test_words, rng)
    answers = t2t.generate(inputs)
    accuracy = sum(a == t for a, t in zip(answers, targets)) / len(targets)
    assert accuracy >= 0.9, list(zip(answers, targets))[:5]


def test_copy_kind_round_trip_keeps_the_head(tmp_path):
    t2t = tiny_seq2seq(kind="seq2seq_copy")
    with torch.no_grad():
        t2t.model.copy_head.gate.bias.fill_(0.7)
    t2t.save(tmp_path / "art")
    loaded = TextToText.load(tmp_path / "art")
    assert loaded.kind == "seq2seq_copy"
    assert loaded.model.copy_head.gate.bias.item() == pytest.approx(0.7)
    queries = ["the sky is blue [SEP] sky?", "x"]
    assert loaded.generate(queries) == t2t.generate(queries)
    assert t2t.generate(queries, batch_size=1) == t2t.generate(queries, batch_size=2)
