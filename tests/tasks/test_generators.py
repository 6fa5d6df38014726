"""QA-hard and fc generators on small fixed inputs with known outputs; their rows pass the task suites."""

from __future__ import annotations

import numpy as np
import pytest

from serac.config import ValidationConfig
from serac.data.generate import generate_dataset, interleave
from serac.data.generators import (
    claim,
    fc_asserts,
    fc_record,
    generate,
    nearest_by_embedding,
    pre_edit_pairs,
    qa_hard_record,
    tf_question,
)
from serac.data.prepare import read_split
from serac.data.schema import EditRecord, Example, records_to_table
from serac.data.validation import validate_records
from serac.io import write_parquet

LAWRENCE = EditRecord(
    "qa", "What type of vessel was USS Lawrence classified as?", "Gearing-class destroyer",
    subject="USS Lawrence", ground_truth="Paulding-class destroyer",
    in_scope=[Example("USS Lawrence was classified as what type of vessel?", "Gearing-class destroyer")],
    out_of_scope=[Example("who wrote hamlet", "Shakespeare")],
)
MAHAN = EditRecord(
    "qa", "What type of vessel was USS Mahan classified as?", "frigate", subject="USS Mahan",
    ground_truth="Mahan-class destroyer", in_scope=[Example("USS Mahan is what kind of vessel?", "frigate")],
    out_of_scope=[Example("capital of peru", "Lima")],
)
TONGUE = EditRecord(
    "fact", "The mother tongue of Danielle Darrieux is", "English", subject="Danielle Darrieux",
    ground_truth="French", in_scope=[Example("Danielle Darrieux, a native", "English")],
    out_of_scope=[Example("The mother tongue of Léon Blum is", "French")],
)


def test_claims_and_tf_questions():
    assert claim("What is the capital of Peru?", "Lima") == "What is the capital of Peru? Lima"
    assert claim("The mother tongue of  X is", "French") == "The mother tongue of X is French."
    assert tf_question("Was it?", "yes") == "t/f: Was it? yes"


def test_qa_hard_record_known_output():
    rec = qa_hard_record(LAWRENCE, [MAHAN])
    assert rec is not None and rec.task == "qa_hard"
    assert (rec.edit_input, rec.edit_label, rec.ground_truth) == (LAWRENCE.edit_input, "Gearing-class destroyer",
                                                                  "Paulding-class destroyer")
    q, r = LAWRENCE.edit_input, LAWRENCE.in_scope[0].input
    assert [(e.input, e.label) for e in rec.in_scope] == [
        (r, "Gearing-class destroyer"),
        (f"t/f: {q} Gearing-class destroyer", "true"),
        (f"t/f: {q} Paulding-class destroyer", "false"),
        (f"t/f: {r} Gearing-class destroyer", "true"),
        (f"t/f: {r} Paulding-class destroyer", "false"),
    ]
    m = MAHAN.edit_input
    assert [(e.input, e.label) for e in rec.out_of_scope] == [
        ("who wrote hamlet", "Shakespeare"),
        (f"t/f: {m} Mahan-class destroyer", "true"),        # hard negative: the neighbour's own fact
        (f"t/f: {m} Gearing-class destroyer", "false"),     # ... and this edit's label about the neighbour
    ]


def test_qa_hard_neighbour_sharing_the_new_label_is_not_a_false_claim():
    same = EditRecord("qa", "What type of vessel was USS Kidd?", "x", ground_truth="Gearing-class destroyer")
    rec = qa_hard_record(LAWRENCE, [same])
    assert [e.label for e in rec.out_of_scope if "Kidd" in e.input] == ["true"]


def test_generators_skip_edits_without_a_usable_ground_truth():
    assert qa_hard_record(EditRecord("qa", "q?", "a"), []) is None
    assert fc_record(EditRecord("qa", "q?", "a", ground_truth="A"), []) is None  # same as the label


def test_fc_record_asserting_and_retracting():
    rec = fc_record(TONGUE, [])
    if fc_asserts(TONGUE):
        assert (rec.edit_input, rec.edit_label) == ("The mother tongue of Danielle Darrieux is English.", "true")
        assert [(e.input, e.label) for e in rec.in_scope] == [
            ("Danielle Darrieux, a native English.", "true"),
            ("The mother tongue of Danielle Darrieux is French.", "false"),
            ("Danielle Darrieux, a native French.", "false"),
        ]
    else:
        assert (rec.edit_input, rec.edit_label) == ("The mother tongue of Danielle Darrieux is French.", "false")
        assert [(e.input, e.label) for e in rec.in_scope] == [("Danielle Darrieux, a native French.", "false")]
    assert [(e.input, e.label) for e in rec.out_of_scope] == [
        ("The mother tongue of Léon Blum is French.", "true"),
        ("The mother tongue of Léon Blum is English.", "false"),
    ]


def test_fc_asserts_both_ways_over_many_edits():
    flags = [fc_asserts(EditRecord("fact", f"p{i} is", f"a{i}", ground_truth="b")) for i in range(200)]
    assert 0.5 < np.mean(flags) < 0.85


def test_pre_edit_pairs_flip_true_false_and_keep_generation_truth():
    rec = qa_hard_record(LAWRENCE, [MAHAN])
    pairs = dict(pre_edit_pairs(rec))
    assert pairs[LAWRENCE.edit_input] == "Paulding-class destroyer"
    assert pairs[LAWRENCE.in_scope[0].input] == "Paulding-class destroyer"
    assert pairs[f"t/f: {LAWRENCE.edit_input} Gearing-class destroyer"] == "false"
    assert pairs[f"t/f: {LAWRENCE.edit_input} Paulding-class destroyer"] == "true"
    assert pairs[f"t/f: {MAHAN.edit_input} Mahan-class destroyer"] == "true"   # out of scope: unchanged
    fc = fc_record(TONGUE, [])
    fc_pairs = dict(pre_edit_pairs(fc))
    assert fc_pairs[fc.edit_input] == {"true": "false", "false": "true"}[fc.edit_label]
    assert fc_pairs["The mother tongue of Danielle Darrieux is French."] == "true"


def test_nearest_by_embedding_is_deterministic_with_index_tie_break():
    emb = np.array([[1, 0], [0.9, 0.436], [1, 0], [0, 1]], dtype=np.float32)
    assert nearest_by_embedding(emb, 2) == [[2, 1], [0, 2], [0, 1], [1, 0]]
    assert nearest_by_embedding(emb[:1], 2) == [[]]


def test_generate_uses_the_given_neighbours():
    out = generate("qa_hard", [LAWRENCE, MAHAN], [[1], [0]])
    assert [r.edit_input for r in out] == [LAWRENCE.edit_input, MAHAN.edit_input]
    assert any("USS Lawrence" in e.input for e in out[1].out_of_scope)
    with pytest.raises(ValueError):
        generate("convsent", [LAWRENCE], [[]])


def test_generated_rows_pass_the_task_suites():
    cfg = ValidationConfig()
    for task, records in (("qa_hard", generate("qa_hard", [LAWRENCE, MAHAN, TONGUE], [[1], [0], [0]])),
                          ("fc", generate("fc", [LAWRENCE, MAHAN, TONGUE], [[1], [0], [0]]))):
        report = validate_records(records, [], cfg, task=task)
        assert report.rows_in == 3 and len(report.passed) == 3, report.reason_counts
    bad = [EditRecord("fc", "a claim.", "maybe", in_scope=[Example("x.", "true")])]
    assert validate_records(bad, [], cfg, task="fc").reason_counts  # the fc label set is enforced


def test_generate_dataset_interleaves_sources_and_keeps_splits(tmp_path):
    for source, recs in (("zsre", [LAWRENCE, MAHAN]), ("counterfact", [TONGUE])):
        for split in ("train", "val", "test"):
            write_parquet(tmp_path / source / f"{split}.parquet", records_to_table(recs if split == "train" else []))

    def encode(texts):  # a fake encoder: one-hot by position (no model load)
        return np.eye(len(texts), dtype=np.float32)

    report = generate_dataset("fc", ["zsre", "counterfact"], tmp_path, neighbours=1, encode=encode)
    assert report.splits == {"train": 3, "val": 0, "test": 0}
    made = read_split(tmp_path, "fc", "train")
    assert [r.subject for r in made] == ["USS Lawrence", "Danielle Darrieux", "USS Mahan"]
    assert interleave([[1, 2, 3], [4]]) == [1, 4, 2, 3]
