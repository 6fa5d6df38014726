"""The promotion gate: the pure decision rule, then promote() end to end on a throwaway registry
(versions registered cheaply by source URI: the gate never loads a model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts

from serac.config import ConfigError, RegistryConfig
from serac.registry.promotion import (
    DECISION_ARTIFACT,
    champion_metrics,
    decide,
    eval_set_fingerprint,
    metrics_at_k,
    promote,
)
from serac.registry.tracking import start_run

CHAMPION = {"es": 0.90, "dd": 0.05, "eval_set": "sha256:frozen"}


def challenger(**changes) -> dict:
    return {**CHAMPION, **changes}


@pytest.mark.parametrize(
    ("candidate", "promoted", "reason"),
    [
        (challenger(es=0.95, dd=0.02), True, "ES 0.9500 >= champion 0.9000"),
        (challenger(), True, "DD 0.0500 <= champion 0.0500"),  # equal
        (challenger(es=0.895, dd=0.059), True, ""),  # within both tolerances
        (challenger(es=0.89, dd=0.06), True, ""),  # exactly at both tolerances
        (challenger(es=0.88), False, "ES 0.8800 < champion 0.9000 - 0.01"),
        (challenger(dd=0.07), False, "DD 0.0700 > champion 0.0500 + 0.01"),
        (challenger(es=0.5, dd=0.5), False, "ES 0.5000 < champion 0.9000 - 0.01; DD 0.5000 > champion"),
        (challenger(es=0.99, eval_set="sha256:other"), False, "evaluation sets differ"),
        (challenger(es=None), False, "challenger metrics incomplete"),
        (challenger(dd=float("nan")), False, "challenger metrics incomplete"),
        (challenger(eval_set=""), False, "challenger metrics incomplete"),
    ],
)
def test_decide_against_a_champion(candidate, promoted, reason):
    decision = decide(candidate, CHAMPION, es_tol=0.01, dd_tol=0.01)
    assert decision.promote is promoted
    assert reason in decision.reason


def test_decide_first_ever_and_unknown_champion():
    first = decide(challenger(es=0.1, dd=0.9), None)
    assert first.promote and "no champion yet" in first.reason
    assert not decide(challenger(), None).reason.startswith("challenger")
    unknown = decide(challenger(es=1.0, dd=0.0), {"es": "0.9", "dd": None, "eval_set": None})
    assert not unknown.promote and "champion metrics unavailable" in unknown.reason
    # tag values come back as strings
    assert decide(challenger(es="0.95"), {"es": "0.9", "dd": "0.05", "eval_set": "sha256:frozen"}).promote


def test_metrics_at_k_and_registry_config_checks():
    results = {"eval_set": "sha256:frozen", "serac": {"k10": {"es": 0.9, "dd": 0.05}, "100": {"es": 0.8}}}
    assert metrics_at_k(results, 10) == {"es": 0.9, "dd": 0.05, "eval_set": "sha256:frozen"}
    assert metrics_at_k(results, 100) == {"es": 0.8, "dd": None, "eval_set": "sha256:frozen"}
    assert metrics_at_k(results, 5) == {"es": None, "dd": None, "eval_set": "sha256:frozen"}
    for bad in ({"champion_alias": "latest"}, {"challenger_alias": "v3"}, {"challenger_alias": "champion"},
                {"es_tolerance": -0.1}, {"primary_k": 0}):  # fmt: skip
        with pytest.raises(ConfigError):
            RegistryConfig(**bad)


def test_eval_set_fingerprint_changes_with_the_data_and_the_protocol(tmp_path):
    test = tmp_path / "test.parquet"
    test.write_bytes(b"rows")
    same = eval_set_fingerprint([test], {"ks": [1, 10], "seed": 0})
    assert same.startswith("sha256:") and same == eval_set_fingerprint([test], {"seed": 0, "ks": [1, 10]})
    assert same != eval_set_fingerprint([test], {"ks": [1, 10], "seed": 1})
    test.write_bytes(b"other rows")
    assert same != eval_set_fingerprint([test], {"ks": [1, 10], "seed": 0})


def register(client: MlflowClient, store, name: str, run_metrics: dict | None = None) -> tuple[str, str]:
    """A new version of ``name`` from a fresh run; returns (version, run_id)."""
    with start_run(store, run_name=f"{name}-train") as run:
        for key, value in (run_metrics or {}).items():
            client.log_metric(run.info.run_id, key, value)
    run_id = run.info.run_id
    try:
        client.create_registered_model(name)
    except Exception:
        pass  # already registered
    version = client.create_model_version(name, source=f"runs:/{run_id}/editor", run_id=run_id)
    return str(version.version), run_id


def aliases(client: MlflowClient, name: str) -> dict[str, str]:
    return {alias: str(v) for alias, v in client.get_registered_model(name).aliases.items()}


def test_promote_moves_the_champion_only_for_a_no_worse_version(store):
    client, name, cfg = MlflowClient(), "gate-e2e", RegistryConfig(model_name="gate-e2e")

    v1, run1 = register(client, store, name)
    first = promote(client, name, v1, challenger(es=0.80, dd=0.05), cfg)
    assert first.promote and "no champion yet" in first.reason
    assert aliases(client, name) == {"champion": v1, "challenger": v1}

    v2, run2 = register(client, store, name)
    worse = promote(client, name, v2, challenger(es=0.70, dd=0.05), cfg, run_id=run2)
    assert not worse.promote and "ES 0.7000 < champion 0.8000" in worse.reason
    assert aliases(client, name) == {"champion": v1, "challenger": v2}

    v3, run3 = register(client, store, name)
    better = promote(client, name, v3, challenger(es=0.85, dd=0.04), cfg)
    assert better.promote
    assert aliases(client, name) == {"champion": v3, "challenger": v3}

    v4, _ = register(client, store, name)
    other_set = promote(client, name, v4, challenger(es=0.99, dd=0.0, eval_set="sha256:new"), cfg)
    assert not other_set.promote and "evaluation sets differ" in other_set.reason
    assert aliases(client, name)["champion"] == v3

    # what was recorded: on the version ...
    tags2 = client.get_model_version(name, v2).tags
    assert tags2["promotion.decision"] == "rejected" and tags2["promotion.reason"] == worse.reason
    assert tags2["promotion.champion_before"] == v1
    assert (tags2["es"], tags2["dd"], tags2["eval_set"]) == ("0.7", "0.05", "sha256:frozen")
    assert client.get_model_version(name, v1).tags["promotion.champion_before"] == "none"
    # ... and on the runs (the version's own run by default), with a JSON record
    run_tags = client.get_run(run3).data.tags
    assert run_tags["promotion.decision"] == "promoted" and run_tags["promotion.reason"] == better.reason
    record = json.loads(Path(download_artifacts(run_id=run2, artifact_path=DECISION_ARTIFACT)).read_text())
    assert record["decision"] == "rejected" and record["version"] == v2 and record["champion_after"] == v1
    assert record["champion_before"]["metrics"]["es"] == "0.8"
    assert client.get_run(run1).data.tags["promotion.decision"] == "promoted"


def test_champion_metrics_fall_back_to_its_run(store):
    client, name = MlflowClient(), "gate-fallback"
    version, run_id = register(client, store, name, {"serac.k10.es": 0.9, "serac.k10.dd": 0.05})
    client.set_tag(run_id, "eval_set", "sha256:frozen")
    client.set_registered_model_alias(name, "champion", version)  # made champion by hand, no gate tags
    found = champion_metrics(client, client.get_model_version_by_alias(name, "champion"), primary_k=10)
    assert found == {"es": 0.9, "dd": 0.05, "eval_set": "sha256:frozen"}

    v2, _ = register(client, store, name)
    decision = promote(client, name, v2, challenger(es=0.89, dd=0.06), RegistryConfig(model_name=name))
    assert decision.promote and aliases(client, name)["champion"] == v2
