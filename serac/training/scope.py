"""Train the scope classifier (paper, sec. 3.2): balanced binary cross-entropy.

Positives: (edit, in-scope query), the edit input included. Negatives: the
edit's out-of-scope queries, hard negatives (inputs of the nearest other edits
by embedding), same-subject / other-relation queries (:mod:`serac.data.relations`)
and, for the embedding classifier, in-batch negatives (every other edit of the
batch against each positive query). Positives, explicit negatives and
in-batch negatives are averaged separately and weighted equally
(:func:`explicit_and_inbatch_bce`), so neither can the negative majority drown
the positives nor the easy in-batch negatives the hard ones. The cross-encoder
(kinds ``rerank`` and ``cross_encoder``) reads aligned pairs; its loss weighs
positives, generated negatives and the dataset's locality queries equally
(:func:`positive_hard_easy_bce`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from serac.config import TrainConfig
from serac.data.relations import TemplateBank, mine_templates, same_subject_queries
from serac.data.schema import EditRecord
from serac.metrics import scope_metrics
from serac.models.scope import CrossEncoderScope, EmbeddingScope, ScopeClassifier
from serac.training.examples import ScopePair, nearest_neighbours, scope_pairs
from serac.training.loop import TrainHook, TrainResult, train_loop


def balanced_bce(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean BCE over positives plus mean BCE over negatives, halved (terms absent from the batch drop out)."""
    losses = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    keep = torch.ones_like(targets, dtype=torch.bool) if mask is None else mask
    pos, neg = keep & (targets > 0.5), keep & (targets <= 0.5)
    terms = [losses[m].mean() for m in (pos, neg) if m.any()]
    return torch.stack(terms).mean()


def inbatch_targets(queries: Sequence[str], edit_ids: Sequence[int], positives: Sequence[set[str]]) -> torch.Tensor:
    """``[n_queries, n_edits]`` targets: 1 where the query is in the scope of that column's edit."""
    return torch.tensor([[float(q in positives[e]) for e in edit_ids] for q in queries])


def build_pairs(scope: EmbeddingScope, records: Sequence[EditRecord], hard_negatives: int,
                relation_negatives: int = 0, bank: TemplateBank | None = None, seed: int = 0) -> list[ScopePair]:
    """Training pairs, with hard negatives found by the (current) embedding of each edit, and
    ``relation_negatives`` same-subject / other-relation queries per edit from ``bank``
    (default: mined from ``records``)."""
    neighbours = None
    if hard_negatives > 0 and len(records) > 1:
        neighbours = distinct_neighbours(scope, records, hard_negatives)
    extra = None
    if relation_negatives > 0:
        extra = same_subject_queries(records, bank or mine_templates(records), relation_negatives, seed)
    return scope_pairs(records, neighbours, extra)


def distinct_neighbours(scope: EmbeddingScope, records: Sequence[EditRecord], k: int) -> list[list[int]]:
    """:func:`nearest_neighbours` of each record among the *distinct* edits (upsampled copies share one row)."""
    first: dict[str, int] = {}
    for i, r in enumerate(records):
        first.setdefault(r.edit_id, i)
    rows = list(first.values())
    near = nearest_neighbours(scope.embed_edits([records[i] for i in rows]), k)
    by_id = {records[i].edit_id: [rows[j] for j in near[n]] for n, i in enumerate(rows)}
    return [by_id[r.edit_id] for r in records]


def scope_eval_fn(scope: ScopeClassifier, records: Sequence[EditRecord], pairs: Sequence[ScopePair], threshold: float):
    """Closure computing recall / FPR / AUROC and balanced accuracy on held-out pairs."""
    edit_texts = [scope.edit_text(r) for r in records]

    def evaluate() -> dict[str, float]:
        texts = [edit_texts[p.edit] for p in pairs]
        queries = [p.query for p in pairs]
        if scope.cross is not None and scope.config.kind != "embedding":
            probs = scope.cross.score(texts, queries)
        else:
            e = scope.embedding.embed_edits(texts)
            q = scope.embedding.embed_queries(queries)
            probs = scope.embedding.probs_from_cosine(np.sum(e * q, axis=1))
        m = scope_metrics(probs, [p.in_scope for p in pairs], threshold)
        m["balanced_acc"] = 0.5 * (m["recall"] + 1.0 - m["fpr"])
        return m

    return evaluate


SCOPE_PARTS = ("embedding", "cross")


@dataclass(frozen=True)
class ScopeSetup:
    """What both scope trainings start from: the edits as text and the train / validation pairs."""

    edit_texts: list[str]
    pairs: list[ScopePair]
    val_pairs: list[ScopePair]

    @classmethod
    def of(cls, scope: ScopeClassifier, records: Sequence[EditRecord], val_records: Sequence[EditRecord],
           hard_negatives: int, relation_negatives: int = 0, seed: int = 0) -> ScopeSetup:
        """Pairs with hard negatives found by the scope's current embedding (the trained one for the
        cross-encoder); same-subject negatives of both splits from templates mined on ``records``."""
        emb = scope.embedding
        bank = mine_templates(records) if relation_negatives > 0 else None
        return cls(emb.edit_texts(records),
                   build_pairs(emb, records, hard_negatives, relation_negatives, bank, seed),
                   build_pairs(emb, val_records, hard_negatives, relation_negatives, bank, seed))


def train_scope_part(
    scope: ScopeClassifier,
    part: str,
    records: Sequence[EditRecord],
    val_records: Sequence[EditRecord],
    cfg: TrainConfig,
    out_dir: str | Path,
    *,
    hard_negatives: int = 2,
    relation_negatives: int = 0,
    threshold: float = 0.5,
    hooks: Sequence[TrainHook] = (),
) -> TrainResult:
    """Train one part of the scope classifier on the same kind of pairs, selected by balanced accuracy on val.

    ``embedding``: the encoder and calibration scalars, with in-batch negatives, judged by the
    embedding alone. ``cross``: the cross-encoder, hard negatives from the (trained) embedding,
    judged by the whole classifier.
    """
    if part not in SCOPE_PARTS:
        raise ValueError(f"scope part must be one of {SCOPE_PARTS}, got {part!r}")
    if part == "cross" and scope.cross is None:
        raise ValueError(f"scope kind {scope.config.kind!r} has no cross-encoder to train")
    setup = ScopeSetup.of(scope, records, val_records, hard_negatives, relation_negatives, cfg.seed)
    if part == "embedding":
        module, judged_by, loss_fn = scope.embedding, _embedding_only(scope), _embedding_loss(scope, records, setup)
        param_groups = module.param_groups(cfg.lr, cfg.scalar_lr, cfg.weight_decay)
    else:
        assert scope.cross is not None
        module, judged_by, loss_fn = scope.cross, scope, _cross_loss(scope.cross, setup)
        param_groups = [{"params": list(module.parameters()), "lr": cfg.lr}]
    return train_loop(
        module,
        param_groups,
        loss_fn,
        len(setup.pairs),
        cfg,
        Path(out_dir),
        eval_fn=scope_eval_fn(judged_by, val_records, setup.val_pairs, threshold) if setup.val_pairs else None,
        eval_metric="balanced_acc",
        higher_is_better=True,
        hooks=hooks,
        desc="scope (embedding)" if part == "embedding" else "scope (cross-encoder)",
    )


def _embedding_loss(scope: ScopeClassifier, records: Sequence[EditRecord], setup: ScopeSetup):
    emb = scope.embedding
    positives = [{r.edit_input, *(e.input for e in r.in_scope)} for r in records]

    def loss_fn(indices: list[int]) -> torch.Tensor:
        batch = [setup.pairs[i] for i in indices]
        queries = [p.query for p in batch]
        edit_ids = [p.edit for p in batch]
        # every (query, edit) combination of the batch: the explicit pairs on the diagonal,
        # in-batch negatives elsewhere; a cell is positive iff the query is in that edit's scope
        logits = emb.logit_matrix([setup.edit_texts[e] for e in edit_ids], queries)
        targets = inbatch_targets(queries, edit_ids, positives).to(logits.device)
        return explicit_and_inbatch_bce(logits, targets)

    return loss_fn


def explicit_and_inbatch_bce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """BCE of a ``[n, n]`` in-batch matrix whose diagonal holds the explicit pairs, as the mean of
    three terms: positives (every positive cell), the explicit negatives on the diagonal (locality
    prompts, nearest other edits, same-subject / other-relation queries) and the off-diagonal
    in-batch negatives. Averaging the ~n^2 easy in-batch cells with the n hard ones in one term
    (``balanced_bce`` over the matrix) lets the hard negatives weigh ~1/n of the negative loss: the
    classifier then learns "same subject => in scope", the failure the hard negatives are there to fix.
    """
    losses = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    diagonal = torch.eye(logits.shape[0], logits.shape[1], dtype=torch.bool, device=logits.device)
    positive = targets > 0.5
    masks = (positive, diagonal & ~positive, ~diagonal & ~positive)
    terms = [losses[m].mean() for m in masks if m.any()]
    return torch.stack(terms).mean()


def positive_hard_easy_bce(logits: torch.Tensor, pairs: Sequence[ScopePair]) -> torch.Tensor:
    """BCE of aligned pairs as the mean of three terms: positives, generated (hard) negatives and the
    dataset's own out-of-scope queries; a term absent from the batch drops out. The generated
    negatives (nearest other edits, same-subject / other-relation queries) are a few per edit
    beside many easy locality queries: in one negative term they would barely count."""
    losses = F.binary_cross_entropy_with_logits(
        logits, torch.tensor([float(p.in_scope) for p in pairs], device=logits.device), reduction="none")
    kinds = [[p.in_scope for p in pairs], [not p.in_scope and p.hard for p in pairs],
             [not p.in_scope and not p.hard for p in pairs]]
    masks = [torch.tensor(k, dtype=torch.bool, device=logits.device) for k in kinds]
    return torch.stack([losses[m].mean() for m in masks if m.any()]).mean()


def _cross_loss(cross: CrossEncoderScope, setup: ScopeSetup):
    def loss_fn(indices: list[int]) -> torch.Tensor:
        batch = [setup.pairs[i] for i in indices]
        logits = cross.logits([setup.edit_texts[p.edit] for p in batch], [p.query for p in batch])
        return positive_hard_easy_bce(logits, batch)

    return loss_fn


def _embedding_only(scope: ScopeClassifier) -> ScopeClassifier:
    """A view of ``scope`` scored by its embedding part alone (for the embedding run's eval)."""
    return ScopeClassifier(replace(scope.config, kind="embedding"), scope.embedding, None)
