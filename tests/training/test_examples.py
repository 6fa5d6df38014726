import numpy as np

from serac.data.schema import EditRecord, Example
from serac.tasks.examples import base_examples, counterfactual_examples
from serac.training.examples import nearest_neighbours, scope_pairs


def _records():
    a = EditRecord("qa", "Who leads the UK?", "Boris Johnson", ground_truth="Theresa May",
                   in_scope=[Example("Who is the UK prime minister?", "Boris Johnson")],
                   out_of_scope=[Example("Who leads France?", "Macron")])
    b = EditRecord("qa", "Capital of Peru?", "Cusco", ground_truth="Lima",
                   in_scope=[Example("What is Peru's capital?", "Cusco")],
                   out_of_scope=[Example("Capital of Chile?", "Santiago")])
    return [a, b]


def test_scope_pairs_positives_negatives_and_hard_negatives():
    recs = _records()
    pairs = scope_pairs(recs, neighbours=[[1], [0]])
    pos0 = {p.query for p in pairs if p.edit == 0 and p.in_scope}
    neg0 = {p.query for p in pairs if p.edit == 0 and not p.in_scope}
    assert pos0 == {"Who leads the UK?", "Who is the UK prime minister?"}
    assert neg0 == {"Who leads France?", "Capital of Peru?", "What is Peru's capital?"}
    assert not pos0 & neg0


def test_hard_negative_never_contradicts_a_positive():
    a = EditRecord("qa", "same question", "x", in_scope=[Example("shared", "x")])
    b = EditRecord("qa", "other", "y", in_scope=[Example("shared", "y")])
    pairs = scope_pairs([a, b], neighbours=[[1], [0]])
    assert not any(p.query == "shared" and not p.in_scope for p in pairs)


def test_counterfactual_and_base_examples():
    recs = _records()
    cf = counterfactual_examples(recs)
    assert {(e.query, e.target) for e in cf if e.edit_label == "Cusco"} == {
        ("Capital of Peru?", "Cusco"), ("What is Peru's capital?", "Cusco")}
    base = dict(base_examples(recs))
    assert base["What is Peru's capital?"] == "Lima" and base["Capital of Chile?"] == "Santiago"


def test_nearest_neighbours_excludes_self():
    e = np.eye(4, dtype=np.float32)
    e[1] = e[0] * 0.9 + e[1] * 0.1
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    nn = nearest_neighbours(e, 1)
    assert nn[0] == [1] and nn[1] == [0] and all(i not in row for i, row in enumerate(nn))


def test_label_swap_examples_make_the_answer_depend_on_the_edit():
    from serac.tasks.examples import CounterfactualExample
    from serac.training.examples import label_swap_examples

    base = [
        CounterfactualExample("Capital of A?", "Paris", "A's capital?", "Paris"),
        CounterfactualExample("Capital of B?", "Rome", "B's capital?", "Rome"),
        CounterfactualExample("Capital of C?", "Oslo", "C's capital?", "Oslo"),
        CounterfactualExample("Is A big?", "big", "A big?", "true"),  # target is not the label: skipped
    ]
    swapped = label_swap_examples(base, copies=3, seed=0)
    assert len(swapped) == 9
    for ex in swapped:
        assert ex.target == ex.edit_label                       # still answered by the edit
        assert ex.edit_label in {"Paris", "Rome", "Oslo", "big"}
    by_query = {q: {e.edit_label for e in swapped if e.query == q} for q in ("A's capital?", "B's capital?")}
    assert "Paris" not in by_query["A's capital?"] and "Rome" not in by_query["B's capital?"]
    assert swapped == label_swap_examples(base, copies=3, seed=0)  # deterministic (exact resume)
    assert label_swap_examples(base, copies=0, seed=0) == []


def test_extra_negatives_join_the_pairs_and_upsampled_copies_are_no_hard_negative():
    a, b = _records()
    pairs = scope_pairs([a, b, a], neighbours=[[2, 1], [0], [0, 1]],
                        extra_negatives=[["Where did Boris Johnson study?", "Who leads the UK?"], [], []])
    neg0 = [p.query for p in pairs if p.edit == 0 and not p.in_scope]
    assert "Where did Boris Johnson study?" in neg0
    assert "Who leads the UK?" not in neg0  # an extra negative that is a positive is dropped
    # edit 2 is a copy of edit 0: its inputs are positives of edit 0, never its hard negatives
    assert neg0 == ["Who leads France?", "Where did Boris Johnson study?", "Capital of Peru?",
                    "What is Peru's capital?"]
    # the dataset's own out-of-scope query is easy; generated ones (extra, nearest edits) are hard
    assert [p.hard for p in pairs if p.edit == 0 and not p.in_scope] == [False, True, True, True]
    assert not any(p.hard for p in pairs if p.in_scope)
