"""ScopeRouter: retrieval of top-k candidates from the memory, then embedding score or cross-encoder rerank."""

import numpy as np
import pytest

from serac.config import MemoryConfig, ScopeConfig
from serac.data.schema import EditRecord
from serac.editor.routing import ScopeRouter
from serac.memory import EditMemory
from serac.models.scope import ScopeClassifier

EDITS = [
    EditRecord("qa", "Who is the prime minister of the United Kingdom?", "Boris Johnson"),
    EditRecord("qa", "Who is the president of France?", "Emmanuel Macron"),
    EditRecord("qa", "What is the longest river in Africa?", "Congo"),
    EditRecord("qa", "What is the capital of Australia?", "Sydney"),
    EditRecord("qa", "Which company makes the iPhone?", "Samsung"),
]
QUERIES = ["Who leads the UK government?", "What is the biggest river in Africa?"]


@pytest.mark.parametrize("kind", ["embedding", "rerank"])
def test_router_scores_the_retrieved_candidates(tmp_path, kind):
    scope = ScopeClassifier.from_config(ScopeConfig(kind=kind, top_k=3)).eval()
    memory = EditMemory.open(tmp_path / "m", MemoryConfig(index="exact"))
    memory.add(EDITS, scope.embedding.embed_edits(EDITS), scope.encoder_fingerprint())
    router = ScopeRouter(scope, memory, threshold=0.5)
    assert router.candidates() == (1 if kind == "embedding" else 3)
    routed = router.route(QUERIES)
    q_emb = scope.embed_queries(QUERIES)
    for query, emb, r in zip(QUERIES, q_emb, routed):
        hits = memory.search(emb, router.candidates())[0]
        probs = scope.score_candidates(query, [scope.edit_text(memory.get(h.edit_id)) for h in hits],
                                       np.array([h.score for h in hits], dtype=np.float32))
        best = int(np.argmax(probs))
        assert r.decision.edit_id == hits[best].edit_id and r.record.edit_id == hits[best].edit_id
        assert r.decision.score == pytest.approx(float(probs[best]), abs=1e-5)
        assert r.decision.in_scope == (r.decision.score > 0.5)
    memory.remove([routed[0].decision.edit_id])
    assert router.route(QUERIES[:1])[0].decision.edit_id != routed[0].decision.edit_id
    assert router.route([]) == []
