"""SeracEditor: edit memory + scope classifier + counterfactual model + frozen base model.

Routing (paper, sec. 2): the scope classifier scores a query against the edits
in memory; if the best edit scores above ``threshold`` the counterfactual model
answers from (edit input, edit label, query), otherwise the frozen base model
answers the query unchanged. Editing never touches model weights: ``edit``
appends to the memory (a new memory version), ``forget`` writes tombstones.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

from serac.config import EditorConfig, GuardConfig, MemoryConfig, ValidationConfig, build
from serac.data.rules import EditRefused, Refusal, check_records
from serac.data.schema import EditRecord
from serac.editor.guard import CANARY_DIR, BlastRadiusGuard, Canaries
from serac.editor.routing import ScopeDecision, ScopeRouter
from serac.io import atomic_dir
from serac.memory import EditMemory
from serac.memory.audit import AuditContext, with_reason
from serac.models.artifacts import ArtifactError, ArtifactVersionError, library_versions, read_json
from serac.models.base import BaseModel
from serac.models.counterfactual import Counterfactual
from serac.models.in_context import load_counterfactual
from serac.models.scope import ScopeClassifier

EDITOR_FORMAT_VERSION = 1
EDITOR_FILE = "editor.json"

Route = Literal["counterfactual", "base"]


@dataclass(frozen=True)
class Prediction:
    """The editor's answer to one query and how it was reached."""

    query: str
    answer: str
    routed_to: Route
    edit_id: str | None
    """The best-scoring edit (also reported when below threshold, for inspection)."""
    score: float
    """Scope-classifier probability of that edit covering the query (0 if memory is empty)."""


class SeracEditor:
    """Routes queries between the counterfactual model and the frozen base model."""

    def __init__(
        self,
        scope: ScopeClassifier,
        counterfactual: Counterfactual,
        base: BaseModel,
        memory: EditMemory,
        config: EditorConfig = EditorConfig(),
        *,
        validation: ValidationConfig = ValidationConfig(),
        guard: GuardConfig = GuardConfig(),
        canaries: Canaries | None = None,
    ) -> None:
        self.scope = scope
        self.counterfactual = counterfactual
        self.base = base
        self.memory = memory
        self.config = config
        self.validation = validation
        self.guard = BlastRadiusGuard(guard, canaries)
        self.sync_memory()

    # ---------------------------------------------------------------- editing
    def edit(self, records: Sequence[EditRecord], *, reason: str | None = None, audit: AuditContext | None = None):
        """Add edits to the memory (idempotent by edit_id); returns the memory's AddResult.

        Every edit is first checked (:meth:`screen`); when any is refused, nothing is stored
        and :class:`~serac.data.rules.EditRefused` lists each refused edit with its reasons.
        The change is recorded in the memory's audit trail as made by ``audit`` (default:
        this process's OS user, from ``python``), ``reason`` (a ticket id or note) filled in.
        """
        records = list(records)
        embeddings = self._embed(records)
        refusals = self.screen(records, embeddings)
        if refusals:
            raise EditRefused(refusals)
        return self.memory.add(records, embeddings, self.scope.encoder_fingerprint(), audit=with_reason(audit, reason))

    def screen(self, records: Sequence[EditRecord], embeddings: np.ndarray | None = None) -> list[Refusal]:
        """The edits this editor would refuse, by position: the row rules, then the blast-radius guard.

        The row rules (:func:`serac.data.rules.check_records`, ``self.validation``) are those of
        every entry point; the guard scores only edits that pass them and are not live yet.
        """
        records = list(records)
        refusals = {r.position: r for r in check_records(records, self.validation)}
        todo = [i for i, r in enumerate(records) if i not in refusals and not self.memory.contains(r.edit_id)]
        if todo and self.guard.active:
            embeddings = self._embed(records) if embeddings is None else embeddings
            refused = self.guard.refused(self.scope, [records[i] for i in todo], embeddings[todo],
                                         self.config.threshold_for(len(self.memory) + len(todo)))
            for j, why in refused.items():
                refusals[todo[j]] = Refusal(todo[j], records[todo[j]].edit_id, (why,))
        return [refusals[i] for i in sorted(refusals)]

    def attach_canaries(self, canaries: Canaries | None) -> None:
        """Use ``canaries`` for the blast-radius guard from now on (and save them with the editor)."""
        self.guard = BlastRadiusGuard(self.guard.config, canaries)

    def _embed(self, records: Sequence[EditRecord]) -> np.ndarray:
        return self.scope.embedding.embed_edits(records) if records else np.zeros((0, self.scope.dim), "float32")

    def forget(self, edit_ids: Sequence[str], *, reason: str | None = None, audit: AuditContext | None = None):
        """Tombstone edits; they stop matching immediately. ``reason`` / ``audit`` as for :meth:`edit`."""
        return self.memory.remove(list(edit_ids), audit=with_reason(audit, reason))

    def sync_memory(self) -> int:
        """Re-embed the memory when it was embedded by another encoder (e.g. before retraining).

        Returns the number of re-embedded edits (0 when already in sync or empty).
        """
        return reembed_memory(self.scope, self.memory)

    # ---------------------------------------------------------------- routing
    def classify(self, queries: Sequence[str]) -> list[ScopeDecision]:
        """Best edit and its scope probability for each query."""
        return [r.decision for r in self.router().route(queries)]

    def router(self) -> ScopeRouter:
        """Routing only (embedding, retrieval, scope scoring), without answer generation."""
        return ScopeRouter(self.scope, self.memory, self.config.threshold_for(len(self.memory)))

    def predict(self, queries: Sequence[str]) -> list[Prediction]:
        """Answer queries, batched: in-scope ones by the counterfactual model, the rest by the base model."""
        queries = list(queries)
        routed = self.router().route(queries)
        decisions = [r.decision for r in routed]
        answers: list[str | None] = [None] * len(queries)
        cf_rows = [i for i, d in enumerate(decisions) if d.in_scope]
        base_rows = [i for i, d in enumerate(decisions) if not d.in_scope]
        if cf_rows:
            edits = [routed[i].record for i in cf_rows]
            cf_answers = self.counterfactual.answer(
                [e.edit_input for e in edits],
                [e.edit_label for e in edits],
                [queries[i] for i in cf_rows],
                batch_size=self.config.batch_size,
            )
            for i, a in zip(cf_rows, cf_answers):
                answers[i] = a
        if base_rows:
            for i, a in zip(base_rows, self.base.predict([queries[i] for i in base_rows])):
                answers[i] = a
        return [
            Prediction(q, str(a), "counterfactual" if d.in_scope else "base", d.edit_id, d.score)
            for q, a, d in zip(queries, answers, decisions)
        ]

    # ---------------------------------------------------------------- persistence
    def save(self, directory: str | Path, include_memory: bool = True) -> Path:
        """Write the editor: scope/, counterfactual/, base/ (when trained here), memory/, canaries/ and editor.json."""
        directory = Path(directory)
        with atomic_dir(directory) as tmp:
            self.scope.save(tmp / "scope")
            self.counterfactual.save(tmp / "counterfactual")
            base_saved = False
            if hasattr(self.base, "save") and getattr(self.base, "trained_here", False):
                self.base.save(tmp / "base")
                base_saved = True
            if include_memory:
                self.memory.snapshot(tmp / "memory")
            if self.guard.canaries is not None:
                self.guard.canaries.save(tmp / CANARY_DIR)
            meta = {
                "format_version": EDITOR_FORMAT_VERSION,
                "editor": asdict(self.config),
                "base": {"saved": base_saved, **self.base.describe()},
                "memory": {"version": self.memory.version, "edits": len(self.memory), "included": include_memory},
                "versions": library_versions(),
            }
            (tmp / EDITOR_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return directory

    @classmethod
    def load(
        cls,
        directory: str | Path,
        *,
        memory_root: str | Path | None = None,
        memory_config: MemoryConfig = MemoryConfig(),
        device: str | None = None,
        base: BaseModel | None = None,
        validation: ValidationConfig = ValidationConfig(),
        guard: GuardConfig = GuardConfig(),
    ) -> "SeracEditor":
        """Load a saved editor; no training code is needed.

        ``memory_root`` opens a live memory instead of the snapshot saved with the
        editor; ``base`` overrides the recorded base model (e.g. an HTTP endpoint). Nothing
        named by the files is imported or contacted: a recorded ``callable``/``http`` base
        raises :class:`ArtifactError` unless ``base`` is given. ``validation`` and ``guard``
        are the operator's rules for new edits; the canary set comes from the editor's
        ``canaries/`` (without one the guard is off).
        """
        from serac.models.base import build_base_model

        directory = Path(directory)
        meta = read_editor_meta(directory)
        config = build(EditorConfig, meta.get("editor", {}), where=str(directory / EDITOR_FILE))
        if device is not None:
            config = EditorConfig(**{**asdict(config), "device": device})
        if base is None:
            base = build_base_model_from_meta(meta.get("base"), directory / "base", config.device, build_base_model)
        scope = ScopeClassifier.load(directory / "scope", device=config.device)
        counterfactual = load_counterfactual(directory / "counterfactual", config.device, base)
        if memory_root is None:
            if not meta["memory"].get("included", True):
                raise ArtifactError(f"{directory}: editor saved without memory; pass memory_root")
            memory_root = directory / "memory"
        memory = EditMemory.open(memory_root, memory_config)
        canaries = Canaries.load(directory / CANARY_DIR) if (directory / CANARY_DIR).is_dir() else None
        return cls(scope, counterfactual, base, memory, config, validation=validation, guard=guard,
                   canaries=canaries)


def reembed_memory(scope: ScopeClassifier, memory: EditMemory) -> int:
    """Re-embed ``memory`` with ``scope``'s encoder unless it already is; the number of re-embedded edits.

    Needs only the scope classifier (not the base model), e.g. to repackage a memory with an editor.
    """
    fingerprint = scope.encoder_fingerprint()
    if len(memory) == 0 or memory.encoder_fingerprint == fingerprint:
        return 0
    records = memory.records()
    memory.reembed(scope.embedding.embed_edits(records), fingerprint,
                   audit=AuditContext.local(f"scope encoder changed to {fingerprint}"))
    return len(records)


def read_editor_meta(directory: Path) -> dict:
    path = directory / EDITOR_FILE
    if not path.is_file():
        raise ArtifactError(f"{path}: missing (not a saved serac editor?)")
    meta = read_json(path)
    version = meta.get("format_version")
    if not isinstance(version, int) or version > EDITOR_FORMAT_VERSION:
        raise ArtifactVersionError(
            f"{path}: editor format version {version!r} is not supported by this serac "
            f"(supports <= {EDITOR_FORMAT_VERSION}; written with {meta.get('versions')})"
        )
    return meta


def build_base_model_from_meta(base_meta: dict, base_dir: Path, device: str, build_base_model) -> BaseModel:
    """Rebuild the base model an editor was saved with (its own artifact, or by name/path).

    Only a Hugging Face base: a ``callable`` or ``http`` base named by the file is refused
    before anything is imported or contacted (the operator passes those explicitly).
    """
    from serac.config import BaseModelConfig
    from serac.models.base import ARTIFACT_BASE_KINDS

    where = base_dir.parent / EDITOR_FILE
    kind = base_meta.get("kind") if isinstance(base_meta, dict) else None
    if kind not in ARTIFACT_BASE_KINDS:
        raise ArtifactError(
            f"{where}: field base.kind is {kind!r}; a saved editor may only name a Hugging Face base model "
            f"({', '.join(ARTIFACT_BASE_KINDS)}). A 'callable' or 'http' base runs code or sends queries where "
            "the file says, so it is refused unless the operator chooses it: pass --base-callable MODULE:FUNCTION "
            "or --base-url URL, set base.kind in params.yaml, or call SeracEditor.load(base=...)"
        )
    fields = {k: v for k, v in base_meta.items() if k in BaseModelConfig.__dataclass_fields__}
    cfg = build(BaseModelConfig, fields, where=f"{where}:base")
    return build_base_model(cfg, device, artifact_dir=base_dir if base_meta.get("saved") else None)
