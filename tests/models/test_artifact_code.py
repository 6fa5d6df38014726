"""Loading a model artifact never runs code it ships: a tokenizer or model config that points
transformers at a Python file of its own (``auto_map``) is refused, even when someone at the
terminal would answer yes to transformers' "run the custom code?" prompt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny import tiny_counterfactual

from serac.config import BaseModelConfig
from serac.models.base import build_base_model
from serac.models.counterfactual import CounterfactualModel


def plant(directory: Path, canary: Path, config_file: str, auto_map: dict, extra: dict) -> None:
    """A module that touches ``canary`` when imported, and ``config_file`` pointing at it."""
    (directory / "planted.py").write_text(
        f"open({str(canary)!r}, 'w').close()\n"
        "from transformers import BertTokenizerFast, BertConfig, BertModel\n"
        "class PlantedTokenizer(BertTokenizerFast):\n    pass\n"
        "class PlantedConfig(BertConfig):\n    model_type = 'planted'\n"
        "class PlantedModel(BertModel):\n    config_class = PlantedConfig\n"
    )
    path = directory / config_file
    values = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**values, **extra, "auto_map": auto_map}))


@pytest.fixture
def yes_at_the_prompt(monkeypatch):
    monkeypatch.setattr("builtins.input", lambda *args: "y")


def test_counterfactual_artifact_with_tokenizer_code_is_refused(tmp_path, yes_at_the_prompt):
    directory = tiny_counterfactual().save(tmp_path / "cf")
    canary = tmp_path / "code-ran"
    plant(directory / "tokenizer", canary, "tokenizer_config.json",
          {"AutoTokenizer": [None, "planted.PlantedTokenizer"]}, {"tokenizer_class": "PlantedTokenizer"})
    with pytest.raises(Exception, match="tokenizer"):
        CounterfactualModel.load(directory)
    assert not canary.exists()


def test_base_model_directory_with_model_code_is_refused(tmp_path, yes_at_the_prompt):
    """An editor.json may name a Hugging Face base by path; its modelling code must not run."""
    model_dir = tmp_path / "base-model"
    model_dir.mkdir()
    canary = tmp_path / "code-ran"
    plant(model_dir, canary, "config.json", {"AutoConfig": "planted.PlantedConfig", "AutoModel": "planted.PlantedModel",
                                             "AutoModelForCausalLM": "planted.PlantedModel"},
          {"model_type": "planted"})  # fmt: skip
    with pytest.raises(ValueError):
        build_base_model(BaseModelConfig(kind="causal", name_or_path=str(model_dir)))
    assert not canary.exists()
