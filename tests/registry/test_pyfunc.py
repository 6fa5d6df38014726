"""The editor as an MLflow pyfunc model: input forms, then save -> log + register -> promote ->
load ``models:/serac-editor@champion`` -> the same predictions as the editor itself."""

from __future__ import annotations

import mlflow
import mlflow.pyfunc
import pandas as pd
import pytest
from mlflow import MlflowClient
from registry_support import BASE_REFERENCE
from tiny import tiny_counterfactual

from serac.config import EditorConfig, MemoryConfig, RegistryConfig, ScopeConfig
from serac.data.schema import EditRecord, Example
from serac.editor import SeracEditor
from serac.memory import EditMemory
from serac.models.artifacts import ArtifactError
from serac.models.base import CallableBaseModel
from serac.models.scope import ScopeClassifier
from serac.registry.promotion import promote
from serac.registry.pyfunc import (
    BASE_CALLABLE_ENV,
    OUTPUT_COLUMNS,
    editor_signature,
    log_editor_model,
    queries_from_input,
)  # fmt: skip
from serac.registry.tracking import start_run

PM = EditRecord("qa", "Who is the prime minister of the United Kingdom?", "Boris Johnson",
                in_scope=[Example("Who is the UK's prime minister?", "Boris Johnson")])
RIVER = EditRecord("qa", "What is the longest river in Africa?", "Congo")
QUERIES = ["Who is the UK's prime minister?", "What is 2+2?", "Longest river of Africa?"]


def test_queries_from_every_input_form():
    assert queries_from_input(pd.DataFrame({"query": ["a", "b"], "other": [1, 2]})) == ["a", "b"]
    assert queries_from_input(pd.Series(["a"])) == ["a"]
    assert queries_from_input(["a", "b"]) == ["a", "b"]
    assert queries_from_input("a") == ["a"]
    assert queries_from_input({"query": ["a", "b"]}) == ["a", "b"]
    assert queries_from_input({"query": "a"}) == ["a"]
    assert queries_from_input([{"query": "a"}, {"query": "b"}]) == ["a", "b"]
    with pytest.raises(ValueError, match="'query' column"):
        queries_from_input(pd.DataFrame({"question": ["a"]}))
    with pytest.raises(ValueError, match="must be strings"):
        queries_from_input(["a", None])
    with pytest.raises(TypeError, match="unsupported input"):
        queries_from_input(42)


def test_signature_allows_a_missing_edit_id():
    signature = editor_signature()
    assert signature.inputs.input_names() == ["query"]
    assert signature.outputs.input_names() == list(OUTPUT_COLUMNS)
    assert [c.required for c in signature.outputs.inputs] == [True, True, True, False, True]


@pytest.fixture(autouse=True)
def operator_base(monkeypatch):
    """The serving process names the callable base (the editor's files may not)."""
    monkeypatch.setenv(BASE_CALLABLE_ENV, BASE_REFERENCE)


@pytest.fixture(scope="module")
def editor_dir(tmp_path_factory):
    """A saved tiny editor (real MiniLM scope so routing means something) and its own predictions."""
    root = tmp_path_factory.mktemp("editor")
    memory = EditMemory.open(root / "memory", MemoryConfig(root=str(root / "memory")))
    editor = SeracEditor(ScopeClassifier.from_config(ScopeConfig()), tiny_counterfactual(),
                         CallableBaseModel(BASE_REFERENCE), memory, EditorConfig(device="cpu"))  # fmt: skip
    editor.edit([PM, RIVER])
    editor.save(root / "editor")
    return root / "editor", editor.predict(QUERIES)


def test_logged_registered_and_promoted_model_predicts_like_the_editor(store, editor_dir, caplog):
    directory, expected = editor_dir
    client, name = MlflowClient(), "serac-editor"
    with start_run(store, run_name="package") as run:
        version = log_editor_model(directory, name, tags={"data.dvc_md5": "abc.dir"})
    assert "Failed to validate serving input" not in caplog.text  # MLflow served the input example
    assert version.run_id == run.info.run_id and version.version in (1, "1")
    assert version.tags["memory.edits"] == "2" and version.tags["data.dvc_md5"] == "abc.dir"
    decision = promote(client, name, version.version, {"es": 1.0, "dd": 0.0, "eval_set": "sha256:tiny"},
                       RegistryConfig(model_name=name))  # fmt: skip
    assert decision.promote

    model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    assert model.metadata.signature == editor_signature()
    assert model.metadata.metadata["serac"]["edits"] == 2
    out = model.predict(pd.DataFrame({"query": QUERIES}))
    assert list(out.columns) == list(OUTPUT_COLUMNS)
    assert out["answer"].tolist() == [p.answer for p in expected]
    assert out["routed_to"].tolist() == [p.routed_to for p in expected] == ["counterfactual", "base", "counterfactual"]
    assert out["edit_id"].tolist() == [p.edit_id for p in expected]
    assert out["score"].tolist() == pytest.approx([p.score for p in expected], abs=1e-6)
    assert out["answer"][1] == "base:What is 2+2?"
    # what the REST server receives: {"dataframe_split": ...} / {"inputs": {"query": [...]}}
    assert model.predict({"query": QUERIES[:1]})["answer"].tolist() == [expected[0].answer]


@pytest.mark.filterwarnings("ignore::UserWarning")  # "no input example": skipped on purpose
def test_live_memory_and_device_are_load_time_options(store, editor_dir, tmp_path):
    directory, _ = editor_dir
    empty = tmp_path / "live-memory"
    EditMemory.open(empty, MemoryConfig(root=str(empty)))
    with start_run(store, run_name="package-2"):
        version = log_editor_model(directory, "serac-editor-live", input_example=None)
    model = mlflow.pyfunc.load_model(
        f"models:/serac-editor-live/{version.version}", model_config={"memory_root": str(empty), "device": "cpu"}
    )
    out = model.predict(pd.DataFrame({"query": QUERIES[:1]}))
    assert out["routed_to"].tolist() == ["base"] and out["edit_id"].tolist() == [None]


def test_logging_a_directory_that_is_not_an_editor_fails_early(store, tmp_path):
    with start_run(store, run_name="bad"), pytest.raises(ArtifactError, match="editor.json"):
        log_editor_model(tmp_path, "serac-editor-bad")
