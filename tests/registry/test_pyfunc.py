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
    ARTIFACT_SHA256_TAG,
    OUTPUT_COLUMNS,
    editor_signature,
    log_editor_model,
    queries_from_input,
)
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


@pytest.mark.filterwarnings("ignore::UserWarning")  # "no input example": skipped on purpose
def test_a_retried_registration_in_the_same_run_returns_the_version_already_registered(store, editor_dir):
    """A Prefect retry of the register task calls log_editor_model again in the same run: no second version."""
    directory, _ = editor_dir
    client, name = MlflowClient(), "serac-editor-retry"
    with start_run(store, run_name="register") as run:
        first = log_editor_model(directory, name, input_example=None)
        again = log_editor_model(directory, name, input_example=None)
    assert str(again.version) == str(first.version) == "1"
    assert [v.version for v in client.search_model_versions(f"name = '{name}'")] in (["1"], [1])
    assert first.run_id == run.info.run_id and len(first.tags[ARTIFACT_SHA256_TAG]) == 64
    with start_run(store, run_name="register-again"):  # another run is another registration
        assert str(log_editor_model(directory, name, input_example=None).version) == "2"


def test_a_memory_embedded_by_another_encoder_is_reembedded_in_the_logged_copy_only(editor_dir, tmp_path):
    """Edits ingested with a newer (e.g. rejected) editor: the snapshot a version serves must match its own scope."""
    import numpy as np

    from serac.registry.pyfunc import editor_with_memory

    directory, _ = editor_dir
    live = tmp_path / "live"
    memory = EditMemory.open(live, MemoryConfig(root=str(live)))
    memory.add([PM], np.ones((1, 384), dtype=np.float32) / np.sqrt(384), "another-encoder")
    out = editor_with_memory(directory, live, tmp_path / "logged")
    own = ScopeClassifier.load(directory / "scope").encoder_fingerprint()
    assert EditMemory.open(out / "memory").encoder_fingerprint == own != "another-encoder"
    assert EditMemory.open(live).encoder_fingerprint == "another-encoder" and EditMemory.open(live).version == 1
    reloaded = SeracEditor.load(out, base=CallableBaseModel(BASE_REFERENCE))
    assert reloaded.memory.ids() == [PM.edit_id] and reloaded.predict([QUERIES[0]])[0].edit_id == PM.edit_id
