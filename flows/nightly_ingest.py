"""Nightly ingestion flow: inbox batches -> validated -> edit memory -> DVC version -> served by the champion
-> report (-> retrain).

Thin on purpose: one task per function of :mod:`serac.pipeline.ingest`, where the logic
and its tests live. Retries only on the I/O tasks (listing/staging the inbox, ledger
writes, ``dvc add``, the artifact); validation, the expensive step, is cached on the
batch's sha256, the validation settings and the validation code.

Per batch, the memory write, the ledger entry and their verification run in one Prefect
``transaction()``. What a rollback means:

* the **ledger** entry goes back to what it was (:func:`restore_ledger_entry`), so the
  batch counts as not ingested and is picked up again next night;
* the **memory** is not rewound. Its own atomic swap of ``CURRENT`` is the commit point:
  if the failure came before the swap, the previous version simply stays the current
  one; if it came after, the new version stays (it is complete and consistent). Edits are
  idempotent by content-hash ``edit_id``, so the next night's re-run skips the edits that
  made it in (the cached validation does not flag them as "already in memory") and then
  writes the ledger entry.

Run it once locally (a temporary Prefect API starts by itself, no server needed)::

    python -m flows.nightly_ingest --params params.yaml

Deploy it for a real server with ``prefect deploy --all`` (``prefect.yaml``), see flows/README.md.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.transactions import Transaction, get_transaction, transaction
from prefect.utilities.annotations import quote

from flows.retrain import retrain
from serac.config import (
    BaseModelConfig,
    GuardConfig,
    IngestConfig,
    MemoryConfig,
    RegistryConfig,
    TrackingConfig,
    ValidationConfig,
    load_config,
)
from serac.data.schema import EditRecord
from serac.pipeline import ingest
from serac.pipeline.ingest import Batch, BatchRow, IngestReport

NIGHTLY_CRON = "0 2 * * *"
ARTIFACT_KEY = "nightly-ingest"
IO_RETRIES = 2
IO_RETRY_DELAY_S = 30
LEDGER_PREVIOUS = "ledger_previous"
"""Transaction value: (ledger path, sha256, the entry before this run) for the rollback hook."""
MEMORY_VERSION = "memory_version"
"""Transaction value: the memory version the add committed (or kept), for the rollback log line."""

_VALIDATION_MODULES = ("serac.data.validation", "serac.data.quarantine", "serac.data.loaders", "serac.data.readers")


def _code_fingerprint(modules: tuple[str, ...]) -> str:
    """sha256 over the source files of ``modules`` (found, not imported): a code change invalidates the cache."""
    digest = hashlib.sha256()
    for name in modules:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            digest.update(Path(spec.origin).read_bytes())
    return digest.hexdigest()


def validation_cache_key(context: Any, parameters: dict[str, Any]) -> str:
    """Cache key of :func:`validate`: batch content + output directory + validation settings + code.

    The memory's current ids are left out on purpose: they only decide the advisory
    ``in_memory`` check (adding is idempotent anyway), and keying on them would make the
    re-run after a failure that came after the memory commit quarantine the batch's own edits.
    """
    batch: Batch = parameters["batch"]
    payload = {
        "sha256": batch.sha256,
        "out_dir": str(batch.out_dir(parameters["cfg"]).resolve()),
        "validation": asdict(parameters["validation"]),
        "code": _code_fingerprint(_VALIDATION_MODULES),
    }
    return "serac-validate-" + hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


# ---------------------------------------------------------------- tasks: one per serac function


@task(name="discover-batches", retries=IO_RETRIES, retry_delay_seconds=IO_RETRY_DELAY_S, timeout_seconds=1800,
      cache_policy=NO_CACHE)
def discover(cfg: IngestConfig) -> list[Batch]:
    return ingest.discover_batches(cfg)


@task(name="validate-batch", task_run_name="validate-{batch.name}", cache_key_fn=validation_cache_key,
      timeout_seconds=3600)
def validate(batch: Batch, cfg: IngestConfig, validation: ValidationConfig, existing_ids: frozenset[str]):
    return ingest.validate_batch(batch, cfg, existing_ids, validation=validation)


@task(name="load-editor", cache_policy=NO_CACHE)
def load_editor(
    editor_dir: str, memory: MemoryConfig, validation: ValidationConfig, guard: GuardConfig, base: BaseModelConfig
):
    return ingest.load_editor(editor_dir, memory, base, validation=validation, guard=guard)


@task(name="blast-radius-guard", cache_policy=NO_CACHE)
def guard_batch(editor: Any, batch: Batch, checked: Any, cfg: IngestConfig):
    return ingest.screen_batch(editor, batch, checked, cfg)


@task(name="add-to-memory", cache_policy=NO_CACHE)
def add_edits(editor: Any, records: list[EditRecord], audit: Any = None):
    result = ingest.add_to_memory(editor, records, audit)
    txn = get_transaction()
    if txn is not None:
        txn.set(MEMORY_VERSION, result.version)
    return result


@add_edits.on_rollback
def memory_stays_committed(txn: Transaction) -> None:
    """The memory's CURRENT swap is its commit point: nothing to undo here (see the module docstring)."""
    (txn.logger or logging.getLogger(__name__)).warning(
        "transaction rolled back after the memory write: memory version v%s stays current; its edits are "
        "idempotent, and the batch is ingested again next run", txn.get(MEMORY_VERSION, "?")
    )


@task(name="record-in-ledger", retries=IO_RETRIES, retry_delay_seconds=1, cache_policy=NO_CACHE)
def record_in_ledger(ledger_path: str, sha256: str, entry: dict[str, Any]) -> None:
    previous = ingest.record_batch(ledger_path, sha256, entry)
    txn = get_transaction()
    if txn is not None:
        txn.set(LEDGER_PREVIOUS, (ledger_path, sha256, previous))


@record_in_ledger.on_rollback
def restore_ledger_entry(txn: Transaction) -> None:
    """Put the batch's ledger entry back as it was before this transaction (usually: no entry)."""
    recorded = txn.get(LEDGER_PREVIOUS, None)
    if recorded is not None:  # None: the ledger write itself never happened
        ingest.restore_entry(*recorded)


@task(name="verify-ingest", cache_policy=NO_CACHE)
def verify_ingest(memory: MemoryConfig, ledger_path: str, batch: Batch, records: list[EditRecord], result: Any) -> None:
    ingest.verify_batch(memory, ledger_path, batch, records, result)


@task(name="scope-recall", cache_policy=NO_CACHE)
def measure_recall(editor: Any, records: list[EditRecord]) -> float | None:
    return ingest.scope_recall(editor, records)


@task(name="dvc-track-memory", retries=IO_RETRIES, retry_delay_seconds=IO_RETRY_DELAY_S, timeout_seconds=1800,
      cache_policy=NO_CACHE)
def dvc_track(memory_root: str) -> str | None:
    return ingest.track_memory(memory_root)


@task(name="serve-memory", retries=IO_RETRIES, retry_delay_seconds=IO_RETRY_DELAY_S, timeout_seconds=1800,
      cache_policy=NO_CACHE)
def serve_memory(registry: RegistryConfig, tracking: TrackingConfig, memory_root: str, memory_md5: str | None) -> str:
    """The champion's components with this memory become the champion; which version serves it now."""
    from serac.registry.refresh import refresh_champion_memory

    version = refresh_champion_memory(registry, tracking, memory_root, memory_md5)
    if version is None:
        return f"no {registry.model_name}@{registry.champion_alias} registered yet: the memory is not served"
    return f"{registry.model_name} v{version.version} (@{registry.champion_alias})"


@task(name="mark-trained", retries=IO_RETRIES, retry_delay_seconds=1, cache_policy=NO_CACHE)
def mark_trained(ledger_path: str, memory_version: int) -> None:
    ingest.mark_trained(ledger_path, memory_version)


@task(name="publish-report", retries=IO_RETRIES, retry_delay_seconds=5, cache_policy=NO_CACHE)
def publish_report(report: IngestReport) -> None:
    t = report.totals
    create_markdown_artifact(
        markdown=report.to_markdown(),
        key=ARTIFACT_KEY,
        description=f"{t['ingested']} batch(es) ingested, {t['added']} edit(s) added, memory v{report.memory_version}",
    )


# ---------------------------------------------------------------- the flow


@flow(name="nightly-ingest")
def nightly_ingest(
    params_path: str = "params.yaml", editor_dir: str | None = None, trigger_retrain: bool = True,
    max_attempts: int = 3, reason: str | None = None,
) -> IngestReport:
    """Ingest new inbox batches into the edit memory; report; retrain when warranted.

    ``editor_dir`` defaults to ``editor.artifact_dir``; the memory is ``memory.root``. A run
    rescheduled after its worker died starts again (the ledger skips finished batches); after
    ``max_attempts`` starts it fails instead. Memory changes are audited as made by this
    flow run, with ``reason``.
    """
    from prefect.runtime import flow_run

    from serac.pipeline.attempts import check_attempts

    check_attempts(flow_run.run_count, max_attempts)
    logger = get_run_logger()
    cfg = load_config(params_path)
    icfg = cfg.ingest
    found = discover(icfg)
    pending, done = ingest.split_pending(found, ingest.read_ledger(icfg.ledger))
    before, existing = ingest.memory_state(cfg.memory)
    report = IngestReport(str(cfg.memory.root), before, before, already_ingested=[b.name for b in done])
    report.batches += [BatchRow.refused_entry(b) for b in found if b.refused]  # links out, FIFOs, ...: unopened
    new_records: list[EditRecord] = []
    editor = None
    if pending:
        states = [validate(b, icfg, cfg.validation, quote(existing), return_state=True) for b in pending]
        for batch, state in zip(pending, states):
            if state.is_failed():
                row = BatchRow.unreadable(batch, state.result(raise_on_failure=False))
                report.batches.append(row)
                logger.error("%s: %s", batch.name, row.message)
                continue
            checked = state.result()
            if checked.batch_ok:
                if editor is None:  # loaded only when a batch is to be added
                    editor = load_editor(
                        editor_dir or cfg.editor.artifact_dir, cfg.memory, cfg.validation, cfg.guard, cfg.base
                    )
                checked = guard_batch(editor, batch, checked, icfg)
            row = BatchRow.validated(batch, checked, icfg)
            report.batches.append(row)
            if not checked.batch_ok:
                logger.warning("%s refused: %s", batch.name, row.message)
                continue
            audit = ingest.audit_context(flow_run.id, batch, reason)
            new_records += _add_batch(editor, batch, checked, row, cfg.memory, icfg.ledger, audit)
        if editor is not None:
            report.memory_version = editor.memory.version
        if new_records:
            report.recall = measure_recall(editor, quote(new_records))

    if icfg.dvc_track_memory:
        changed = report.memory_version != before
        report.memory_md5 = dvc_track(cfg.memory.root) if changed else ingest.tracked_memory_md5(cfg.memory.root)
    report.add_audit(*ingest.run_audit(cfg.memory.root, flow_run.id))
    served = None
    if icfg.register_memory:  # every run: registers nothing while the champion already serves this memory
        served = serve_memory(cfg.registry, cfg.tracking, str(cfg.memory.root), report.memory_md5, return_state=True)
        report.served_by = served.result() if served.is_completed() else f"failed: {served.message}"
    report.new_edits_since_training = ingest.new_edits_since_training(ingest.read_ledger(icfg.ledger))
    report.retrain, report.retrain_reason = ingest.should_retrain(icfg, report.new_edits_since_training, report.recall)
    report.retrain_action = _retrain(report, params_path, icfg.ledger, trigger_retrain) if report.retrain else ""
    logger.info("retrain: %s (%s) %s", report.retrain, report.retrain_reason, report.retrain_action)
    publish_report(report)
    if report.failed:
        raise RuntimeError(f"{len(report.failed)} batch(es) failed: "
                           + "; ".join(f"{row.file}: {row.message}" for row in report.failed))
    if served is not None and not served.is_completed():
        raise RuntimeError(f"the memory is ingested, but registering it for serving failed: {served.message}")
    return report


def _add_batch(
    editor: Any, batch: Batch, checked: Any, row: BatchRow, memory: MemoryConfig, ledger_path: str, audit: Any = None
) -> list[EditRecord]:
    """Memory write + ledger entry + their verification, as one transaction; fills ``row``; the added records.

    A failure rolls the transaction back (see the module docstring), marks ``row`` failed
    and returns no records: the flow goes on with the next batch and fails at the end.
    """
    try:
        with transaction():
            result = add_edits(editor, quote(checked.passed), audit)
            record_in_ledger(ledger_path, batch.sha256, ingest.ledger_entry(batch, checked, result))
            verify_ingest(memory, ledger_path, batch, quote(checked.passed), result)
    except Exception as exc:
        row.status, row.message = ingest.FAILED, f"rolled back: {type(exc).__name__}: {exc}"
        get_run_logger().error("%s: %s", batch.name, row.message)
        return []
    row.added, row.already_in_memory, row.memory_version = len(result.added), len(result.skipped), result.version
    added = set(result.added)
    return [r for r in checked.passed if r.edit_id in added]


def _retrain(report: IngestReport, params_path: str, ledger_path: str, trigger: bool) -> str:
    """Run the retraining flow as a subflow when ``trigger`` is set; what was done, for the report."""
    if not trigger:
        return "not triggered: trigger_retrain=False"
    state = retrain(params_path=params_path, reason=report.retrain_reason, return_state=True)
    if state.is_failed():
        get_run_logger().error("retrain flow failed: %s", state.message)
        return f"retrain flow failed: {state.message}"
    mark_trained(ledger_path, report.memory_version)
    return "retrain flow ran"


def deployments() -> list[Any]:
    """The nightly deployment (02:00 every day), built without a server; serve it with ``prefect.serve(*deployments())``."""
    return [
        nightly_ingest.to_deployment(
            name="nightly",
            cron=NIGHTLY_CRON,
            parameters={"params_path": "params.yaml", "editor_dir": None, "trigger_retrain": True},
            concurrency_limit=1,
            description="Validate new inbox batches and add them to the SERAC edit memory.",
            tags=["serac", "ingest"],
        )
    ]


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Run the nightly ingestion once, locally.")
    parser.add_argument("--params", default="params.yaml", help="project parameters (params.yaml)")
    parser.add_argument("--editor", default=None, help="packaged editor (default: editor.artifact_dir)")
    parser.add_argument("--no-retrain", action="store_true", help="decide, but never start the retraining flow")
    args = parser.parse_args()
    result = nightly_ingest(params_path=args.params, editor_dir=args.editor, trigger_retrain=not args.no_retrain)
    print(result.to_markdown())
