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
from pathlib import Path

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
from serac.registry.tracking import configure_mlflow, start_run

__all__ = ["CARRIED_TAGS", "MEMORY_MD5_TAG", "REFRESH_OF_TAG", "refresh_champion_memory"]

CARRIED_TAGS = ("es", "dd", "eval_set", "dataset", "data.dvc_md5", "git.commit")
"""Champion version tags the refreshed version keeps: the gate's inputs and what the components were built from."""
MEMORY_MD5_TAG = "memory.dvc_md5"
"""Model-version tag: the DVC md5 of the memory the version serves (when DVC tracks it)."""
REFRESH_OF_TAG = "serac.memory_refresh_of"
"""Tag of a refreshed version: the version whose components it serves."""


def refresh_champion_memory(
    registry: RegistryConfig,
    tracking: TrackingConfig,
    memory_root: str | Path,
    memory_md5: str | None = None,
) -> ModelVersion | None:
    """Register the champion's components with a snapshot of ``memory_root`` and make that version champion.

    Returns the version now champion (the champion itself when it already serves exactly this
    memory: the same ``memory.dvc_md5``, or the same bytes), or None when there is no champion.
    ``memory_md5``, the memory's DVC md5, is tagged on the new version as ``memory.dvc_md5``.
    Safe to call every run: nothing is registered while the champion is up to date.
    """
    configure_mlflow(tracking)
    client = MlflowClient()
    champion = version_by_alias(client, registry.model_name, registry.champion_alias)
    if champion is None:
        return None
    if memory_md5 is not None and (champion.tags or {}).get(MEMORY_MD5_TAG) == memory_md5:
        return champion
    with tempfile.TemporaryDirectory(prefix="serac-refresh-") as tmp:
        source = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{registry.model_name}/{champion.version}", dst_path=str(Path(tmp) / "champion")
        )
        staged = editor_with_memory(Path(source) / "artifacts" / EDITOR_ARTIFACT, memory_root,
                                    Path(tmp) / EDITOR_ARTIFACT)  # fmt: skip
        version = _same_bytes(client, registry.model_name, tree_sha256(staged))
        if version is None:
            carried = {k: v for k, v in (champion.tags or {}).items() if k in CARRIED_TAGS}
            tags = {**carried, MEMORY_MD5_TAG: memory_md5, REFRESH_OF_TAG: champion.version}
            with start_run(tracking, run_name="memory-refresh", tags={"stage": "memory-refresh"}):
                version = log_editor_model(staged, registry.model_name, input_example=None, tags=tags)
    if str(version.version) != str(champion.version):
        client.set_registered_model_alias(registry.model_name, registry.champion_alias, str(version.version))
        reason = (f"memory refresh: the components of v{champion.version} with memory "
                  f"v{version.tags.get('memory.version')} ({version.tags.get('memory.edits')} edits)")
        for key, value in (("promotion.decision", "memory refresh"), ("promotion.reason", reason),
                           ("promotion.champion_before", str(champion.version))):  # fmt: skip
            client.set_model_version_tag(registry.model_name, str(version.version), key, value)
    return client.get_model_version(registry.model_name, str(version.version))


def _same_bytes(client: MlflowClient, model_name: str, artifact_sha256: str) -> ModelVersion | None:
    for version in client.search_model_versions(f"name = '{model_name}'"):
        if (version.tags or {}).get(ARTIFACT_SHA256_TAG) == artifact_sha256:
            return version
    return None
