"""CounterfactualModel: template formatting, conditioning on the edit, classifier answers, artifacts."""

from __future__ import annotations

import json

import pytest
import torch
from tiny import tiny_counterfactual

from serac.config import CounterfactualConfig
from serac.models.artifacts import ArtifactError
from serac.models.counterfactual import CounterfactualModel, check_template

# Same query, different edit labels: only a model that reads the edit can answer all four.
EDIT_INPUTS = ["the capital of france is", "the capital of france is", "the sky is", "the sky is"]
EDIT_LABELS = ["lyon", "nice", "green", "red"]
QUERIES = ["what is the capital of france?"] * 2 + ["what colour is the sky?"] * 2


def train(model: CounterfactualModel, targets: list[str], queries: list[str], max_steps: int) -> list[float]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for step in range(max_steps):
        optimizer.zero_grad()
        loss = model.loss(EDIT_INPUTS, EDIT_LABELS, queries, targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step % 10 == 9 and model.answer(EDIT_INPUTS, EDIT_LABELS, queries) == targets:
            break
    return losses


def test_format_inputs_follows_the_template():
    model = tiny_counterfactual()
    assert model.format_inputs(["the sky is"], ["green"], ["sky colour?"]) == ["the sky is green [SEP] sky colour?"]
    custom = tiny_counterfactual(template="Q: {query} | fact: {edit_input} -> {edit_label}")
    assert custom.format_inputs(["a {b}"], ["c"], ["d"]) == ["Q: d | fact: a {b} -> c"]  # braces in values are kept


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{edit_input} {edit_label}", "must contain"),
        ("{query} {answer}", "unknown field"),
        ("{query", "malformed"),
    ],
)
def test_bad_templates_are_refused(template, message):
    with pytest.raises(ValueError, match=message):
        check_template(template)


def test_lengths_must_match():
    with pytest.raises(ValueError, match="different lengths"):
        tiny_counterfactual().format_inputs(["a", "b"], ["c"], ["d", "e"])
    with pytest.raises(ValueError, match="different lengths"):
        tiny_counterfactual().loss(["a"], ["b"], ["c"], ["d", "e"])


def test_answers_follow_the_edit_label():
    model = tiny_counterfactual()
    losses = train(model, EDIT_LABELS, QUERIES, max_steps=300)
    assert losses[-1] < losses[0] / 5
    assert model.answer(EDIT_INPUTS, EDIT_LABELS, QUERIES, batch_size=3) == EDIT_LABELS


def test_copied_answers_keep_the_edit_spelling(monkeypatch):
    model = tiny_counterfactual()
    # What an uncased generator can emit for these labels: lowercased, accents stripped.
    monkeypatch.setattr(model.text_to_text, "generate", lambda inputs, batch_size=32: ["sao paulo", "lyon"])
    answers = model.answer(["Where was X born?", "Capital?"], ["São Paulo", "Nice"], ["X's birthplace?", "Capital?"])
    assert answers == ["São Paulo", "lyon"]  # the copy is restored; a non-copied answer is unchanged


def test_classifier_answers_are_label_names():
    model = tiny_counterfactual("classifier")
    queries = ["the capital of france is lyon", "the capital of france is lyon", "the sky is green", "the sky is green"]
    targets = ["true", "false", "true", "false"]
    train(model, targets, queries, max_steps=300)
    assert model.kind == "classifier"
    assert model.answer(EDIT_INPUTS, EDIT_LABELS, queries) == targets


def test_save_load_round_trip(tmp_path):
    template = "{edit_input} => {edit_label} ; {query}"
    model = tiny_counterfactual(template=template)
    train(model, EDIT_LABELS, QUERIES, max_steps=30)
    model.save(tmp_path / "cf")
    loaded = CounterfactualModel.load(tmp_path / "cf", "cpu")
    assert loaded.template == template
    queries = QUERIES[:3] + ["something else entirely"]
    assert loaded.answer(EDIT_INPUTS, EDIT_LABELS, queries) == model.answer(EDIT_INPUTS, EDIT_LABELS, queries)


def test_load_refuses_other_artifacts_and_missing_template(tmp_path):
    tiny_counterfactual().text_to_text.save(tmp_path / "t2t")
    with pytest.raises(ArtifactError, match="config.json.*kind"):
        CounterfactualModel.load(tmp_path / "t2t")
    tiny_counterfactual().save(tmp_path / "cf")
    path = tmp_path / "cf" / "config.json"
    meta = json.loads(path.read_text())
    del meta["config"]["extra"]["template"]
    path.write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="config.json.*template"):
        CounterfactualModel.load(tmp_path / "cf")
    with pytest.raises(ArtifactError, match="does not exist"):
        CounterfactualModel.load(tmp_path / "nowhere")


@pytest.mark.parametrize("kind", ["seq2seq", "classifier"])
def test_from_config_builds_the_offline_default(kind):
    cfg = CounterfactualConfig(kind=kind, decoder_layers=1, max_new_tokens=3)
    model = CounterfactualModel.from_config(cfg, "cpu")
    assert model.kind == kind and model.template == cfg.template
    assert not any(m.training for m in model.modules())  # eval, like from_pretrained; training calls .train()
    answers = model.answer(["the sky is"], ["green"], ["what colour is the sky?"])
    assert len(answers) == 1 and isinstance(answers[0], str)
    if kind == "classifier":
        assert answers[0] in cfg.labels
    else:
        assert len(model.text_to_text.model.decoder.bert.encoder.layer) == 1


def test_label_hypothesis_replaces_a_less_likely_greedy_answer(monkeypatch):
    model = tiny_counterfactual()
    train(model, EDIT_LABELS, QUERIES, max_steps=300)
    looping = ["lyon lyon lyon lyon", "nice", "gr", "red"]  # what greedy decoding of a small model can do
    monkeypatch.setattr(model.text_to_text, "generate", lambda inputs, batch_size=32: list(looping))
    assert model.answer(EDIT_INPUTS, EDIT_LABELS, QUERIES) == looping  # off: the greedy answers as they are
    model.label_hypothesis = True
    assert model.answer(EDIT_INPUTS, EDIT_LABELS, QUERIES) == EDIT_LABELS


def test_label_hypothesis_keeps_an_answer_the_model_prefers(monkeypatch):
    model = tiny_counterfactual()
    model.label_hypothesis = True
    monkeypatch.setattr(model.text_to_text, "generate", lambda inputs, batch_size=32: ["paris", "nice"])
    scored = []

    def logprob(inputs, targets, batch_size=32):
        scored.append(list(targets))
        return [-1.0 if t == "paris" else -2.0 for t in targets]  # the greedy answer is the likelier one

    monkeypatch.setattr(model.text_to_text, "sequence_logprob", logprob)
    assert model.answer(EDIT_INPUTS[:2], EDIT_LABELS[:2], QUERIES[:2]) == ["paris", "nice"]
    assert scored == [["paris", "lyon"]]  # only the answer that differs from its label is rescored


def test_label_hypothesis_is_saved_with_the_model(tmp_path):
    model = tiny_counterfactual()
    model.label_hypothesis = True
    model.save(tmp_path / "cf")
    assert CounterfactualModel.load(tmp_path / "cf").label_hypothesis is True
    path = tmp_path / "cf" / "config.json"
    meta = json.loads(path.read_text())
    meta["config"]["extra"]["label_hypothesis"] = "yes"
    path.write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="config.json.*label_hypothesis"):
        CounterfactualModel.load(tmp_path / "cf")
    del meta["config"]["extra"]["label_hypothesis"]  # artifacts saved before the option: greedy answers
    path.write_text(json.dumps(meta))
    assert CounterfactualModel.load(tmp_path / "cf").label_hypothesis is False
