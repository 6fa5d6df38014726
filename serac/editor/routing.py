"""Routing only (no answer generation): embed the queries, retrieve candidate edits, score scope.

:class:`ScopeRouter` is what :class:`~serac.editor.editor.SeracEditor` routes with, and what
the scale benchmark times. Candidates come from one memory version (positions read back
from the same view they were found in), so a concurrent ``remove`` cannot make a matched
edit vanish between search and read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from serac.data.schema import EditRecord
from serac.memory import EditMemory
from serac.models.scope import ScopeClassifier


@dataclass(frozen=True)
class ScopeDecision:
    edit_id: str | None
    score: float
    in_scope: bool


@dataclass(frozen=True)
class Routed:
    """A decision plus the matched edit's record (None when nothing matched)."""

    decision: ScopeDecision
    record: EditRecord | None


class ScopeRouter:
    """Best edit and scope probability per query; in scope when the probability exceeds ``threshold``."""

    def __init__(self, scope: ScopeClassifier, memory: EditMemory, threshold: float) -> None:
        self.scope = scope
        self.memory = memory
        self.threshold = threshold

    def candidates(self) -> int:
        """Edits retrieved per query before scoring."""
        kind = self.scope.config.kind
        if kind == "embedding":
            return 1  # the score is monotone in cosine: the nearest edit is the best one
        if kind == "rerank":
            return self.scope.config.top_k
        return max(1, min(len(self.memory), self.scope.config.max_cross_candidates))

    def route(self, queries: Sequence[str], query_embeddings: np.ndarray | None = None) -> list[Routed]:
        """Route ``queries``; ``query_embeddings`` skips embedding them again (e.g. timed separately)."""
        queries = list(queries)
        if not queries:
            return []
        view = self.memory.read_view()  # one version for search and record reads
        if view.n_live == 0:
            return [Routed(ScopeDecision(None, 0.0, False), None) for _ in queries]
        q_emb = query_embeddings if query_embeddings is not None else self.scope.embed_queries(queries)
        hits = view.search(q_emb, self.candidates())
        needs_text = self.scope.config.kind != "embedding" and self.scope.cross is not None
        records = [[view.record_at(h.position) for h in query_hits] if needs_text else None for query_hits in hits]
        texts = [[self.scope.edit_text(r) for r in recs] if recs is not None else [""] * len(query_hits)
                 for recs, query_hits in zip(records, hits)]
        cosines = [np.array([h.score for h in query_hits], dtype=np.float32) for query_hits in hits]
        # one call for the whole batch: the cross-encoder's pairs of every query share forward passes
        scored = self.scope.score_batch(queries, texts, cosines)
        routed = []
        for query_hits, recs, probs in zip(hits, records, scored):
            if not query_hits:
                routed.append(Routed(ScopeDecision(None, 0.0, False), None))
                continue
            best = int(np.argmax(probs))
            score = float(probs[best])
            record = recs[best] if recs is not None else view.record_at(query_hits[best].position)
            routed.append(Routed(ScopeDecision(query_hits[best].edit_id, score, score > self.threshold), record))
        return routed
