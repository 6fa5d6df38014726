"""Scope classifiers: scoring, trainability, save/load round trips, and the real MiniLM."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch
from tiny import minilm_tokenizer, tiny_bert_config

from serac.config import ConfigError, ScopeConfig
from serac.data.schema import EditRecord
from serac.edit_text import format_edit
from serac.models.artifacts import ArtifactError
from serac.models.encoder import TextEncoder
from serac.models.scope import CrossEncoderScope, EmbeddingScope, ScopeClassifier

EDITS = [
    "Who is the president of France? Emmanuel Macron",
    "What sport does Lionel Messi play? basketball",
    "The Eiffel Tower is in Rome",
]
QUERIES = [
    "Which person is France's president?",
    "Lionel Messi is a professional player of which sport?",
    "Where is the Eiffel Tower?",
    "What is the capital of Japan?",
]


def tiny_embedding(seed: int = 0) -> EmbeddingScope:
    torch.manual_seed(seed)
    return EmbeddingScope(TextEncoder.from_config(tiny_bert_config(), minilm_tokenizer(), max_length=32))


def tiny_cross(seed: int = 0) -> CrossEncoderScope:
    torch.manual_seed(seed)
    return CrossEncoderScope.from_config(tiny_bert_config(), minilm_tokenizer(), max_length=48)


def tiny_classifier(kind: str) -> ScopeClassifier:
    cross = tiny_cross() if kind != "embedding" else None
    return ScopeClassifier(ScopeConfig(kind=kind), tiny_embedding(), cross)


def test_initial_scalars_put_cosine_0_6_at_probability_one_half():
    scope = tiny_embedding()
    probs = scope.probs_from_cosine(np.array([-1.0, 0.3, 0.6, 0.9, 1.0]))
    assert probs.dtype == np.float32
    assert probs[2] == pytest.approx(0.5)
    assert np.all(np.diff(probs) > 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert scope.probs_from_cosine(np.array([-1e6, 1e6])).tolist() == [0.0, 1.0]


def test_edit_texts_follow_the_template_and_records_embed_like_their_texts():
    scope = tiny_embedding()
    record = EditRecord(task="qa", edit_input="Who is the president of France?", edit_label="Emmanuel Macron")
    assert scope.edit_texts([record]) == [EDITS[0]]
    assert format_edit(record, "{subject}|{task}: {edit_label}") == "|qa: Emmanuel Macron"
    with pytest.raises(ValueError, match="unknown field"):
        format_edit(record, "{answer}")
    np.testing.assert_allclose(scope.embed_edits([record]), scope.embed_edits([EDITS[0]]), atol=1e-6)
    assert scope.embed_queries(QUERIES).shape == (len(QUERIES), 32)


def test_logits_logit_matrix_and_cosine_probabilities_agree():
    scope = tiny_embedding().eval()
    with torch.no_grad():
        matrix = scope.logit_matrix(EDITS, QUERIES)
        aligned = scope.logits(EDITS, QUERIES[:3])
    assert matrix.shape == (len(QUERIES), len(EDITS)) and aligned.shape == (3,)
    torch.testing.assert_close(torch.diagonal(matrix), aligned, atol=1e-5, rtol=0)
    cos = scope.embed_queries(QUERIES) @ scope.embed_edits(EDITS).T
    np.testing.assert_allclose(scope.probs_from_cosine(cos), torch.sigmoid(matrix).numpy(), atol=1e-4)
    with pytest.raises(ValueError, match="3 edits but 4 queries"):
        scope.logits(EDITS, QUERIES)


def test_gradients_reach_encoder_and_scalars_and_param_groups_split_them():
    scope = tiny_embedding()
    scope.logit_matrix(EDITS, QUERIES).sum().backward()
    assert scope.log_scale.grad is not None and scope.bias.grad is not None
    assert any(p.grad is not None and torch.any(p.grad != 0) for p in scope.encoder.parameters())

    groups = scope.param_groups(lr=5e-5, scalar_lr=1e-2, weight_decay=0.01)
    assert [g["name"] for g in groups] == ["encoder", "scalars"]
    assert [g["lr"] for g in groups] == [5e-5, 1e-2]
    assert groups[1]["params"] == [scope.log_scale, scope.bias] and groups[1]["weight_decay"] == 0.0
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in scope.parameters())
    torch.optim.AdamW(groups)


def test_cross_encoder_scores_are_probabilities_of_its_logits():
    cross = tiny_cross().eval()
    with torch.no_grad():
        logits = cross.logits(EDITS, QUERIES[:3])
    assert logits.shape == (3,)
    probs = cross.score(EDITS, QUERIES[:3], batch_size=2)
    assert probs.dtype == np.float32 and np.all((probs > 0) & (probs < 1))
    np.testing.assert_allclose(probs, torch.sigmoid(logits).numpy(), atol=1e-5)
    assert cross.score([], []).shape == (0,)
    cross.train()
    cross.score(EDITS, QUERIES[:3])
    assert cross.training, "score must restore the training mode"


@pytest.mark.parametrize("kind", ["embedding", "rerank", "cross_encoder"])
def test_score_candidates_uses_the_configured_scorer(kind):
    clf = tiny_classifier(kind)
    cosines = np.array([0.9, 0.6, 0.1], dtype=np.float32)
    probs = clf.score_candidates(QUERIES[0], EDITS, cosines)
    if kind == "embedding":
        np.testing.assert_allclose(probs, clf.embedding.probs_from_cosine(cosines))
    else:
        np.testing.assert_allclose(probs, clf.cross.score(EDITS, [QUERIES[0]] * 3), atol=1e-6)
    batch = clf.score_batch(QUERIES[:2], [EDITS, EDITS[:1]], [cosines, cosines[:1]])
    assert [len(p) for p in batch] == [3, 1]
    np.testing.assert_allclose(batch[0], probs, atol=1e-6)
    assert clf.score_candidates(QUERIES[0], [], np.zeros(0)).shape == (0,)
    with pytest.raises(ValueError, match="3 candidate edits but 2 cosines"):
        clf.score_candidates(QUERIES[0], EDITS, cosines[:2])


def test_rerank_sends_only_queries_above_rerank_above_to_the_cross_encoder(monkeypatch):
    clf = ScopeClassifier(ScopeConfig(kind="rerank", rerank_above=0.3), tiny_embedding(), tiny_cross())
    high = np.array([0.9, 0.6], dtype=np.float32)  # best embedding probability 0.92: ambiguous, reranked
    low = np.array([0.4, 0.1], dtype=np.float32)  # best 0.12: out of scope by the embedding alone
    assert clf.embedding.probs_from_cosine(low).max() <= 0.3 < clf.embedding.probs_from_cosine(high).max()
    pairs: list[tuple[str, str]] = []
    score = clf.cross.score

    def spy(edits, queries, batch_size=64):
        pairs.extend(zip(edits, queries))
        return score(edits, queries, batch_size)

    monkeypatch.setattr(clf.cross, "score", spy)
    out = clf.score_batch(QUERIES[:3], [EDITS[:2], EDITS[1:], EDITS[:2]], [high, low, high])
    assert pairs == [(EDITS[0], QUERIES[0]), (EDITS[1], QUERIES[0]), (EDITS[0], QUERIES[2]), (EDITS[1], QUERIES[2])]
    np.testing.assert_allclose(out[0], score(EDITS[:2], [QUERIES[0]] * 2), atol=1e-6)
    np.testing.assert_allclose(out[2], score(EDITS[:2], [QUERIES[2]] * 2), atol=1e-6)
    np.testing.assert_array_equal(out[1], clf.embedding.probs_from_cosine(low))
    with pytest.raises(ConfigError, match="rerank_above"):
        ScopeConfig(kind="rerank", rerank_above=1.0)


@pytest.mark.parametrize("kind", ["rerank", "cross_encoder"])
def test_rerank_mix_averages_the_cross_encoder_with_the_embedding_probability(kind):
    cosines = [np.array([0.9, 0.6], dtype=np.float32), np.array([0.2, 0.8], dtype=np.float32)]
    queries, texts = QUERIES[:2], [EDITS[:2], EDITS[1:3]]
    cross_only = ScopeClassifier(ScopeConfig(kind=kind), tiny_embedding(), tiny_cross())
    mixed = ScopeClassifier(replace(cross_only.config, rerank_mix=0.25), cross_only.embedding, cross_only.cross)
    for c, t, q, got in zip(cosines, texts, queries, mixed.score_batch(queries, texts, cosines)):
        want = 0.75 * cross_only.cross.score(t, [q] * 2) + 0.25 * cross_only.embedding.probs_from_cosine(c)
        np.testing.assert_allclose(got, want, atol=1e-6)
        assert got.dtype == np.float32
    all_embedding = ScopeClassifier(replace(cross_only.config, rerank_mix=1.0), cross_only.embedding, cross_only.cross)
    for c, got in zip(cosines, all_embedding.score_batch(queries, texts, cosines)):
        np.testing.assert_allclose(got, cross_only.embedding.probs_from_cosine(c), atol=1e-6)
    with pytest.raises(ConfigError, match="rerank_mix"):
        ScopeConfig(kind=kind, rerank_mix=1.5)


def test_classifier_delegates_embedding_to_its_embedding_scope():
    clf = tiny_classifier("embedding")
    record = EditRecord(task="qa", edit_input="Who is the president of France?", edit_label="Emmanuel Macron")
    assert clf.dim == 32
    assert clf.edit_text(record) == EDITS[0]
    np.testing.assert_array_equal(clf.embed_queries(QUERIES), clf.embedding.embed_queries(QUERIES))


def test_kinds_with_a_cross_encoder_require_one():
    with pytest.raises(ValueError, match="needs a cross-encoder"):
        ScopeClassifier(ScopeConfig(kind="rerank"), tiny_embedding())


def _perturb(module: torch.nn.Module) -> None:
    """Move the weights away from their init so that a load that silently failed is caught."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.01 * torch.randn_like(p))


@pytest.mark.parametrize("kind", ["embedding", "rerank"])
def test_save_load_round_trip_gives_identical_scores(tmp_path, kind):
    torch.manual_seed(1)
    clf = tiny_classifier(kind).eval()
    _perturb(clf.embedding)
    if clf.cross is not None:
        _perturb(clf.cross)
    clf.save(tmp_path / "scope")
    assert (tmp_path / "scope" / "config.json").is_file()
    for part in ["embedding"] + (["cross"] if kind == "rerank" else []):
        for name in ("config.json", "model.safetensors", "tokenizer"):
            assert (tmp_path / "scope" / part / name).exists()

    loaded = ScopeClassifier.load(tmp_path / "scope", device="cpu").eval()
    assert loaded.config == clf.config
    assert loaded.encoder_fingerprint() == clf.encoder_fingerprint()
    assert loaded.embedding.scale.item() == clf.embedding.scale.item()
    np.testing.assert_array_equal(loaded.embedding.embed_edits(EDITS), clf.embedding.embed_edits(EDITS))
    cosines = np.array([0.8, 0.5, 0.2])
    np.testing.assert_array_equal(
        loaded.score_candidates(QUERIES[0], EDITS, cosines), clf.score_candidates(QUERIES[0], EDITS, cosines)
    )
    if kind == "rerank":
        as_embedding = ScopeClassifier.load(tmp_path / "scope", kind="embedding")
        assert as_embedding.config.kind == "embedding" and as_embedding.cross is None


def test_load_errors_name_the_broken_file(tmp_path):
    tiny_classifier("rerank").save(tmp_path / "scope")

    weights = tmp_path / "scope" / "embedding" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ArtifactError, match="embedding/model.safetensors"):
        ScopeClassifier.load(tmp_path / "scope")

    (tmp_path / "scope" / "cross" / "config.json").unlink()
    with pytest.raises(ArtifactError, match="cross/config.json"):
        CrossEncoderScope.load(tmp_path / "scope" / "cross")

    (tmp_path / "scope" / "config.json").unlink()
    with pytest.raises(ArtifactError, match="scope/config.json: missing"):
        ScopeClassifier.load(tmp_path / "scope")
    with pytest.raises(ArtifactError, match="does not exist"):
        ScopeClassifier.load(tmp_path / "nowhere")


def test_load_errors_for_a_missing_cross_part_or_tokenizer(tmp_path):
    import shutil

    tiny_classifier("embedding").save(tmp_path / "scope")
    with pytest.raises(ArtifactError, match="cross: missing"):
        ScopeClassifier.load(tmp_path / "scope", kind="rerank")
    shutil.rmtree(tmp_path / "scope" / "embedding" / "tokenizer")
    with pytest.raises(ArtifactError, match="tokenizer"):
        ScopeClassifier.load(tmp_path / "scope")


TOY_PAIRS = [  # (edit, query, in scope?)
    (EDITS[0], QUERIES[0], 1.0),
    (EDITS[1], QUERIES[1], 1.0),
    (EDITS[2], QUERIES[2], 1.0),
    (EDITS[0], QUERIES[3], 0.0),
    (EDITS[1], QUERIES[2], 0.0),
    (EDITS[2], QUERIES[0], 0.0),
]


def test_a_few_steps_reduce_the_embedding_bce_with_in_batch_negatives():
    scope = tiny_embedding()
    opt = torch.optim.AdamW(scope.param_groups(lr=1e-3, scalar_lr=1e-1))
    target = torch.zeros(len(QUERIES), len(EDITS))
    target[0, 0] = target[1, 1] = target[2, 2] = 1.0

    def loss() -> torch.Tensor:
        return torch.nn.functional.binary_cross_entropy_with_logits(scope.logit_matrix(EDITS, QUERIES), target)

    losses = []
    for _ in range(15):
        opt.zero_grad()
        value = loss()
        value.backward()
        opt.step()
        losses.append(value.item())
    assert losses[-1] < 0.5 * losses[0]


def test_a_few_steps_reduce_the_cross_encoder_bce():
    cross = tiny_cross()
    opt = torch.optim.AdamW(cross.parameters(), lr=3e-3)
    edits, queries, labels = zip(*TOY_PAIRS)
    target = torch.tensor(labels)
    losses = []
    for _ in range(20):
        opt.zero_grad()
        value = torch.nn.functional.binary_cross_entropy_with_logits(cross.logits(edits, queries), target)
        value.backward()
        opt.step()
        losses.append(value.item())
    assert losses[-1] < 0.5 * losses[0]


def test_real_minilm_scores_a_paraphrase_above_an_unrelated_query():
    clf = ScopeClassifier.from_config(ScopeConfig(kind="embedding"), device="cpu")
    assert clf.embedding.encoder.dim == 384
    edit = "Who is the president of France? Emmanuel Macron"
    queries = ["Which person is France's head of state?", "What is the best recipe for banana bread?"]
    emb_edit = clf.embedding.embed_edits([edit])
    emb_q = clf.embedding.embed_queries(queries)
    cos = (emb_q @ emb_edit.T)[:, 0]
    probs = clf.score_candidates(queries[0], [edit], cos[:1])
    assert cos[0] > cos[1] + 0.3, cos
    assert probs[0] > clf.embedding.probs_from_cosine(cos[1:])[0]
    assert clf.embedding.probs_from_cosine(cos[1:])[0] < 0.05
