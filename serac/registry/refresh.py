"""The champion serves the current edit memory: register its components again with a new memory snapshot.

An edit changes the memory, not the trained components, so after the nightly ingest adds
edits, :func:`refresh_champion_memory` logs the champion's own editor (downloaded from
the registry, so a packaged-but-rejected editor is never served) with a snapshot of the
memory, registers it as a new version and moves the ``champion`` alias to it. The gate's
inputs (ES, DD, eval set: measured with the protocol's own memories, not the served one)
and the data lineage are carried over from the champion, so the next retrain is gated
against the same numbers. The new version says which memory it serves: ``memory.version``,
``memory.edits`` and ``memory.dvc_md5`` (when DVC tracks the memory).

Idempotent: a version holding exactly the same bytes (tag ``serac.artifact_sha256``) is
reused instead of registering another one, so a retried task or a re-run adds nothing.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

from serac.config import RegistryConfig, TrackingConfig
from serac.registry.promotion import version_by_alias
from serac.registry.pyfunc import (
    ARTIFACT_SHA256_TAG,
    EDITOR_ARTIFACT,
    editor_with_memory,
    log_editor_model,
    tree_sha256,
)
from serac.registry.tracking import start_run

__all__ = ["CARRIED_TAGS", "REFRESH_OF_TAG", "refresh_champion_memory"]

CARRIED_TAGS = ("es", "dd", "eval_set", "dataset", "data.dvc_md5", "git.commit")
"""Champion version tags the refreshed version keeps: the gate's inputs and what the components were built from."""
REFRESH_OF_TAG = "serac.memory_refresh_of"
"""Tag of a refreshed version: the version whose components it serves."""


def refresh_champion_memory(
    registry: RegistryConfig,
    tracking: TrackingConfig,
    memory_root: str | Path,
    tags: Mapping[str, Any] | None = None,
) -> ModelVersion | None:
    """Register the champion's components with a snapshot of ``memory_root`` and make that version champion.

    Returns the version now champion, or None when there is no champion to refresh. ``tags``
    (e.g. ``{"memory.dvc_md5": ...}``) go on the new version and on its MLflow run.
    """
    with start_run(tracking, run_name="memory-refresh", tags={"stage": "memory-refresh", **(tags or {})}) as run:
        client = MlflowClient()
        champion = version_by_alias(client, registry.model_name, registry.champion_alias)
        if champion is None:
            mlflow.set_tag("memory_refresh", "skipped: no champion")
            return None
        with tempfile.TemporaryDirectory(prefix="serac-refresh-") as tmp:
            source = mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{registry.model_name}/{champion.version}", dst_path=str(Path(tmp) / "champion")
            )
            staged = editor_with_memory(Path(source) / "artifacts" / EDITOR_ARTIFACT, memory_root,
                                        Path(tmp) / EDITOR_ARTIFACT)  # fmt: skip
            version = _same_bytes(client, registry.model_name, tree_sha256(staged))
            if version is None:
                carried = {k: v for k, v in (champion.tags or {}).items() if k in CARRIED_TAGS}
                version = log_editor_model(staged, registry.model_name, input_example=None,
                                           tags={**carried, **(tags or {}), REFRESH_OF_TAG: champion.version})
        if str(version.version) != str(champion.version):
            client.set_registered_model_alias(registry.model_name, registry.champion_alias, str(version.version))
            reason = (f"memory refresh: the components of v{champion.version} with memory "
                      f"v{version.tags.get('memory.version')} ({version.tags.get('memory.edits')} edits)")
            for key, value in (("promotion.decision", "memory refresh"), ("promotion.reason", reason),
                               ("promotion.champion_before", str(champion.version))):  # fmt: skip
                client.set_model_version_tag(registry.model_name, str(version.version), key, value)
            client.set_tag(run.info.run_id, "promotion.reason", reason)
        return client.get_model_version(registry.model_name, str(version.version))


def _same_bytes(client: MlflowClient, model_name: str, artifact_sha256: str) -> ModelVersion | None:
    for version in client.search_model_versions(f"name = '{model_name}'"):
        if (version.tags or {}).get(ARTIFACT_SHA256_TAG) == artifact_sha256:
            return version
    return None
