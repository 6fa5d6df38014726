import pytest
import torch

from serac.training.scope import balanced_bce, inbatch_targets


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
