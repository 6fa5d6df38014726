"""The k-edits protocol: exact metric aggregation on a hand-built case, deterministic groups,
one empty memory per group, threshold tuning consistent with the editor's own routing."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from serac.config import ConfigError, EditorConfig, EvaluationConfig, MemoryConfig, ScopeConfig, load_config
from serac.data.schema import EditRecord, Example
from serac.data.synthetic import synthetic_edits
from serac.editor import SeracEditor
from serac.evaluation.groups import GroupQueries, distinct_records
from serac.evaluation.protocol import (
    BaseAnswers,
    MethodSpec,
    ProtocolOptions,
    draw_groups,
    drawdown_kind,
    evaluate_editor,
    serac_method,
    tune_threshold,
)
from serac.memory import EditMemory
from serac.models.base import CallableBaseModel
from serac.models.scope import ScopeClassifier

QUIET = ProtocolOptions(progress=False)


def base_answers(queries: list[str]) -> list[str]:
    return ["base:" + q for q in queries]


BASE = CallableBaseModel(base_answers)

# ------------------------------------------------------------------ a method whose answers we control

A = EditRecord("qa", "a?", "LA", in_scope=[Example("a2?", "LA"), Example("a3?", "LA")],
               out_of_scope=[Example("x?", "bx")])
B = EditRecord("qa", "b?", "LB", in_scope=[Example("b2?", "LB")], out_of_scope=[Example("y?", "by")])

# query -> (answer, scope score)
SCRIPT = {
    "a?": ("LA", 0.9), "a2?": ("la", 0.9), "a3?": ("wrong", 0.4),  # es_edit 1/1, rephrase 1/2 (case-insensitive)
    "b?": ("LB", 0.9), "b2?": ("LB", 0.7),                         # es_edit 1/1, rephrase 1/1
    "x?": ("changed", 0.8), "y?": ("base:y?", 0.1),                # DD 1/2; x? is a false positive at 0.5
}


@dataclass(frozen=True)
class Answer:
    answer: str
    score: float


class ScriptedMethod:
    """Answers from SCRIPT for stored edits' queries; a ``memory`` list the protocol can count."""

    def __init__(self) -> None:
        self.memory: list[EditRecord] = []

    def edit(self, records):
        self.memory.extend(records)

    def predict(self, queries):
        return [Answer(*SCRIPT[q]) for q in queries]


SCRIPTED = MethodSpec("scripted", lambda root: ScriptedMethod(), BASE, threshold=0.5)


@pytest.mark.parametrize("k", [1, "all"])
def test_metrics_pool_every_query_of_every_group(tmp_path, k):
    result = evaluate_editor(SCRIPTED, [A, B], ks=[k], options=ProtocolOptions(progress=False, work_dir=tmp_path))
    m = result.at(k)
    assert (m.n_groups, m.edits_per_group) == ((2, 1) if k == 1 else (1, 2))
    assert (m.n_edit_queries, m.n_rephrase_queries, m.n_queries, m.n_out_of_scope) == (2, 3, 5, 2)
    assert m.es_edit == 1.0
    assert m.es_rephrase == pytest.approx(2 / 3)
    assert m.es == pytest.approx(4 / 5)
    assert m.dd == pytest.approx(1 / 2) and m.dd_kind == result.dd_kind == "changed"
    # scope: positives .9 .9 .4 .9 .7, negatives .8 .1 at threshold .5
    assert (m.precision, m.recall, m.fpr) == pytest.approx((4 / 5, 4 / 5, 1 / 2))
    assert m.auroc == pytest.approx(8 / 10)
    assert sorted(m.scores_in) == [0.4, 0.7, 0.9, 0.9, 0.9] and sorted(m.scores_out) == [0.1, 0.8]
    assert m.p50_ms >= 0 and math.isfinite(m.p99_ms)
    assert list(tmp_path.iterdir()) == []  # group memories are cleaned up


def test_method_without_scope_reports_nan_scope_metrics():
    spec = MethodSpec("noscope", lambda root: ScriptedMethod(), BASE, threshold=None)
    m = evaluate_editor(spec, [A, B], ks=["all"], options=QUIET).at("all")
    assert m.es == pytest.approx(4 / 5) and math.isnan(m.recall) and math.isnan(m.auroc) and m.scores_in == ()


def test_true_false_task_uses_accuracy_drawdown():
    claim = EditRecord("fc", "the sky is green", "true", in_scope=[Example("green is the sky's colour", "true")],
                       out_of_scope=[Example("water is wet", "true"), Example("fire is cold", "false")])
    script = {"the sky is green": "true", "green is the sky's colour": "false", "water is wet": "false",
              "fire is cold": "false"}

    class Claims(ScriptedMethod):
        def predict(self, queries):
            return [Answer(script[q], 1.0) for q in queries]

    base = CallableBaseModel(lambda qs: ["true" for _ in qs])  # base: right on "water is wet" only
    result = evaluate_editor(MethodSpec("c", lambda root: Claims(), base), [claim], ks=[1], options=QUIET)
    m = result.at(1)
    assert result.dd_kind == "accuracy"
    assert (m.es_edit, m.es_rephrase) == (1.0, 0.0)
    assert m.dd == pytest.approx(0.5 - 0.5)  # base 1/2 right, edited 1/2 right (fire is cold)


def test_drawdown_kind_is_chosen_by_task_then_labels():
    assert drawdown_kind("fc") == "accuracy"
    assert drawdown_kind("qa", [A, B]) == "changed"
    assert drawdown_kind("fact", [EditRecord("fact", "x", "True", out_of_scope=[Example("y", "false")])]) == "accuracy"
    assert drawdown_kind("fact") == "changed"


def test_out_of_scope_queries_covered_by_another_edit_of_the_group_are_dropped():
    c = EditRecord("qa", "c?", "LC", out_of_scope=[Example("a?", "old"), Example("z?", "bz")])
    assert GroupQueries.of([c]).out == [("a?", "old"), ("z?", "bz")]
    assert GroupQueries.of([A, c]).out == [("x?", "bx"), ("z?", "bz")]


def test_groups_are_deterministic_disjoint_and_bounded():
    records = synthetic_edits(20, seed=1)  # 3 in-scope queries each (input + 2 rephrasings)
    groups = draw_groups(records, 3, seed=7)
    assert groups == draw_groups(records, 3, seed=7)
    assert groups != draw_groups(records, 3, seed=8)
    assert len(groups) == 6 and all(len(g) == 3 for g in groups)
    flat = [i for g in groups for i in g]
    assert len(set(flat)) == len(flat)
    assert len(draw_groups(records, 3, seed=7, max_groups=2)) == 2
    assert draw_groups(records, 1, seed=7, max_queries=7) == draw_groups(records, 1, seed=7)[:3]  # 3+3 < 7 <= 9
    assert len(draw_groups(records, 20, seed=0, max_queries=1)) == 1
    with pytest.raises(ValueError):
        draw_groups(records, 21, seed=0)


def test_duplicate_records_count_once():
    assert distinct_records([A, B, A]) == [A, B]


def test_k_larger_than_the_test_set_is_skipped_with_a_note():
    result = evaluate_editor(SCRIPTED, [A, B], ks=[1, 10, "all"], options=QUIET)
    assert [m.k for m in result.per_k] == ["1", "all"]
    assert "k=10 skipped" in result.note


def test_skipped_method_returns_its_reason():
    result = evaluate_editor(MethodSpec("ft", None, BASE, skip_reason="not here"), [A], options=QUIET)
    assert result.skipped and result.note == "not here" and result.per_k == ()


def test_base_answers_are_computed_once_per_query():
    calls = []

    def counting(queries):
        calls.append(list(queries))
        return base_answers(queries)

    cache = BaseAnswers(CallableBaseModel(counting), batch_size=2)
    assert cache(["q1", "q2", "q1"]) == ["base:q1", "base:q2", "base:q1"]
    assert cache(["q2", "q3"]) == ["base:q2", "base:q3"]
    assert calls == [["q1", "q2"], ["q3"]]


def test_a_factory_that_hands_out_a_non_empty_memory_is_refused():
    class Leaky(ScriptedMethod):
        shared: list = []

        def __init__(self):
            self.memory = Leaky.shared

    with pytest.raises(RuntimeError, match="before editing"):
        evaluate_editor(MethodSpec("leaky", lambda root: Leaky(), BASE), [A, B], ks=[1], options=QUIET)


# ------------------------------------------------------------------ with a real SeracEditor


class EchoCounterfactual:
    """A perfect counterfactual model: answers the retrieved edit's label."""

    def answer(self, edit_inputs, edit_labels, queries, batch_size=32):
        return list(edit_labels)


@pytest.fixture(scope="module")
def scope() -> ScopeClassifier:
    return ScopeClassifier.from_config(ScopeConfig())


def make_editor(tmp_path: Path, scope, threshold: float = 0.5) -> SeracEditor:
    memory = EditMemory.open(tmp_path / "memory", MemoryConfig(root=str(tmp_path / "memory")))
    return SeracEditor(scope, EchoCounterfactual(), BASE, memory, EditorConfig(threshold=threshold, device="cpu"))


def test_each_group_memory_holds_exactly_its_k_edits_and_the_editor_memory_is_untouched(tmp_path, scope):
    editor = make_editor(tmp_path, scope)
    editor.edit(synthetic_edits(1, seed=99))
    records = synthetic_edits(6, seed=3)
    spec = serac_method(editor)
    seen: list[tuple[int, set[str]]] = []

    class Recording:
        def __init__(self, inner):
            self.inner, self.memory = inner, inner.memory

        def edit(self, group):
            self.inner.edit(group)
            seen.append((len(self.memory), set(self.memory.ids())))

        def predict(self, queries):
            return self.inner.predict(queries)

    recording = MethodSpec("serac", lambda root: Recording(spec.factory(root)), spec.base, spec.threshold)
    result = evaluate_editor(recording, records, ks=[1, 2, "all"], options=ProtocolOptions(seed=5, progress=False))
    expected = [[records[i].edit_id for i in g] for k in (1, 2, 6) for g in draw_groups(records, k, seed=5,
                                                                                         max_queries=2000)]
    assert [size for size, _ in seen] == [len(g) for g in expected] == [1] * 6 + [2] * 3 + [6]
    assert [ids for _, ids in seen] == [set(g) for g in expected]
    assert [m.n_groups for m in result.per_k] == [6, 3, 1]
    assert len(editor.memory) == 1  # the editor's own memory never sees the test edits
    # with a perfect counterfactual model, every edit input is answered from its own edit
    assert all(m.es_edit == 1.0 for m in result.per_k)


def test_tuned_threshold_matches_the_editor_routing_at_that_threshold(tmp_path, scope):
    editor = make_editor(tmp_path, scope)
    records = synthetic_edits(8, seed=4)
    choice = tune_threshold(editor, records, 4, [0.2, 0.5, 0.9, 1.0], ProtocolOptions(seed=2, progress=False))
    assert [row["threshold"] for row in choice.table] == [0.2, 0.5, 0.9, 1.0]
    assert choice.value == max(row["value"] for row in choice.table) and choice.k == 4
    assert choice.threshold == 0.9  # untrained MiniLM: other subjects' questions score above 0.5
    never = choice.table[-1]  # threshold 1.0: nothing is routed to an edit
    assert (never["es"], never["dd"], never["recall"]) == (0.0, 0.0, 0.0)
    for row in choice.table:
        m = evaluate_editor(serac_method(editor, threshold=row["threshold"]), records, ks=[4],
                            options=ProtocolOptions(seed=2, progress=False)).at(4)
        assert (m.es, m.dd, m.recall, m.fpr) == pytest.approx((row["es"], row["dd"], row["recall"], row["fpr"]),
                                                              nan_ok=True)
    balanced = tune_threshold(editor, records, 1, [0.2, 0.5, 0.9], QUIET, objective="balanced")
    assert balanced.value == max(r["recall"] - r["fpr"] for r in balanced.table)
    assert all(math.isnan(r["es"]) for r in balanced.table)  # no answers generated for "balanced"


def test_evaluation_config_reads_params_and_checks_values(tmp_path):
    # Only the evaluation section of the repository's params.yaml: the others belong to other tests.
    section = yaml.safe_load((Path(__file__).parents[2] / "params.yaml").read_text())["evaluation"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"evaluation": section}))
    cfg = load_config(tmp_path / "params.yaml").evaluation
    assert cfg.ks[:5] == (1, 10, 100, 1000, "all") and 10000 in cfg.ks and "ft" in cfg.baselines
    assert 10000 in cfg.tune_ks and set(cfg.distractor_splits) <= {"val", "train"}
    with pytest.raises(ConfigError, match="ks"):
        EvaluationConfig(ks=(0,))
    with pytest.raises(ConfigError, match="tune_ks"):
        EvaluationConfig(tune_ks=(0,))
    with pytest.raises(ConfigError, match="distractor_splits"):
        EvaluationConfig(distractor_splits=("test",))
    with pytest.raises(ConfigError, match="baselines"):
        EvaluationConfig(baselines=("mend",))


def test_protocol_options_read_the_evaluation_section_under_the_protocols_names():
    from serac.config import EvaluationConfig

    cfg = EvaluationConfig(seed=4, max_groups_per_k=3, max_queries_per_k=50, batch_size=8)
    options = ProtocolOptions.of(cfg, progress=False)
    assert (options.seed, options.max_groups, options.max_queries, options.batch_size) == (4, 3, 50, 8)
    assert not options.progress and options.work_dir is None


def test_threshold_grid_is_refined_when_the_best_is_its_top(tmp_path, scope):
    editor = make_editor(tmp_path, scope)
    records = synthetic_edits(8, seed=4)
    choice = tune_threshold(editor, records, 4, [0.2, 0.5, 0.9], ProtocolOptions(seed=2, progress=False))
    thresholds = [row["threshold"] for row in choice.table]
    assert thresholds[:3] == [0.2, 0.5, 0.9] and len(thresholds) > 3  # 0.9 won on the grid (see above)
    assert thresholds[3:] == sorted(thresholds[3:]) and thresholds[3] == 0.95  # halving the distance to 1
    top = max(thresholds)
    assert choice.threshold < top or len(thresholds) == 3 + 6  # refined until the best is inside, or gave up
    assert choice.value == max(row["value"] for row in choice.table)


def test_quick_run_subsets_are_seeded_ordered_and_keep_both_ends_of_the_locality_list():
    from serac.evaluation.groups import cap_out_of_scope, subsample_edits

    records = synthetic_edits(30, seed=2)
    sub = subsample_edits(records, 8, seed=0)
    assert len(sub) == 8 and sub == subsample_edits(records, 8, seed=0) != subsample_edits(records, 8, seed=1)
    positions = [records.index(r) for r in sub]
    assert positions == sorted(positions)  # the records' order is kept
    assert subsample_edits(records, None, seed=0) == subsample_edits(records, 99, seed=0) == records
    r = EditRecord("qa", "q?", "L", out_of_scope=[Example(f"o{i}?", "x") for i in range(10)])
    capped = cap_out_of_scope([r, A], 3)
    assert [e.input for e in capped[0].out_of_scope] == ["o0?", "o4?", "o9?"]  # the last kind stays in
    assert capped[1] == A and cap_out_of_scope([r], None) == [r]
    with pytest.raises(ConfigError, match="max_edits_per_split"):
        EvaluationConfig(max_edits_per_split=0)
