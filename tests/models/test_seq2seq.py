"""TextToText: the three kinds train and decode, artifacts round-trip, the MiniLM build works offline."""

from __future__ import annotations

import json
import time

import pytest
import torch
from tiny import minilm_tokenizer, tiny_bert_config, tiny_seq2seq

from serac.models.artifacts import ArtifactError
from serac.models.seq2seq import KINDS, TextToText, build_minilm_encoder_decoder

INPUTS = ["paris is the capital of", "the sky is", "water boils at", "the author of hamlet is"]
TARGETS = ["france", "blue", "one hundred degrees", "shakespeare"]


def tiny_causal(seed: int = 0) -> TextToText:
    torch.manual_seed(seed)
    return TextToText.from_config("causal", tiny_bert_config(layers=1, is_decoder=True), minilm_tokenizer())


def tiny_classifier(seed: int = 0) -> TextToText:
    torch.manual_seed(seed)
    config = tiny_bert_config(layers=1, num_labels=2)
    return TextToText.from_config("classifier", config, minilm_tokenizer(), labels=("false", "true"))


def train(t2t: TextToText, inputs: list[str], targets: list[str], max_steps: int, lr: float = 3e-3) -> list[float]:
    """Full-batch AdamW until greedy decoding reproduces every target (checked every 10 steps)."""
    optimizer = torch.optim.AdamW(t2t.parameters(), lr=lr)
    losses = []
    for step in range(max_steps):
        optimizer.zero_grad()
        loss = t2t.loss(inputs, targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step % 10 == 9 and t2t.generate(inputs) == targets:
            break
    return losses


def test_registry_names_the_kinds():
    assert set(KINDS) == {"seq2seq", "seq2seq_copy", "causal", "causal_lora", "classifier"}
    with pytest.raises(ValueError, match="unknown text-to-text kind"):
        TextToText.from_config("diffusion", tiny_bert_config(), minilm_tokenizer())


def test_seq2seq_memorises_four_pairs():
    t2t = tiny_seq2seq()
    assert t2t.generate(INPUTS) != TARGETS
    start = time.perf_counter()
    losses = train(t2t, INPUTS, TARGETS, max_steps=300)
    assert losses[-1] < losses[0] / 5
    assert t2t.generate(INPUTS) == TARGETS, f"not memorised after {len(losses)} steps"
    assert time.perf_counter() - start < 60


def test_causal_memorises_four_pairs_and_generates_only_the_answer():
    t2t = tiny_causal()
    losses = train(t2t, INPUTS, TARGETS, max_steps=400)
    assert losses[-1] < losses[0] / 5
    # The prompt is not echoed back: only the continuation after it is decoded.
    assert t2t.generate(INPUTS) == TARGETS, f"not memorised after {len(losses)} steps"


def test_causal_loss_counts_only_target_tokens():
    t2t = tiny_causal().eval()
    tok = t2t.tokenizer
    prompt = tok("the sky is")["input_ids"]
    target = tok("blue", add_special_tokens=False)["input_ids"] + [tok.sep_token_id]
    ids = torch.tensor([prompt + target])
    with torch.no_grad():
        logp = t2t.model(input_ids=ids).logits.log_softmax(-1)[0]
        expected = -torch.stack([logp[len(prompt) - 1 + i, t] for i, t in enumerate(target)]).mean()
        assert t2t.loss(["the sky is"], ["blue"]).item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("build", [tiny_seq2seq, tiny_causal], ids=["seq2seq", "causal"])
def test_batched_generation_matches_one_by_one(build):
    """Padding (right for seq2seq inputs, left for causal prompts) must not change answers."""
    t2t = build()
    train(t2t, INPUTS, TARGETS, max_steps=60)
    queries = INPUTS + ["a much longer query that needs plenty of padding in the batch", "x"]
    assert t2t.generate(queries, batch_size=len(queries)) == t2t.generate(queries, batch_size=1)


def test_classifier_separates_two_labels():
    t2t = tiny_classifier()
    inputs = ["the claim is correct", "the claim is wrong", "yes indeed", "no never"]
    targets = ["true", "false", "True", "FALSE"]  # labels are matched case-insensitively
    losses = train(t2t, inputs, targets, max_steps=200, lr=1e-2)
    assert losses[-1] < 0.1 < losses[0]
    assert t2t.generate(inputs) == ["true", "false", "true", "false"]
    with pytest.raises(ValueError, match="not among the labels"):
        t2t.loss(["x"], ["maybe"])


def test_loss_checks_lengths():
    with pytest.raises(ValueError, match="1 inputs but 2 targets"):
        tiny_seq2seq().loss(["a"], ["b", "c"])


@pytest.mark.parametrize("build", [tiny_seq2seq, tiny_causal, tiny_classifier], ids=["seq2seq", "causal", "clf"])
def test_save_load_round_trip(tmp_path, build):
    t2t = build()
    train(t2t, INPUTS, TARGETS if t2t.kind != "classifier" else ["true", "false", "true", "false"], max_steps=30)
    t2t.save(tmp_path / "art")
    loaded = TextToText.load(tmp_path / "art", "cpu")
    assert loaded.kind == t2t.kind and loaded.labels == t2t.labels
    assert loaded.max_new_tokens == t2t.max_new_tokens
    queries = INPUTS + ["something unseen"]
    assert loaded.generate(queries) == t2t.generate(queries)
    for (name, a), b in zip(t2t.model.state_dict().items(), loaded.model.state_dict().values()):
        assert torch.equal(a, b), name
    meta = json.loads((tmp_path / "art" / "config.json").read_text())
    assert meta["config"]["hf_config"]["model_type"]  # loading needs no original weights
    assert (tmp_path / "art" / "tokenizer").is_dir()


def test_round_trip_keeps_embeddings_tied(tmp_path):
    t2t = tiny_seq2seq(tie=True)
    t2t.save(tmp_path / "art")
    model = TextToText.load(tmp_path / "art").model
    shared = model.encoder.get_input_embeddings().weight
    assert model.decoder.get_input_embeddings().weight is shared
    assert model.decoder.get_output_embeddings().weight is shared


def _damage(path, how):
    if how == "delete":
        if path.is_dir():
            import shutil

            shutil.rmtree(path)
        else:
            path.unlink()
    else:
        path.write_bytes(path.read_bytes()[:100])


@pytest.mark.parametrize(
    ("target", "how", "named"),
    [
        ("config.json", "delete", "config.json"),
        ("config.json", "truncate", "config.json"),
        ("model.safetensors", "delete", "model.safetensors"),
        ("model.safetensors", "truncate", "model.safetensors"),
        ("tokenizer", "delete", "tokenizer"),
    ],
)
def test_damaged_artifact_raises_naming_the_file(tmp_path, target, how, named):
    tiny_seq2seq().save(tmp_path / "art")
    _damage(tmp_path / "art" / target, how)
    with pytest.raises(ArtifactError, match=named):
        TextToText.load(tmp_path / "art")


def test_bad_hf_config_and_wrong_kind_raise(tmp_path):
    tiny_seq2seq().save(tmp_path / "art")
    with pytest.raises(ArtifactError, match="config.json.*kind"):
        TextToText.load(tmp_path / "art", artifact_kind="scope")
    path = tmp_path / "art" / "config.json"
    meta = json.loads(path.read_text())
    meta["config"]["hf_config"] = {"model_type": "no-such-model"}
    path.write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="config.json"):
        TextToText.load(tmp_path / "art")


def test_weights_that_do_not_fit_raise(tmp_path):
    tiny_seq2seq().save(tmp_path / "art")
    path = tmp_path / "art" / "config.json"
    meta = json.loads(path.read_text())
    meta["config"]["hf_config"]["encoder"]["hidden_size"] = 64
    meta["config"]["hf_config"]["decoder"]["hidden_size"] = 64
    path.write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="model.safetensors"):
        TextToText.load(tmp_path / "art")


def test_real_minilm_encoder_decoder_builds_offline_generates_and_round_trips(tmp_path):
    model = build_minilm_encoder_decoder(decoder_layers=2)
    tok = minilm_tokenizer()
    assert len(model.decoder.bert.encoder.layer) == 2 and len(model.encoder.encoder.layer) == 6
    assert model.config.decoder.is_decoder and model.config.decoder.add_cross_attention
    assert model.config.decoder_start_token_id == tok.cls_token_id
    assert model.config.pad_token_id == tok.pad_token_id
    assert model.decoder.get_output_embeddings().weight is model.encoder.get_input_embeddings().weight
    t2t = TextToText("seq2seq", model, tok, max_new_tokens=4)
    answers = t2t.generate(["paris capital of france [SEP] what is the capital of france?", "hi"], batch_size=2)
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)
    assert t2t.loss(["a b [SEP] c"], ["b"]).item() > 0
    # the built model must survive a save/load round trip (the load rebuilds it from its config)
    t2t.save(tmp_path / "minilm")
    loaded = TextToText.load(tmp_path / "minilm")
    assert loaded.generate(["hi"]) == t2t.generate(["hi"])


def test_hf_config_from_dict_round_trips_and_names_the_file(tmp_path):
    from serac.models.hf import hf_config_from_dict

    config = tiny_bert_config(layers=1, num_labels=3)
    back = hf_config_from_dict(config.to_dict(), tmp_path / "config.json")
    assert type(back) is type(config) and back.num_labels == 3 and back.hidden_size == config.hidden_size
    with pytest.raises(ArtifactError, match=r"config\.json: 'hf_config' is missing"):
        hf_config_from_dict({"hidden_size": 8}, tmp_path / "config.json")


def test_embeddings_tied_tells_a_tied_encoder_decoder_from_an_untied_one():
    from serac.models.minilm_seq2seq import embeddings_tied, tie_encoder_decoder_embeddings

    t2t = tiny_seq2seq(tie=False)
    assert not embeddings_tied(t2t.model)
    tie_encoder_decoder_embeddings(t2t.model)
    assert embeddings_tied(t2t.model)
    assert not embeddings_tied(tiny_classifier().model)  # no encoder/decoder pair


@pytest.mark.parametrize("kind", ["seq2seq", "seq2seq_copy", "causal"])
def test_sequence_logprob_is_the_summed_loss_and_ignores_padding(kind):
    t2t = tiny_causal() if kind == "causal" else tiny_seq2seq(kind=kind)
    train(t2t, INPUTS, TARGETS, max_steps=400)
    scores = t2t.sequence_logprob(INPUTS, TARGETS, batch_size=len(INPUTS))
    assert scores == pytest.approx(t2t.sequence_logprob(INPUTS, TARGETS, batch_size=1), abs=1e-4)
    for inp, target, score in zip(INPUTS, TARGETS, scores):
        n_tokens = len(t2t.tokenizer(target, add_special_tokens=False)["input_ids"]) + 1  # + EOS
        with torch.no_grad():
            assert score == pytest.approx(-t2t.loss([inp], [target]).item() * n_tokens, rel=1e-4)
        assert score < 0
    # the trained targets are likelier than a swapped one
    assert scores[0] > t2t.sequence_logprob(INPUTS[:1], TARGETS[1:2])[0]


def test_sequence_logprob_needs_a_token_level_model():
    with pytest.raises(ValueError, match="no token-level likelihood"):
        tiny_classifier().sequence_logprob(["the claim is correct"], ["true"])
    with pytest.raises(ValueError, match="1 inputs but 2 targets"):
        tiny_seq2seq().sequence_logprob(["a"], ["b", "c"])
