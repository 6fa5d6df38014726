"""The blast-radius guard (serac.editor.guard) with tiny scope encoders: exact capture rates,
refusal at every entry point, canaries saved with the editor, and an editor without canaries."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from tiny import minilm_tokenizer, tiny_bert_model, tiny_counterfactual

from serac.config import EditorConfig, GuardConfig, IngestConfig, MemoryConfig, ScopeConfig, ServeConfig
from serac.data.rules import EditRefused
from serac.data.schema import EditRecord, Example
from serac.editor import SeracEditor
from serac.editor.guard import REASON, BlastRadiusGuard, Canaries, build_canaries, canary_queries
from serac.memory import EditMemory
from serac.models.base import CallableBaseModel
from serac.models.encoder import TextEncoder
from serac.models.scope import EmbeddingScope, ScopeClassifier
from serac.pipeline import ingest
from serac.serve import EditService, create_app

EDIT = EditRecord("qa", "Who is the prime minister of the United Kingdom?", "Boris Johnson")
OTHER = EditRecord("qa", "What is the longest river in Africa?", "Congo")
CANARY_TEXTS = [f"unrelated question number {i} about cooking" for i in range(40)]


def base_answers(queries: list[str]) -> list[str]:
    return ["base:" + q for q in queries]


def tiny_scope(cutoff_cosine: float) -> ScopeClassifier:
    """A random tiny encoder; ``cutoff_cosine`` is where its score crosses 0.5 (-1.1: everything, 1.1: nothing)."""
    encoder = TextEncoder(tiny_bert_model(seed=0), minilm_tokenizer())
    return ScopeClassifier(ScopeConfig(), EmbeddingScope(encoder, init_cutoff_cosine=cutoff_cosine)).eval()


def make_editor(tmp_path, scope: ScopeClassifier, canaries: Canaries | None, max_capture: float = 0.005):
    memory = EditMemory.open(tmp_path / "memory", MemoryConfig(root=str(tmp_path / "memory")))
    return SeracEditor(scope, tiny_counterfactual(), CallableBaseModel(base_answers), memory,
                       EditorConfig(threshold=0.5, device="cpu"), guard=GuardConfig(max_capture=max_capture),
                       canaries=canaries)


def test_capture_rate_is_exact_and_refusal_starts_just_above_max_capture():
    scope = tiny_scope(0.6)  # score > 0.5 exactly when cos > 0.6
    edit = np.zeros((1, 4), np.float32)
    edit[0, 0] = 1.0

    def canaries(captured: int) -> Canaries:
        emb = np.zeros((1000, 4), np.float32)
        emb[:, 1] = 1.0  # cos 0 with the edit
        emb[:captured] = edit  # cos 1
        return Canaries(tuple(f"canary {i}" for i in range(1000)), emb, scope.encoder_fingerprint())

    at_limit = BlastRadiusGuard(GuardConfig(max_capture=0.005), canaries(5))
    (capture,) = at_limit.captures(scope, [EDIT], edit, threshold=0.5)
    assert (capture.captured, capture.total, capture.rate) == (5, 1000, 0.005)
    assert at_limit.refused(scope, [EDIT], edit, threshold=0.5) == {}
    over = BlastRadiusGuard(GuardConfig(max_capture=0.005, examples=3), canaries(6))
    (reason,) = over.refused(scope, [EDIT], edit, threshold=0.5).values()
    assert reason.startswith(f"{REASON}: captures 0.60% of 1000 canary queries (guard.max_capture 0.50%)")
    assert reason.count("'canary ") == 3
    assert over.refused(scope, [EDIT], edit, threshold=0.9999) == {}  # the routing threshold decides


def test_broad_edit_is_refused_by_the_python_api_and_nothing_is_stored(tmp_path):
    scope = tiny_scope(-1.1)  # every canary in scope of every edit
    editor = make_editor(tmp_path, scope, build_canaries(scope, CANARY_TEXTS))
    with pytest.raises(EditRefused) as refused:
        editor.edit([EDIT, OTHER])
    assert [r.position for r in refused.value.refusals] == [0, 1]
    assert all(r.reasons[0].startswith(f"{REASON}: captures 100.00% of 40") for r in refused.value.refusals)
    assert len(editor.memory) == 0


def test_narrow_edit_passes_and_a_permissive_limit_lets_a_broad_one_through(tmp_path):
    narrow = tiny_scope(1.1)
    editor = make_editor(tmp_path / "a", narrow, build_canaries(narrow, CANARY_TEXTS))
    assert editor.edit([EDIT]).added == [EDIT.edit_id]
    broad = tiny_scope(-1.1)
    lenient = make_editor(tmp_path / "b", broad, build_canaries(broad, CANARY_TEXTS), max_capture=1.0)
    assert lenient.edit([EDIT]).added == [EDIT.edit_id]


def test_api_answers_422_with_the_capture_rate(tmp_path):
    scope = tiny_scope(-1.1)
    service = EditService(make_editor(tmp_path, scope, build_canaries(scope, CANARY_TEXTS)), ServeConfig())
    with TestClient(create_app(service, None)) as client:
        response = client.post("/edits", json={"edits": [{"edit_input": EDIT.edit_input, "edit_label": "X Y"}]})
    assert response.status_code == 422
    assert f"{REASON}: captures 100.00% of 40 canary queries" in response.json()["detail"]


def test_batch_ingest_quarantines_broad_edits_with_rate_and_examples(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    rows = [{"task": "qa", "edit_input": r.edit_input, "edit_label": r.edit_label} for r in (EDIT, OTHER)]
    (inbox / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = IngestConfig(inbox=str(inbox), validated_root=str(tmp_path / "validated"), ledger=str(tmp_path / "l.json"))
    (batch,) = ingest.discover_batches(cfg)
    report = ingest.validate_batch(batch, cfg)
    assert len(report.passed) == 2
    scope = tiny_scope(-1.1)
    screened = ingest.screen_batch(make_editor(tmp_path, scope, build_canaries(scope, CANARY_TEXTS)), batch,
                                   report, cfg)
    assert screened.passed == [] and [q.row for q in screened.quarantined] == [1, 2]
    assert not screened.batch_ok and screened.failure_rate == 1.0
    reason = screened.quarantined[0].reasons[0]
    assert reason.startswith(f"{REASON}: captures 100.00% of 40") and reason.count("'unrelated question") == 3
    summary = json.loads((batch.out_dir(cfg) / "summary.json").read_text())
    assert summary["quarantined"] == 2 and summary["format"] == "canonical"


def test_canaries_travel_with_the_saved_editor(tmp_path):
    scope = tiny_scope(-1.1)
    canaries = build_canaries(scope, CANARY_TEXTS)
    make_editor(tmp_path, scope, canaries).save(tmp_path / "editor")
    loaded = SeracEditor.load(tmp_path / "editor", base=CallableBaseModel(base_answers),
                              guard=GuardConfig(max_capture=0.5))
    assert loaded.guard.active and loaded.guard.config.max_capture == 0.5
    assert loaded.guard.canaries.queries == tuple(CANARY_TEXTS)
    np.testing.assert_array_equal(loaded.guard.canaries.embeddings, canaries.embeddings)
    with pytest.raises(EditRefused, match=REASON):
        loaded.edit([EDIT])


def test_an_editor_without_canaries_works_and_says_the_guard_is_off(tmp_path):
    from serac.editor.guard import GuardOffWarning

    with pytest.warns(GuardOffWarning, match="blast-radius guard is off"):
        editor = make_editor(tmp_path, tiny_scope(-1.1), None)
    assert not editor.guard.active and editor.edit([EDIT]).added == [EDIT.edit_id]


def test_canaries_embedded_by_another_encoder_are_re_embedded(tmp_path):
    scope = tiny_scope(-1.1)
    stale = Canaries(tuple(CANARY_TEXTS), np.zeros((40, scope.dim), np.float32), "another-encoder")
    guard = BlastRadiusGuard(GuardConfig(), stale)
    edit = scope.embedding.embed_edits([EDIT])
    assert guard.captures(scope, [EDIT], edit, threshold=0.5)[0].total == 40
    assert guard.canaries.fingerprint == scope.encoder_fingerprint()
    np.testing.assert_allclose(guard.canaries.embeddings, build_canaries(scope, CANARY_TEXTS).embeddings, atol=1e-6)


def test_canary_queries_are_distinct_out_of_scope_inputs_up_to_the_limit():
    records = [EditRecord("qa", f"q{i}", f"a{i}", out_of_scope=[Example("shared"), Example(f"own {i}")])
               for i in range(5)]
    assert canary_queries(records, 4) == ["shared", "own 0", "own 1", "own 2"]
    assert canary_queries(records, 100) == ["shared"] + [f"own {i}" for i in range(5)]
