"""MLflow tracking: where runs go, run helpers, the training-loop hook and version tags.

Solo mode (the default): a SQLite store ``mlflow/mlflow.db`` and artifacts under
``mlflow/artifacts/<experiment>``, both resolved against the project root, so a
run started from any directory lands in the same store. Team mode: set the
environment variable ``MLFLOW_TRACKING_URI`` (e.g. a tracking server backed by
Postgres); it wins over ``tracking.tracking_uri`` and the server chooses where
artifacts go.

Every helper takes an optional ``run_id`` and otherwise needs an active run
(:func:`start_run`): unlike ``mlflow.log_*`` they never start a run by accident.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from serac.config import TrackingConfig
from serac.dvc_files import dvc_hash

__all__ = [
    "MlflowHook",
    "TrackingConfig",
    "active_run_id",
    "configure_mlflow",
    "dvc_hash",
    "flatten_metrics_by_k",
    "flatten_params",
    "git_commit",
    "log_metrics_by_k",
    "log_params_flat",
    "log_plot",
    "resolve_tracking_uri",
    "sanitize_key",
    "set_version_tags",
    "start_run",
]

MAX_KEY_LENGTH = 250
"""MLflow's limit on metric, param and tag keys."""
MAX_PARAM_VALUE_LENGTH = 6000
"""MLflow's limit on a param value (3.x); longer values are truncated, not rejected."""
_BATCH_PARAMS = 100
_BATCH_METRICS = 1000
_REMOTE_SCHEMES = ("http://", "https://", "databricks")

_configured_uri: str | None = None
"""The URI this process set last; ``mlflow.set_tracking_uri`` copies it into ``MLFLOW_TRACKING_URI``
(for subprocesses), so an equal environment value is ours, not the user's..."""
_configured_from_env: bool = False
"""... unless that URI came from the user's ``MLFLOW_TRACKING_URI`` in the first place (team mode):
then it stays the user's on every later call."""


# ------------------------------------------------------------------ where runs go
def resolve_tracking_uri(cfg: TrackingConfig = TrackingConfig(), root: str | Path | None = None) -> str:
    """The tracking URI to use: ``MLFLOW_TRACKING_URI`` when the user set it, else ``cfg.tracking_uri``.

    A relative ``sqlite:///`` path is made absolute against ``root`` (default: the
    working directory, i.e. the project root for the CLI, flows and DVC stages).
    """
    uri, _ = _resolve(cfg, root)
    return uri


def _resolve(cfg: TrackingConfig, root: str | Path | None) -> tuple[str, bool]:
    """The tracking URI and whether it is the user's ``MLFLOW_TRACKING_URI``."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    from_env = bool(env) and (env != _configured_uri or _configured_from_env)
    uri = env if from_env and env else cfg.tracking_uri
    return _absolute_sqlite(uri, Path(root) if root is not None else Path.cwd()), from_env


def _absolute_sqlite(uri: str, root: Path) -> str:
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return uri
    path = uri[len(prefix) :]
    if not path or path == ":memory:" or path.startswith("/"):
        return uri
    return prefix + str((root / path).resolve())  # sqlite:////abs/path.db


def _experiment_artifact_location(cfg: TrackingConfig, tracking_uri: str, root: Path) -> str | None:
    folder = re.sub(r"[^\w.-]", "_", cfg.experiment_name.strip())
    if "://" in cfg.artifact_root:
        return f"{cfg.artifact_root.rstrip('/')}/{folder}"
    if tracking_uri.startswith(_REMOTE_SCHEMES):
        return None  # the server's --default-artifact-root / --artifacts-destination applies
    return (root / cfg.artifact_root / folder).resolve().as_uri()


def configure_mlflow(cfg: TrackingConfig = TrackingConfig(), root: str | Path | None = None) -> str:
    """Point MLflow at the store, create the experiment if missing, make it current; returns its id.

    A new experiment gets ``artifact_location`` ``<artifact_root>/<experiment>`` (absolute),
    so artifacts never land in the working directory. Safe to call repeatedly.
    """
    global _configured_uri, _configured_from_env
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"  # for subprocesses; this process opted out on import
    root_path = Path(root) if root is not None else Path.cwd()
    uri, from_env = _resolve(cfg, root_path)
    if uri.startswith("sqlite:////"):
        Path(uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    _configured_uri, _configured_from_env = uri, from_env
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(cfg.experiment_name)
    if experiment is None:
        try:
            experiment_id = client.create_experiment(
                cfg.experiment_name, artifact_location=_experiment_artifact_location(cfg, uri, root_path)
            )
        except MlflowException:  # created meanwhile by another process
            experiment = client.get_experiment_by_name(cfg.experiment_name)
            if experiment is None:
                raise
            experiment_id = experiment.experiment_id
    elif experiment.lifecycle_stage == "deleted":
        raise MlflowException(
            f"experiment {cfg.experiment_name!r} ({experiment.experiment_id}) is deleted in {uri}: restore it "
            f"(mlflow experiments restore --experiment-id {experiment.experiment_id}) or pick another name"
        )
    else:
        experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


@contextlib.contextmanager
def start_run(
    cfg: TrackingConfig = TrackingConfig(),
    run_name: str | None = None,
    tags: Mapping[str, Any] | None = None,
    *,
    nested: bool = False,
    root: str | Path | None = None,
) -> Iterator[mlflow.ActiveRun]:
    """Configure MLflow and run the body inside a run of ``cfg.experiment_name``.

    The run ends FINISHED, or FAILED when the body raises (MLflow's own behaviour).
    """
    experiment_id = configure_mlflow(cfg, root)
    clean_tags = {sanitize_key(k): str(v) for k, v in (tags or {}).items()}
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=clean_tags, nested=nested) as run:
        yield run


def active_run_id(run_id: str | None = None) -> str:
    """``run_id`` itself, or the active run's id; an error when there is neither."""
    if run_id is not None:
        return run_id
    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("no active MLflow run: wrap the call in serac.registry.tracking.start_run(...)")
    return run.info.run_id


# ------------------------------------------------------------------ keys and values
_BAD_KEY_CHARS = re.compile(r"[^/\w.\- ]")  # MLflow's set, minus ':' (refused on Windows)


def sanitize_key(name: Any) -> str:
    """A valid MLflow metric / param / tag key: other characters become ``_``, no empty,
    ``.`` or ``..`` path segments, no leading or trailing ``/``, at most 250 characters."""
    key = _BAD_KEY_CHARS.sub("_", str(name))
    parts = [p if p not in (".", "..") else "_" for p in key.split("/") if p]
    key = "/".join(parts)[:MAX_KEY_LENGTH].strip("/")
    return key or "_"


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)) or _is_numpy_number(value)


def _is_numpy_number(value: Any) -> bool:
    kind = getattr(getattr(value, "dtype", None), "kind", None)
    return kind in ("i", "u", "f") and getattr(value, "ndim", 1) == 0


# ------------------------------------------------------------------ training-loop hook
class MlflowHook:
    """A :class:`~serac.training.loop.TrainHook` that logs metrics to MLflow with their step.

    ``prefix`` keeps components apart in one run (``MlflowHook("scope/")`` logs
    ``train/loss`` as ``scope/train/loss``); keys are sanitised, non-numbers skipped.
    """

    def __init__(self, prefix: str = "", run_id: str | None = None) -> None:
        self.prefix = prefix
        self.run_id = run_id

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        now = int(time.time() * 1000)
        entries = [
            Metric(sanitize_key(f"{self.prefix}{key}"), float(value), now, int(step))
            for key, value in metrics.items()
            if _is_number(value)
        ]
        _log_batch(active_run_id(self.run_id), metrics=entries)


def _log_batch(run_id: str, *, metrics=(), params=(), tags=()) -> None:
    client = MlflowClient()
    metrics, params, tags = list(metrics), list(params), list(tags)
    for i in range(0, len(metrics), _BATCH_METRICS):
        client.log_batch(run_id, metrics=metrics[i : i + _BATCH_METRICS])
    for i in range(0, len(params), _BATCH_PARAMS):
        client.log_batch(run_id, params=params[i : i + _BATCH_PARAMS])
    for i in range(0, len(tags), _BATCH_PARAMS):
        client.log_batch(run_id, tags=tags[i : i + _BATCH_PARAMS])


# ------------------------------------------------------------------ params
def flatten_params(obj: Any, prefix: str = "") -> dict[str, str]:
    """Nested dataclasses / mappings as dotted keys (``training.scope.lr``) with string values.

    Sequences become JSON (``[1, 10, "all"]``); values are cut at MLflow's 6,000 characters.
    """
    out: dict[str, str] = {}

    def walk(node: Any, path: str) -> None:
        if is_dataclass(node) and not isinstance(node, type):
            children = {f.name: getattr(node, f.name) for f in fields(node)}
        elif isinstance(node, Mapping):
            children = dict(node)
        else:
            if isinstance(node, (list, tuple)):
                text = json.dumps(list(node), default=str, ensure_ascii=False)
            else:
                text = str(node)
            out[sanitize_key(path)] = text[:MAX_PARAM_VALUE_LENGTH]
            return
        if not children and path:
            out[sanitize_key(path)] = "{}"
        for key, value in children.items():
            walk(value, f"{path}.{key}" if path else str(key))

    walk(obj, prefix.rstrip("."))
    return out


def log_params_flat(obj: Any, prefix: str = "", run_id: str | None = None) -> dict[str, str]:
    """Log a config (dataclass or mapping, nested) as flat dotted params; returns what was logged."""
    params = flatten_params(obj, prefix)
    _log_batch(active_run_id(run_id), params=[Param(k, v) for k, v in params.items()])
    return params


# ------------------------------------------------------------------ evaluation results
_K_KEY = re.compile(r"^k?(\d+|all)$")


def _as_k(key: Any) -> int | str | None:
    if isinstance(key, int) and not isinstance(key, bool):
        return key if key >= 0 else None
    match = _K_KEY.match(str(key))
    if match is None:
        return None
    return "all" if match.group(1) == "all" else int(match.group(1))


def flatten_metrics_by_k(results: Mapping[str, Any]) -> tuple[dict[str, float], list[tuple[str, float, int]]]:
    """Numbers in a nested results dict, named by their path, with memory-size levels as ``k<k>``.

    A mapping whose keys are all memory sizes (``10``, ``"10"``, ``"k10"``, ``"all"``) is a
    k level: ``{"serac": {"10": {"es": 0.9}}}`` gives the named metric ``serac.k10.es`` and
    the stepped metric ``("serac.es", 0.9, 10)`` (curves over k; ``all`` has no step).
    Strings, booleans, lists and ``None`` are skipped.
    """
    named: dict[str, float] = {}
    stepped: list[tuple[str, float, int]] = []

    def walk(node: Any, path: list[str], k_at: int | None, k: int | str | None) -> None:
        if isinstance(node, Mapping):
            ks = {key: _as_k(key) for key in node}
            k_level = bool(node) and all(v is not None for v in ks.values())
            for key, value in node.items():
                if k_level:
                    walk(value, [*path, f"k{ks[key]}"], len(path), ks[key])
                else:
                    walk(value, [*path, str(key)], k_at, k)
        elif _is_number(node):
            value = float(node)
            named[sanitize_key(".".join(path))] = value
            if isinstance(k, int) and k_at is not None:
                stepped.append((sanitize_key(".".join(path[:k_at] + path[k_at + 1 :])), value, k))

    walk(results, [], None, None)
    return named, stepped


def log_metrics_by_k(results: Mapping[str, Any], prefix: str = "", run_id: str | None = None) -> dict[str, float]:
    """Log an evaluation results dict (see :func:`flatten_metrics_by_k`); returns the named metrics.

    Each number is logged twice: as ``<path with k<k>>`` (one value, easy to compare
    across runs) and, for integer k, as ``<path without k>`` at step k (a curve over k).
    """
    named, stepped = flatten_metrics_by_k(results)
    now = int(time.time() * 1000)
    entries = [Metric(sanitize_key(prefix + name), value, now, 0) for name, value in named.items()]
    entries += [Metric(sanitize_key(prefix + name), value, now, k) for name, value, k in stepped]
    _log_batch(active_run_id(run_id), metrics=entries)
    return {sanitize_key(prefix + name): value for name, value in named.items()}


def log_plot(path: str | Path, artifact_dir: str = "plots", run_id: str | None = None) -> str:
    """Log an image file (PNG from the evaluation) under ``plots/``; returns its artifact path."""
    return log_file(path, artifact_dir, run_id)


def log_file(path: str | Path, artifact_dir: str, run_id: str | None = None) -> str:
    """Log one file as an artifact of the run under ``artifact_dir``; returns its artifact path."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    MlflowClient().log_artifact(active_run_id(run_id), str(path), artifact_dir)
    return f"{artifact_dir}/{path.name}"


# ------------------------------------------------------------------ lineage
def set_version_tags(
    data_version: str | None = None,
    memory_version: str | int | None = None,
    git_commit: str | None = None,
    run_id: str | None = None,
) -> dict[str, str]:
    """Tag the run with what it was built from: ``data.dvc_md5``, ``memory.version``, ``git.commit``.

    ``None`` values are left out; returns the tags set.
    """
    tags = {
        key: str(value)
        for key, value in (("data.dvc_md5", data_version), ("memory.version", memory_version), ("git.commit", git_commit))
        if value is not None
    }
    _log_batch(active_run_id(run_id), tags=[RunTag(k, v) for k, v in tags.items()])
    return tags


def git_commit(root: str | Path | None = None) -> str | None:
    """The checked-out commit of the repository containing ``root`` (read from ``.git``, no subprocess)."""
    start = Path(root) if root is not None else Path.cwd()
    for folder in (start.resolve(), *start.resolve().parents):
        if (folder / ".git").exists():
            return _head_commit(folder / ".git")
    return None


def _head_commit(git: Path) -> str | None:
    if git.is_file():  # a worktree or submodule: "gitdir: <path>"
        text = git.read_text(encoding="utf-8").strip()
        if not text.startswith("gitdir:"):
            return None
        git = (git.parent / text[len("gitdir:") :].strip()).resolve()
    head = (git / "HEAD").read_text(encoding="utf-8").strip() if (git / "HEAD").is_file() else ""
    if not head.startswith("ref:"):
        return head or None  # detached HEAD holds the commit itself
    ref = head[len("ref:") :].strip()
    common = git / "commondir"
    dirs = [git] + ([(git / common.read_text(encoding="utf-8").strip()).resolve()] if common.is_file() else [])
    for folder in dirs:
        if (folder / ref).is_file():
            return (folder / ref).read_text(encoding="utf-8").strip() or None
        packed = folder / "packed-refs"
        if packed.is_file():
            for line in packed.read_text(encoding="utf-8").splitlines():
                commit, _, name = line.partition(" ")
                if name.strip() == ref and not line.startswith(("#", "^")):
                    return commit
    return None
