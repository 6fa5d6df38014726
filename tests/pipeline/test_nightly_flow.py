"""flows/nightly_ingest.py under prefect_test_harness: artifact, memory contents, idempotency, retries, rollback."""

from __future__ import annotations

import asyncio
import inspect

import pytest
import yaml
from ingest_fakes import REPO, SAMPLE_BAD_ROWS, init_dvc_repo, make_inbox, write_params

from serac.config import MemoryConfig, load_config
from serac.data.quarantine import read_quarantine
from serac.memory import EditMemory
from serac.pipeline import ingest

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def nightly():
    import flows.nightly_ingest as module

    return module


@pytest.fixture(autouse=True)
def no_real_retrain(nightly, monkeypatch):
    """No test may reach the real flows/retrain.py (it trains in artifacts/work and logs to mlflow/):
    the flow's ``retrain`` is replaced by a guard."""

    def guard(**kwargs):
        raise AssertionError("a test reached the real retrain flow: monkeypatch nightly.retrain")

    original = nightly.retrain
    monkeypatch.setattr(nightly, "retrain", guard)
    return original


def read_artifact(key: str) -> str:
    from prefect.artifacts import Artifact

    artifact = asyncio.run(Artifact.aget(key))
    assert artifact is not None, f"no artifact {key!r}"
    return artifact.data


def test_flow_ingests_the_inbox_publishes_a_report_and_is_idempotent(tmp_path, editor_dir, nightly, monkeypatch):
    from prefect import flow

    retrain_calls = []

    @flow(name="fake-retrain")
    def fake_retrain(params_path: str, reason: str) -> None:
        retrain_calls.append((params_path, reason))

    monkeypatch.setattr(nightly, "retrain", fake_retrain)
    tracked = init_dvc_repo(tmp_path)  # the memory is versioned with DVC when it lives in a DVC repository
    params = write_params(tmp_path, make_inbox(tmp_path, extra=True, bad=True), retrain_min_new_edits=10,
                          dvc_track_memory=True)
    cfg = load_config(params)

    report = nightly.nightly_ingest(params_path=str(params), editor_dir=str(editor_dir))

    sample, extra, half_bad, broken = report.batches
    assert sample.status == extra.status == "ingested" and half_bad.status == broken.status == "refused"
    assert (half_bad.rows_in, half_bad.quarantined, half_bad.added) == (2, 1, 0) and "DataFileError" in broken.message
    assert sample.rows_in == sample.passed + sample.quarantined == 41 and sample.quarantined == len(SAMPLE_BAD_ROWS)
    assert (sample.added, extra.added) == (37, 2) and (sample.memory_version, extra.memory_version) == (1, 2)
    memory = EditMemory.open(cfg.memory.root, MemoryConfig(root=cfg.memory.root))
    passed = ingest.read_ledger(cfg.ingest.ledger)["batches"]
    assert len(memory) == 39 and memory.version == 2 and len(passed) == 2
    assert {q.row for q in read_quarantine(f"{sample.out_dir}/quarantine.parquet")} == SAMPLE_BAD_ROWS
    assert report.recall is not None and report.recall >= 0.8
    if tracked:
        assert report.memory_md5.endswith(".dir") and (tmp_path / "memory.dvc").is_file()
    assert report.retrain and "39 edits added" in report.retrain_reason and report.retrain_action == "retrain flow ran"
    assert retrain_calls == [(str(params), report.retrain_reason)]

    md = read_artifact("nightly-ingest")
    assert "| `batch-0001.jsonl`" in md and "| 41 | 37 | 4 | 37 | 0 | v1 |" in md
    assert "expect_column_values_to_be_in_set(has_control_chars)" in md and "v0 -> v2" in md and "retrain: **yes**" in md
    assert "| `batch-0003.jsonl` `" in md and "50% of rows quarantined (limit 20%); nothing added" in md

    # the same inbox again: nothing added, no new memory version, the ledger unchanged, no retraining
    ledger_before = ingest.read_ledger(cfg.ingest.ledger)
    again = nightly.nightly_ingest(params_path=str(params), editor_dir=str(editor_dir))
    assert again.already_ingested == ["batch-0001.jsonl", "batch-0002.jsonl"]
    assert [row.status for row in again.batches] == ["refused", "refused"]  # seen again every night, never added
    assert again.memory_version == 2 and EditMemory.open(cfg.memory.root).versions() == [1, 2]
    assert ingest.read_ledger(cfg.ingest.ledger) == ledger_before
    assert not again.retrain and len(retrain_calls) == 1
    assert again.memory_md5 == report.memory_md5  # read from memory.dvc: nothing changed, no dvc add


def test_discover_is_retried_after_an_io_error(tmp_path, nightly, monkeypatch):
    calls = []
    real = ingest.discover_batches

    def flaky(cfg):
        calls.append(cfg.inbox)
        if len(calls) == 1:
            raise OSError("inbox briefly unreachable")
        return real(cfg)

    monkeypatch.setattr(ingest, "discover_batches", flaky)
    monkeypatch.setattr(nightly, "discover", nightly.discover.with_options(retry_delay_seconds=0))
    params = write_params(tmp_path, make_inbox(tmp_path, sample=False))

    state = nightly.nightly_ingest(params_path=str(params), trigger_retrain=False, return_state=True)

    assert state.is_completed() and len(calls) == 2
    report = state.result()
    assert report.batches == [] and report.memory_version == 0 and not report.retrain


def test_a_failed_verification_rolls_the_ledger_entry_back(tmp_path, editor_dir, nightly, monkeypatch):
    params = write_params(tmp_path, make_inbox(tmp_path, sample=False, extra=True))
    cfg = load_config(params)

    def broken(*args, **kwargs):
        raise ingest.IngestVerificationError("simulated: the ledger does not show the batch")

    real_verify = ingest.verify_batch
    monkeypatch.setattr(ingest, "verify_batch", broken)
    state = nightly.nightly_ingest(params_path=str(params), editor_dir=str(editor_dir), trigger_retrain=False,
                                   return_state=True)
    assert state.is_failed() and "rolled back" in state.message
    assert ingest.read_ledger(cfg.ingest.ledger)["batches"] == {}  # the entry written in the transaction is gone
    assert EditMemory.open(cfg.memory.root).version == 1  # the memory's own commit stands (documented)
    assert "failed" in read_artifact("nightly-ingest")

    # next night: the batch is picked up again; its edits are already there, so no new memory version
    monkeypatch.setattr(ingest, "verify_batch", real_verify)
    report = nightly.nightly_ingest(params_path=str(params), editor_dir=str(editor_dir), trigger_retrain=False)
    (row,) = report.batches
    assert row.status == "ingested" and row.added == 0 and row.already_in_memory == 2 and row.memory_version == 1
    assert EditMemory.open(cfg.memory.root).versions() == [1]
    assert ingest.read_ledger(cfg.ingest.ledger)["batches"][row.sha256]["skipped"] == 2


def test_deployment_and_prefect_yaml_schedule_the_flow_nightly(nightly):
    (deployment,) = nightly.deployments()
    assert deployment.name == "nightly" and deployment.parameters["params_path"] == "params.yaml"
    assert [s.schedule.cron for s in deployment.schedules] == [nightly.NIGHTLY_CRON]

    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    (entry,) = [d for d in spec["deployments"] if d["name"] == "nightly"]
    assert entry["entrypoint"] == "flows/nightly_ingest.py:nightly_ingest"
    assert entry["schedules"] == [{"cron": nightly.NIGHTLY_CRON, "timezone": "UTC"}]
    assert entry["work_pool"]["name"] == "serac-pool" and entry["parameters"] == deployment.parameters


def test_the_nightly_flow_runs_the_retrain_flow_module_it_imports(no_real_retrain):
    """No dynamic import with signature filtering: flows/retrain.py's flow, called with the arguments it declares
    (the reason used to be dropped because the retrain flow did not take one)."""
    import flows.nightly_ingest as module
    import flows.retrain

    assert no_real_retrain is flows.retrain.retrain and not hasattr(module, "retrain_flow")
    declared = inspect.signature(flows.retrain.retrain.fn).parameters
    assert {"params_path", "reason"} <= set(declared)


def test_the_flow_says_which_model_version_serves_the_memory(tmp_path, editor_dir, nightly, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    params = write_params(tmp_path, make_inbox(tmp_path, sample=False, extra=True), register_memory=True)
    spec = yaml.safe_load(params.read_text())
    spec["tracking"] = {"tracking_uri": f"sqlite:///{tmp_path}/mlflow.db", "artifact_root": str(tmp_path / "mlruns")}
    params.write_text(yaml.safe_dump(spec))
    calls = []

    def refresh(registry, tracking, memory_root, memory_md5):
        calls.append((registry.model_name, tracking.tracking_uri, memory_root, memory_md5))
        return None  # no champion yet (the registry side: tests/registry/test_serving.py)

    import serac.registry.refresh

    monkeypatch.setattr(serac.registry.refresh, "refresh_champion_memory", refresh)
    report = nightly.nightly_ingest(params_path=str(params), editor_dir=str(editor_dir), trigger_retrain=False)
    assert calls == [("serac-editor", f"sqlite:///{tmp_path}/mlflow.db", str(tmp_path / "memory"), None)]
    assert report.served_by == "no serac-editor@champion registered yet: the memory is not served"
    assert "served by: no serac-editor@champion" in read_artifact("nightly-ingest")
