"""The promotion gate: a new editor version becomes ``champion`` only if it is no worse.

Rule (:func:`decide`, pure): promote when there is no champion yet, or when, on the
same frozen evaluation set, the challenger's edit success is at least the
champion's minus ``es_tolerance`` *and* its drawdown at most the champion's plus
``dd_tolerance``. Metrics from different evaluation sets are never compared: the
gate refuses and says so.

:func:`promote` applies it in the registry: every gated version gets the
``challenger`` alias and its ES / DD / eval_set as version tags (so it can be
compared against later, once champion); only a passing version moves
``champion``. The decision and its reason go on the version and on the run
(tags ``promotion.decision`` / ``promotion.reason`` and ``promotion/decision.json``).
A rejected version can still be made champion by hand
(``MlflowClient().set_registered_model_alias(name, "champion", version)``).

Two promotions of the same model at the same time are not serialised: run the
gate from one pipeline (the retraining flow).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from serac.config import RegistryConfig

__all__ = [
    "Decision", "RegistryConfig", "champion_metrics", "decide", "eval_set_fingerprint", "metrics_at_k", "promote",
    "version_by_alias",
]  # fmt: skip

METRIC_KEYS = ("es", "dd", "eval_set")
"""Model-version tags holding the gate's inputs."""
DECISION_ARTIFACT = "promotion/decision.json"
_EPS = 1e-9  # "exactly at the tolerance" passes despite float rounding (0.9 - 0.01 != 0.89)


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def decide(
    challenger: Mapping[str, Any],
    champion: Mapping[str, Any] | None,
    es_tol: float = 0.01,
    dd_tol: float = 0.01,
) -> Decision:
    """Whether ``challenger`` (``{"es", "dd", "eval_set"}``) may replace ``champion`` (None: there is none)."""
    es, dd, eval_set = _metric(challenger, "es"), _metric(challenger, "dd"), _eval_set(challenger)
    if es is None or dd is None or eval_set is None:
        return Decision(False, f"challenger metrics incomplete: need finite es, dd and an eval_set, got {_show(challenger)}")
    if champion is None:
        return Decision(True, f"no champion yet: promoted with ES {es:.4f}, DD {dd:.4f} on eval set {eval_set}")
    c_es, c_dd, c_set = _metric(champion, "es"), _metric(champion, "dd"), _eval_set(champion)
    if c_es is None or c_dd is None or c_set is None:
        return Decision(False, f"champion metrics unavailable ({_show(champion)}): cannot compare; "
                               "set the champion alias by hand to override")  # fmt: skip
    if c_set != eval_set:
        return Decision(False, f"evaluation sets differ (challenger {eval_set}, champion {c_set}): "
                               "evaluate both on the same frozen set")  # fmt: skip
    failures = []
    if es < c_es - es_tol - _EPS:
        failures.append(f"ES {es:.4f} < champion {c_es:.4f} - {es_tol:g}")
    if dd > c_dd + dd_tol + _EPS:
        failures.append(f"DD {dd:.4f} > champion {c_dd:.4f} + {dd_tol:g}")
    if failures:
        return Decision(False, "; ".join(failures))
    return Decision(True, f"ES {es:.4f} >= champion {c_es:.4f} - {es_tol:g} and "
                          f"DD {dd:.4f} <= champion {c_dd:.4f} + {dd_tol:g}")  # fmt: skip


def _metric(metrics: Mapping[str, Any], key: str) -> float | None:
    try:
        value = float(metrics.get(key))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _eval_set(metrics: Mapping[str, Any]) -> str | None:
    value = metrics.get("eval_set")
    return str(value) if value not in (None, "") else None


def _show(metrics: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={metrics.get(k)!r}" for k in METRIC_KEYS)


def metrics_at_k(results: Mapping[str, Any], k: int | str, system: str = "serac") -> dict[str, Any]:
    """The gate's inputs from an evaluation results dict ``{system: {k: {"es", "dd"}}, "eval_set": ...}``.

    ``k`` matches keys ``10``, ``"10"`` or ``"k10"``; missing values come back as None
    (and :func:`decide` then refuses).
    """
    by_k = results.get(system) or {}
    row: Mapping[str, Any] = {}
    for key in (k, str(k), f"k{k}"):
        if key in by_k:
            row = by_k[key]
            break
    return {"es": row.get("es"), "dd": row.get("dd"), "eval_set": row.get("eval_set", results.get("eval_set"))}


def eval_set_fingerprint(files: Sequence[str | Path], protocol: Mapping[str, Any] | None = None) -> str:
    """``sha256:<hex>`` of the evaluation files' bytes (in the given order) and the protocol settings
    (e.g. ``asdict(config.evaluation)``: ks, seed and bounds decide which groups are drawn).

    Two evaluations are comparable by the gate exactly when their fingerprints are equal.
    """
    digest = hashlib.sha256()
    for path in files:
        digest.update(Path(path).read_bytes())
        digest.update(b"\0")
    digest.update(json.dumps(dict(protocol or {}), sort_keys=True, default=str).encode("utf-8"))
    return f"sha256:{digest.hexdigest()}"


def champion_metrics(client: MlflowClient, version: ModelVersion, primary_k: int = 10) -> dict[str, Any]:
    """ES / DD / eval_set of a registered version: its tags, else its run (metrics ``es``/``dd``
    or ``serac.k<primary_k>.es``/``.dd``, tag ``eval_set``)."""
    tags = version.tags or {}
    found: dict[str, Any] = {key: tags.get(key) for key in METRIC_KEYS}
    if all(found[key] is not None for key in METRIC_KEYS) or not version.run_id:
        return found
    try:
        data = client.get_run(version.run_id).data
    except MlflowException:
        return found
    for key in ("es", "dd"):
        if found[key] is None:
            found[key] = data.metrics.get(key, data.metrics.get(f"serac.k{primary_k}.{key}"))
    if found["eval_set"] is None:
        found["eval_set"] = data.tags.get("eval_set")
    return found


def promote(
    client: MlflowClient,
    model_name: str,
    version: str | int,
    metrics: Mapping[str, Any],
    cfg: RegistryConfig = RegistryConfig(),
    run_id: str | None = None,
) -> Decision:
    """Gate ``version`` of ``model_name`` with its ``metrics`` (``es``, ``dd``, ``eval_set``).

    Sets the challenger alias and metric tags on the version, compares against the
    current champion, moves the champion alias only on success, and records the
    decision on the version and on ``run_id`` (default: the run the version came from).
    """
    version = str(version)
    challenger = {key: metrics.get(key) for key in METRIC_KEYS}
    for key, value in challenger.items():
        if value is not None:
            client.set_model_version_tag(model_name, version, key, str(value))
    client.set_registered_model_alias(model_name, cfg.challenger_alias, version)

    current = version_by_alias(client, model_name, cfg.champion_alias)
    champion = champion_metrics(client, current, cfg.primary_k) if current is not None else None
    decision = decide(challenger, champion, cfg.es_tolerance, cfg.dd_tolerance)
    if decision.promote:
        client.set_registered_model_alias(model_name, cfg.champion_alias, version)

    label = "promoted" if decision.promote else "rejected"
    before = str(current.version) if current is not None else "none"
    for key, value in (("promotion.decision", label), ("promotion.reason", decision.reason),
                       ("promotion.champion_before", before)):  # fmt: skip
        client.set_model_version_tag(model_name, version, key, value)

    run_id = run_id or client.get_model_version(model_name, version).run_id
    if run_id:
        client.set_tag(run_id, "promotion.decision", label)
        client.set_tag(run_id, "promotion.reason", decision.reason[:8000])
        record = {
            "model_name": model_name,
            "version": version,
            **asdict(decision),
            "decision": label,
            "challenger": challenger,
            "champion_before": {"version": before, "metrics": champion},
            "champion_after": version if decision.promote else before,
            "tolerances": {"es": cfg.es_tolerance, "dd": cfg.dd_tolerance},
            "aliases": {"champion": cfg.champion_alias, "challenger": cfg.challenger_alias},
            "timestamp_ms": int(time.time() * 1000),
        }
        client.log_dict(run_id, record, DECISION_ARTIFACT)
    return decision


def version_by_alias(client: MlflowClient, model_name: str, alias: str) -> ModelVersion | None:
    """The version ``alias`` points at; None when the model or the alias does not exist."""
    try:
        return client.get_model_version_by_alias(model_name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise
