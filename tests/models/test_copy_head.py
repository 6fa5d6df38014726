"""The pointer-generator copy head and the ``seq2seq_copy`` kind."""

from __future__ import annotations

import random

import pytest
import torch
from tiny import minilm_tokenizer, tiny_seq2seq

from serac.models.copy_head import CopyHead, successor_features
from serac.models.seq2seq import TextToText


def test_mixture_is_a_distribution_and_pure_copy_stays_on_input_tokens():
    torch.manual_seed(0)
    head = CopyHead(8, 8)
    B, T, S, V = 2, 3, 5, 20
    ids = torch.tensor([[1, 4, 4, 7, 0], [2, 3, 9, 0, 0]])
    mask = (ids != 0).long()
    decoder_ids = torch.tensor([[1, 4, 7], [1, 3, 9]])
    args = (torch.randn(B, T, 8), torch.randn(B, S, 8), mask, ids, torch.randn(B, T, V), decoder_ids)
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


def test_successor_features_mark_the_positions_after_the_tokens_just_emitted():
    encoder_ids = torch.tensor([[101, 5, 6, 5, 7, 102]])
    decoder_ids = torch.tensor([[101, 5, 6, 5]])  # start, then a copy of "5 6 5"
    one, two = successor_features(encoder_ids, decoder_ids, steps=4)
    assert one.shape == two.shape == (1, 4, 6)
    assert one[0, 0].sum() == 0  # the start token is no emitted token, though [CLS] opens the input
    assert one[0, 1].nonzero().flatten().tolist() == [2, 4]  # after either 5
    assert one[0, 2].nonzero().flatten().tolist() == [3]
    assert two[0, 1].sum() == 0  # one token emitted: no pair yet
    assert two[0, 2].nonzero().flatten().tolist() == [3]  # "5 6" -> position 3
    assert two[0, 3].nonzero().flatten().tolist() == [4]  # "6 5" -> position 4, not 2
    # Decoding step by step sees the same features as teacher forcing at that position.
    last_one, last_two = successor_features(encoder_ids, decoder_ids, steps=1)
    assert torch.equal(last_one[0, 0], one[0, 3]) and torch.equal(last_two[0, 0], two[0, 3])


def test_successor_bias_continues_a_copy_where_content_cannot_tell():
    """With content attention uniform and the gate closed, only the bias says which token comes next."""
    head = CopyHead(4, 4)
    with torch.no_grad():
        head.query.weight.zero_()
        head.query.bias.zero_()
        head.gate.weight.zero_()
        head.gate.bias.fill_(-40.0)
        head.successor.fill_(8.0)
    encoder_ids = torch.tensor([[101, 11, 12, 13, 14, 102]])
    mask = torch.ones_like(encoder_ids)
    args = (torch.randn(1, 1, 4), torch.randn(1, 6, 4), mask, encoder_ids, torch.zeros(1, 1, 200))
    assert head(*args, torch.tensor([[101, 12]])).argmax(-1).item() == 13
    assert head(*args, torch.tensor([[101, 12, 13, 14]])).argmax(-1).item() == 102  # the label's end: EOS
    with torch.no_grad():
        head.successor.zero_()
    uniform = head(*args, torch.tensor([[101, 12]])).exp()[0, 0]
    assert torch.allclose(uniform[encoder_ids[0]], torch.full((6,), 1 / 6), atol=1e-5)


def test_a_head_saved_before_the_successor_bias_loads_as_content_only():
    head = CopyHead(8, 8)
    legacy = {k: v for k, v in head.state_dict().items() if k != "successor"}
    fresh = CopyHead(8, 8)
    assert fresh.successor.detach().abs().sum() > 0
    fresh.load_state_dict(legacy, strict=True)
    assert torch.equal(fresh.successor.detach(), torch.zeros(2))
    with pytest.raises(RuntimeError, match="gate"):  # other missing tensors still fail
        CopyHead(8, 8).load_state_dict({k: v for k, v in legacy.items() if "gate" not in k}, strict=True)


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
