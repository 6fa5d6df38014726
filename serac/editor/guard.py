"""Blast-radius guard: refuse an edit whose scope takes in too many unrelated queries.

An edit such as "Who? -> Boris Johnson" can sit close to every question in embedding
space; once in the memory, the scope classifier would route many unrelated queries to it
and the counterfactual model would answer them from it. Before an edit is stored, the
guard scores it against a fixed **canary set**: queries that no edit should cover (the
validation split's out-of-scope queries), embedded once with the scope encoder and saved
with the editor (``canaries/`` beside ``scope/``). The score is the one routing uses
(:meth:`~serac.models.scope.ScopeClassifier.score_batch` of the canary against that edit
alone) and so is the threshold (``editor.threshold``): a canary is *captured* when the edit
alone would route it to the counterfactual model. An edit that captures more than
``guard.max_capture`` of the canaries is refused (quarantined by batch ingest).

The capture rate is a property of the edit and the classifier, not of the memory: it does
not change as other edits come and go. An editor packaged without canaries works without
the guard (a warning says so once). After retraining, canaries embedded by another encoder
are re-embedded from their stored text the first time they are needed.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from serac.config import GuardConfig
from serac.data.schema import EditRecord
from serac.data.text import escape_for_terminal
from serac.io import atomic_dir
from serac.models.scope import ScopeClassifier

log = logging.getLogger(__name__)

CANARY_DIR = "canaries"
CANARY_FORMAT = "serac-canaries/1"
_META, _WEIGHTS = "canaries.json", "embeddings.safetensors"
REASON = "blast_radius"
"""Prefix of a guard refusal's reason (the rest gives the rate and examples)."""


@dataclass(frozen=True)
class Canaries:
    """Queries no edit should capture, with their unit-norm scope embeddings ``[n, dim]``."""

    queries: tuple[str, ...]
    embeddings: np.ndarray
    fingerprint: str
    """Scope encoder fingerprint the embeddings were made with."""

    def __post_init__(self) -> None:
        if self.embeddings.ndim != 2 or len(self.embeddings) != len(self.queries):
            raise ValueError(f"{len(self.queries)} canary queries but embeddings of shape {self.embeddings.shape}")

    def save(self, directory: str | Path) -> Path:
        """``canaries.json`` (format, fingerprint, queries) + ``embeddings.safetensors``, atomically."""
        from safetensors.numpy import save_file

        directory = Path(directory)
        with atomic_dir(directory) as tmp:
            meta = {"format": CANARY_FORMAT, "fingerprint": self.fingerprint, "queries": list(self.queries)}
            (tmp / _META).write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
            save_file({"embeddings": np.ascontiguousarray(self.embeddings, dtype=np.float32)}, str(tmp / _WEIGHTS))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "Canaries":
        """Read what :meth:`save` wrote; ``ValueError`` naming the file when it is not a canary set."""
        from safetensors.numpy import load_file

        directory = Path(directory)
        meta_path = directory / _META
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"{meta_path}: unreadable canary set: {exc}") from exc
        if not isinstance(meta, dict) or meta.get("format") != CANARY_FORMAT:
            raise ValueError(f"{meta_path}: not a serac canary set (expected format {CANARY_FORMAT!r})")
        embeddings = load_file(str(directory / _WEIGHTS))["embeddings"]
        return cls(tuple(str(q) for q in meta["queries"]), embeddings, str(meta.get("fingerprint", "")))


def canary_queries(records: Iterable[EditRecord], limit: int) -> list[str]:
    """Up to ``limit`` distinct out-of-scope queries of ``records``, in order."""
    seen: dict[str, None] = {}
    for record in records:
        for example in record.out_of_scope:
            if len(seen) >= limit:
                return list(seen)
            seen.setdefault(example.input, None)
    return list(seen)


def validation_canaries(scope: ScopeClassifier, data_dir: str | Path, dataset: str, limit: int) -> Canaries | None:
    """The canary set of a packaged editor: ``limit`` out-of-scope queries of the prepared splits.

    The validation split's come first; when it has fewer than ``limit`` (zsRE's has ~160), the
    training split's top the set up: with under 200 canaries a single capture is already more
    than 0.5%. None (with a warning) when no split can be read: the editor then works without the guard.
    """
    from serac.data.prepare import read_split

    records: list[EditRecord] = []
    for split in ("val", "train"):
        try:
            records += read_split(data_dir, dataset, split)
        except (OSError, ValueError) as exc:
            log.warning("canary set: cannot read the %s %s split in %s (%s)", dataset, split, data_dir, exc)
    queries = canary_queries(records, limit)
    return build_canaries(scope, queries) if queries else None


def build_canaries(scope: ScopeClassifier, queries: Sequence[str]) -> Canaries:
    """Embed ``queries`` with ``scope``'s query encoder (what routing embeds a query with)."""
    queries = tuple(queries)
    embeddings = scope.embed_queries(list(queries)) if queries else np.zeros((0, scope.dim), np.float32)
    return Canaries(queries, np.asarray(embeddings, dtype=np.float32), scope.encoder_fingerprint())


@dataclass(frozen=True)
class Capture:
    """How many canaries one edit captures, and the best-scoring of them."""

    edit_id: str
    captured: int
    total: int
    examples: tuple[str, ...]

    @property
    def rate(self) -> float:
        return self.captured / self.total if self.total else 0.0

    def reason(self, max_capture: float) -> str:
        """``blast_radius: captures 1.20% of 2000 canary queries (limit 0.50%), e.g. '...'``."""
        shown = ", ".join(repr(escape_for_terminal(q)) for q in self.examples)
        return (f"{REASON}: captures {self.rate:.2%} of {self.total} canary queries (guard.max_capture "
                f"{max_capture:.2%})" + (f", e.g. {shown}" if shown else ""))


def canary_scores(scope: ScopeClassifier, canaries: Canaries, records: Sequence[EditRecord],
                  edit_embeddings: np.ndarray) -> np.ndarray:
    """Scope probability ``[n_edits, n_canaries]`` of each canary against each edit alone.

    The embedding kind scores from the cosine, as routing does, in one matrix product; the
    cross-encoder kinds run :meth:`ScopeClassifier.score_batch` on the (canary, edit) pairs
    (every pair for ``cross_encoder``, about a second per edit for 2,000 canaries on a CPU;
    those above ``scope.rerank_above`` by embedding for ``rerank``), exactly as routing scores them.
    """
    cosines = np.asarray(edit_embeddings, np.float32) @ canaries.embeddings.T
    if scope.config.kind == "embedding" or scope.cross is None:
        return np.asarray(scope.embedding.probs_from_cosine(cosines), dtype=np.float64)
    rows = []
    for record, cos in zip(records, cosines):
        text = scope.edit_text(record)
        scores = scope.score_batch(canaries.queries, [[text]] * len(canaries.queries), [c[None] for c in cos])
        rows.append(np.concatenate(scores) if scores else np.zeros(0))
    return np.asarray(rows, dtype=np.float64).reshape(len(records), len(canaries.queries))


class GuardOffWarning(UserWarning):
    """An editor runs without canaries: edits are not screened for their blast radius."""


class BlastRadiusGuard:
    """Scores new edits against the canaries; :meth:`refused` names the ones over ``max_capture``."""

    def __init__(self, config: GuardConfig, canaries: Canaries | None) -> None:
        self.config = config
        self.canaries = canaries
        if canaries is None or not canaries.queries:
            # a warning (shown once per process by Python's default filter), not a log line: the
            # evaluation builds hundreds of guard-less group editors on purpose
            warnings.warn("the editor has no canary set: the blast-radius guard is off "
                          "(package the editor with `serac package` or `serac train` to build one)",
                          GuardOffWarning, stacklevel=2)

    @property
    def active(self) -> bool:
        return self.canaries is not None and len(self.canaries.queries) > 0

    def captures(self, scope: ScopeClassifier, records: Sequence[EditRecord], edit_embeddings: np.ndarray,
                 threshold: float) -> list[Capture]:
        """One :class:`Capture` per record (all zero when the guard is off)."""
        records = list(records)
        if not self.active or not records:
            return [Capture(r.edit_id, 0, 0, ()) for r in records]
        canaries = self._current(scope)
        scores = canary_scores(scope, canaries, records, edit_embeddings)
        out = []
        for record, row in zip(records, scores):
            hit = np.flatnonzero(row > threshold)
            best = hit[np.argsort(-row[hit], kind="stable")][: self.config.examples]
            out.append(Capture(record.edit_id, int(hit.size), len(canaries.queries),
                               tuple(canaries.queries[i] for i in best)))
        return out

    def refused(self, scope: ScopeClassifier, records: Sequence[EditRecord], edit_embeddings: np.ndarray,
                threshold: float) -> dict[int, str]:
        """``{position: reason}`` of the records that capture more than ``guard.max_capture``."""
        captures = self.captures(scope, records, edit_embeddings, threshold)
        return {i: c.reason(self.config.max_capture) for i, c in enumerate(captures)
                if c.total and c.rate > self.config.max_capture}

    def _current(self, scope: ScopeClassifier) -> Canaries:
        """The canaries embedded by ``scope``'s encoder (re-embedded once after a retraining)."""
        assert self.canaries is not None
        if self.canaries.fingerprint != scope.encoder_fingerprint():
            log.warning("canary set embedded by another scope encoder: re-embedding %d queries",
                        len(self.canaries.queries))
            self.canaries = build_canaries(scope, self.canaries.queries)
        return self.canaries
