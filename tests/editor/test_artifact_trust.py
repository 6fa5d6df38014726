"""A packaged editor is data, never code: loading one must not import, call or contact anything
its files name. A ``callable``/``http`` base model is the operator's choice (params.yaml, a CLI
flag, an explicit argument), never the artifact's."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from tiny import tiny_counterfactual
from typer.testing import CliRunner

from serac.cli.main import app
from serac.config import BaseModelConfig, EditorConfig, MemoryConfig, ScopeConfig
from serac.data.schema import EditRecord
from serac.editor import SeracEditor
from serac.memory import EditMemory
from serac.models.artifacts import ArtifactError
from serac.models.base import CallableBaseModel
from serac.models.scope import ScopeClassifier

OPERATOR_BASE = "test_artifact_trust:operator_answers"
RIVER = EditRecord("qa", "What is the longest river in Africa?", "Congo")


def operator_answers(queries: list[str]) -> list[str]:
    return ["operator:" + q for q in queries]


@pytest.fixture(scope="module")
def saved_editor(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("trust")
    memory = EditMemory.open(root / "memory", MemoryConfig(root=str(root / "memory")))
    editor = SeracEditor(ScopeClassifier.from_config(ScopeConfig()), tiny_counterfactual(),
                         CallableBaseModel(operator_answers), memory, EditorConfig(device="cpu"))  # fmt: skip
    editor.edit([RIVER])
    return editor.save(root / "editor")


def hostile_copy(saved_editor: Path, tmp_path: Path, base: dict) -> Path:
    """The saved editor with ``editor.json`` -> ``base`` replaced, as a received file could be."""
    import shutil

    directory = Path(shutil.copytree(saved_editor, tmp_path / "received"))
    meta = json.loads((directory / "editor.json").read_text())
    (directory / "editor.json").write_text(json.dumps({**meta, "base": base}))
    return directory


RUNS_CODE = {"kind": "callable", "callable": "subprocess:check_output", "name_or_path": "x", "saved": False}


def test_serac_query_refuses_an_editor_whose_base_names_a_callable(saved_editor, tmp_path):
    """The reported exploit: `serac query` on such an editor ran `touch <file>`."""
    directory = hostile_copy(saved_editor, tmp_path, RUNS_CODE)
    (tmp_path / "params.yaml").write_text("{}\n")
    target = tmp_path / "pwned"
    result = CliRunner().invoke(app, ["query", "--params", str(tmp_path / "params.yaml"), "--editor", str(directory),
                                      "--memory", str(tmp_path / "empty-memory"), "touch", str(target)])
    assert not target.exists()
    assert result.exit_code == 2
    assert "editor.json" in result.output and "base.kind" in result.output and "--base-callable" in result.output


def test_serac_query_uses_the_callable_the_operator_names(saved_editor, tmp_path):
    directory = hostile_copy(saved_editor, tmp_path, RUNS_CODE)
    (tmp_path / "params.yaml").write_text("{}\n")
    result = CliRunner().invoke(app, ["query", "--params", str(tmp_path / "params.yaml"), "--editor", str(directory),
                                      "--memory", str(tmp_path / "empty-memory"), "--base-callable", OPERATOR_BASE,
                                      "--json", "What is 2+2?"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["answer"] == "operator:What is 2+2?"


def test_params_yaml_is_an_operator_choice(saved_editor, tmp_path):
    directory = hostile_copy(saved_editor, tmp_path, RUNS_CODE)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"base": {"kind": "callable", "callable": OPERATOR_BASE}}))
    result = CliRunner().invoke(app, ["query", "--params", str(params), "--editor", str(directory),
                                      "--memory", str(tmp_path / "empty-memory"), "--json", "What is 2+2?"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["answer"] == "operator:What is 2+2?"


@pytest.mark.parametrize("base", [
    {"kind": "callable", "callable": "serac_canary:answer", "name_or_path": "x", "saved": False},
    {"kind": "http", "url": "http://127.0.0.1:9/steal", "name_or_path": "x", "saved": False},
    {"kind": "no-such-kind", "name_or_path": "x", "saved": False},
])  # fmt: skip
def test_python_load_refuses_a_base_the_artifact_chooses(saved_editor, tmp_path, monkeypatch, base):
    canary = tmp_path / "imported"
    (tmp_path / "serac_canary.py").write_text(
        f"open({str(canary)!r}, 'w').close()\ndef answer(queries):\n    return queries\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    directory = hostile_copy(saved_editor, tmp_path, base)
    with pytest.raises(ArtifactError, match=r"editor\.json.*base\.kind"):
        SeracEditor.load(directory, memory_root=tmp_path / "memory")
    assert not canary.exists()


def test_python_load_with_an_explicit_base(saved_editor, tmp_path):
    directory = hostile_copy(saved_editor, tmp_path, RUNS_CODE)
    editor = SeracEditor.load(directory, memory_root=tmp_path / "memory", base=CallableBaseModel(operator_answers))
    assert editor.predict(["What is 2+2?"])[0].answer == "operator:What is 2+2?"


def test_pyfunc_load_context_refuses_the_artifacts_callable(saved_editor, tmp_path, monkeypatch):
    """MLflow's ``model_config`` is stored in the received MLmodel file, so it cannot choose code either;
    the operator names the base in the serving process's environment."""
    from serac.registry.pyfunc import BASE_CALLABLE_ENV, BASE_URL_ENV, EDITOR_ARTIFACT, SeracPyfunc

    monkeypatch.delenv(BASE_CALLABLE_ENV, raising=False)
    monkeypatch.delenv(BASE_URL_ENV, raising=False)
    directory = hostile_copy(saved_editor, tmp_path, RUNS_CODE)
    context = SimpleNamespace(artifacts={EDITOR_ARTIFACT: str(directory)},
                              model_config={"memory_root": str(tmp_path / "memory"), "base_callable": OPERATOR_BASE})
    with pytest.raises(ArtifactError, match=r"editor\.json.*base\.kind"):
        SeracPyfunc().load_context(context)
    monkeypatch.setenv(BASE_CALLABLE_ENV, OPERATOR_BASE)
    model = SeracPyfunc()
    model.load_context(context)
    assert model.predict(None, ["What is 2+2?"])["answer"].tolist() == ["operator:What is 2+2?"]


def test_operator_base_model_precedence():
    from serac.models.base import operator_base_model

    assert operator_base_model(BaseModelConfig()) is None  # the editor's own (Hugging Face) base
    assert operator_base_model(BaseModelConfig(), callable_ref=OPERATOR_BASE).predict(["q"]) == ["operator:q"]
    from_params = operator_base_model(BaseModelConfig(kind="http", url="http://127.0.0.1:1/x"))
    assert from_params.describe()["url"] == "http://127.0.0.1:1/x"
    with pytest.raises(ValueError, match="not both"):
        operator_base_model(BaseModelConfig(), callable_ref=OPERATOR_BASE, url="http://127.0.0.1:1/x")


def test_serac_serve_refuses_the_artifacts_callable_and_takes_the_operators(saved_editor, tmp_path, monkeypatch):
    import uvicorn

    served: list = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: served.append(app))
    directory = hostile_copy(saved_editor, tmp_path, RUNS_CODE)
    (tmp_path / "params.yaml").write_text("{}\n")
    args = ["serve", "--params", str(tmp_path / "params.yaml"), "--editor", str(directory),
            "--memory", str(tmp_path / "live-memory")]
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 2 and "base.kind" in refused.output and served == []
    accepted = CliRunner().invoke(app, [*args, "--base-callable", OPERATOR_BASE])
    assert accepted.exit_code == 0, accepted.output
    assert len(served) == 1
