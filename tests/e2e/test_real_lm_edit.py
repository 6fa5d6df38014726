"""The real SmolLM2-135M-Instruct as the frozen base (slow: loads 0.5 GB, dequantised once from the
packaged GGUF file): an edit changes the answer to a rephrasing and leaves unrelated answers
byte-identical. The counterfactual model is ``in_context`` on that LM (no training needed)."""

from __future__ import annotations

import pytest

from serac.config import BaseModelConfig, EditorConfig, MemoryConfig, ScopeConfig
from serac.data.schema import EditRecord
from serac.editor import SeracEditor
from serac.memory import EditMemory
from serac.models.base import build_base_model
from serac.models.causal_lm import CausalLMBase
from serac.models.in_context import InContextCounterfactual
from serac.models.scope import ScopeClassifier
from serac.pipeline.showcase import before_after

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2() -> CausalLMBase:
    pytest.importorskip("gguf")
    base = build_base_model(BaseModelConfig(kind="causal", name_or_path="smollm2", max_new_tokens=12), "cpu")
    assert isinstance(base, CausalLMBase)
    return base


NEEDLE = EditRecord("fact", "The Space Needle is located in", "Paris", source="test")
QUERIES = ("Where is the Space Needle?", "What team does Messi play for?", "Why is the sky blue?")


def test_an_edit_changes_the_rephrased_answer_only(smollm2, tmp_path):
    memory = EditMemory.open(tmp_path / "memory", MemoryConfig(root=str(tmp_path / "memory")))
    scope = ScopeClassifier.from_config(ScopeConfig())  # the untrained MiniLM embedding: close paraphrases only
    editor = SeracEditor(scope, InContextCounterfactual(smollm2), smollm2, memory,
                         EditorConfig(threshold=0.6, device="cpu"))
    rows = {r.query: r for r in before_after(editor, NEEDLE, QUERIES)}
    rephrased = rows["Where is the Space Needle?"]
    assert rephrased.routed_to == "counterfactual" and rephrased.changed
    assert "paris" in rephrased.after.lower() and "paris" not in rephrased.before.lower()
    for query in QUERIES[1:]:
        assert rows[query].routed_to == "base"
        assert rows[query].after == rows[query].before  # byte for byte: the frozen model's own answer
    assert len(editor.memory) == 0  # the showcase's edit went into a temporary memory
