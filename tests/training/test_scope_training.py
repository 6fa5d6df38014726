import pytest
import torch

from serac.config import ScopeConfig, TrainConfig
from serac.data.synthetic import synthetic_edits
from serac.models.encoder import TextEncoder
from serac.models.scope import CrossEncoderScope, EmbeddingScope, ScopeClassifier
from serac.training.examples import ScopePair
from serac.training.scope import (
    SCOPE_PARTS,
    balanced_bce,
    explicit_and_inbatch_bce,
    inbatch_targets,
    positive_hard_easy_bce,
    train_scope_part,
)


def test_balanced_bce_weights_classes_equally():
    # one positive predicted badly, many negatives predicted well: the positive term still counts half
    logits = torch.tensor([-3.0] + [-5.0] * 99)
    targets = torch.tensor([1.0] + [0.0] * 99)
    loss = balanced_bce(logits, targets)
    pos = torch.nn.functional.softplus(torch.tensor(3.0))
    neg = torch.nn.functional.softplus(torch.tensor(-5.0))
    assert loss.item() == pytest.approx(((pos + neg) / 2).item(), rel=1e-5)
    only_neg = balanced_bce(torch.tensor([-5.0, -5.0]), torch.tensor([0.0, 0.0]))
    assert only_neg.item() == pytest.approx(neg.item(), rel=1e-5)


def test_inbatch_targets_mark_every_edit_whose_scope_holds_the_query():
    positives = [{"q0", "r0"}, {"q1"}, {"q0"}]  # edit 2 shares the query "q0" with edit 0
    t = inbatch_targets(["q0", "q1", "loc"], [0, 1, 2], positives)
    assert t.tolist() == [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]


def tiny_scope(kind: str) -> ScopeClassifier:
    from tiny import minilm_tokenizer, tiny_bert_config

    torch.manual_seed(0)
    embedding = EmbeddingScope(TextEncoder.from_config(tiny_bert_config(), minilm_tokenizer(), max_length=32))
    cross = (CrossEncoderScope.from_config(tiny_bert_config(), minilm_tokenizer(), max_length=48)
             if kind != "embedding" else None)
    return ScopeClassifier(ScopeConfig(kind=kind), embedding, cross)


def test_both_scope_parts_train_through_one_setup_and_select_on_val(tmp_path):
    records, val = synthetic_edits(6, seed=1), synthetic_edits(3, seed=2)
    cfg = TrainConfig(max_steps=2, batch_size=4, warmup_steps=0, eval_every=1, checkpoint_every=1000)
    scope = tiny_scope("rerank")
    before = [p.detach().clone() for p in scope.cross.parameters()]
    for part in SCOPE_PARTS:
        result = train_scope_part(scope, part, records, val, cfg, tmp_path / part, hard_negatives=1)
        assert result.steps == 2 and result.best_metric is not None  # balanced accuracy on the val pairs
    assert any(not torch.equal(a, b) for a, b in zip(before, scope.cross.parameters()))
    with pytest.raises(ValueError, match="no cross-encoder"):
        train_scope_part(tiny_scope("embedding"), "cross", records, val, cfg, tmp_path / "x")
    with pytest.raises(ValueError, match="scope part"):
        train_scope_part(scope, "decoder", records, val, cfg, tmp_path / "y")


def test_hard_negatives_weigh_a_third_of_the_loss_whatever_the_batch_size():
    import torch.nn.functional as F

    for n in (4, 32):
        targets = torch.zeros(n, n)
        targets[0, 0] = 1.0  # one explicit positive; the other diagonal cells are explicit (hard) negatives
        logits = torch.full((n, n), -8.0)  # every in-batch negative is easy
        logits[0, 0] = 8.0
        logits[1, 1] = 2.0  # one hard negative the classifier gets wrong
        hard = F.binary_cross_entropy_with_logits(logits.diagonal()[1:], targets.diagonal()[1:])
        easy = F.binary_cross_entropy_with_logits(torch.tensor(-8.0), torch.tensor(0.0))
        pos = F.binary_cross_entropy_with_logits(torch.tensor(8.0), torch.tensor(1.0))
        assert explicit_and_inbatch_bce(logits, targets) == pytest.approx(float(pos + hard + easy) / 3, rel=1e-5)
        # the matrix-wide balanced loss lets the n^2 easy cells dilute the hard one
        assert balanced_bce(logits, targets) < explicit_and_inbatch_bce(logits, targets)


def test_cross_loss_weighs_generated_negatives_a_third_however_few_they_are():
    import torch.nn.functional as F

    pairs = ([ScopePair(0, "rephrase", True)] + [ScopePair(0, "same subject", False, hard=True)]
             + [ScopePair(0, f"locality {i}", False) for i in range(30)])
    logits = torch.tensor([6.0, 1.0] + [-6.0] * 30)  # the one generated negative is wrong
    bce = F.binary_cross_entropy_with_logits
    expected = (bce(torch.tensor(6.0), torch.tensor(1.0)) + bce(torch.tensor(1.0), torch.tensor(0.0))
                + bce(torch.tensor(-6.0), torch.tensor(0.0))) / 3
    assert positive_hard_easy_bce(logits, pairs) == pytest.approx(float(expected), rel=1e-5)
    targets = torch.tensor([float(p.in_scope) for p in pairs])
    assert balanced_bce(logits, targets) < positive_hard_easy_bce(logits, pairs)  # diluted by the 30 easy ones
    no_hard = positive_hard_easy_bce(logits[[0, 2]], [pairs[0], pairs[2]])
    assert no_hard == pytest.approx(float(bce(torch.tensor(6.0), torch.tensor(1.0))
                                          + bce(torch.tensor(-6.0), torch.tensor(0.0))) / 2, rel=1e-5)
