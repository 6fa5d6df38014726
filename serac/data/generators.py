"""Deterministic generators of the paper's harder edit scopes from QA / CounterFact edits.

Both generators take source records (task ``qa`` or ``fact``) and, for each, the
indices of its nearest other source records (``neighbours``; by default the
cosine of MiniLM embeddings of ``edit_input``, :func:`nearest_by_embedding`).
Nothing is random: the same records and neighbours always give the same output.

Claims are written by one template (:func:`claim`): a question keeps its question
mark and gets the answer appended (``"What is the product made by UniFirst? uniform"``),
a prompt gets the answer and a full stop (``"The mother tongue of X is French."``).

``qa_hard`` (:func:`qa_hard_record`): the edit is the source edit (question -> new
label). In scope: the rephrasing (-> new label) and the true/false questions the
edit implies, ``"t/f: <claim>"`` with the new label (-> ``true``) and with the old
label, the ground truth (-> ``false``), each for the question and its rephrasing.
Out of scope: the source's locality query, and *hard negatives*: the same
true/false pattern about each neighbour, with the neighbour's own answer
(-> ``true``) and with this edit's new label (-> ``false`` unless that is the
neighbour's answer).

``fc`` (:func:`fc_record`): the edit is a claim with its new truth value. Edits
are chosen by a hash of the source edit id (:func:`fc_asserts`) between *asserting* the new fact
(``"<prompt> <new>."`` -> ``true``; in scope: the rephrased claim -> ``true``, the
old claim and its rephrasing -> ``false``) and *retracting* the old one
(``"<prompt> <old>."`` -> ``false``; in scope: the rephrased old claim -> ``false``).
Out of scope: the locality claim with its answer (-> ``true``) and with another
object (-> ``false``), and each neighbour's true claim (-> ``true``).

Every in-scope true/false example is about the edit's new or old label, so its
answer before the edit is the negation of its answer after it:
:func:`pre_edit_pairs` gives the base model's training pairs by that rule.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import numpy as np

from serac.data.schema import EditRecord, Example

TF_PREFIX = "t/f: "
TRUE, FALSE = "true", "false"
TRUE_FALSE_TASKS = frozenset({"qa_hard", "fc"})
"""Tasks whose in-scope true/false answers flip with the edit (see :func:`pre_edit_pairs`)."""
GENERATED_TASKS = ("qa_hard", "fc")


def claim(prompt: str, answer: str) -> str:
    """A declarative claim from a question or prompt and an answer (see the module docstring)."""
    prompt, answer = " ".join(prompt.split()), " ".join(answer.split())
    if prompt.endswith("?"):
        return f"{prompt} {answer}"
    return f"{prompt} {answer}".rstrip(".") + "."


def tf_question(prompt: str, answer: str) -> str:
    """``t/f: <claim>``: is ``answer`` the answer to ``prompt``?"""
    return TF_PREFIX + claim(prompt, answer)


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def _usable(rec: EditRecord) -> bool:
    """A source edit the generators can use: a ground truth different from the new label."""
    return bool(rec.ground_truth) and not _same(rec.ground_truth, rec.edit_label)


def _rephrasing(rec: EditRecord) -> str | None:
    return next((e.input for e in rec.in_scope if e.label is not None), None)


def _unique(examples: Sequence[Example]) -> tuple[Example, ...]:
    seen: dict[str, Example] = {}
    for e in examples:
        seen.setdefault(e.input, e)
    return tuple(seen.values())


def qa_hard_record(rec: EditRecord, neighbours: Sequence[EditRecord]) -> EditRecord | None:
    """The QA-hard edit of one source edit (None when it has no usable ground truth)."""
    if not _usable(rec):
        return None
    new, old = rec.edit_label, rec.ground_truth
    assert old is not None
    rephrase = _rephrasing(rec)
    questions = [rec.edit_input] + ([rephrase] if rephrase else [])
    in_scope = [Example(rephrase, new)] if rephrase else []
    for q in questions:
        in_scope += [Example(tf_question(q, new), TRUE), Example(tf_question(q, old), FALSE)]
    out = [e for e in rec.out_of_scope if e.label is not None]
    for n in neighbours:
        if not n.ground_truth:
            continue
        out.append(Example(tf_question(n.edit_input, n.ground_truth), TRUE))
        if not _same(new, n.ground_truth):
            out.append(Example(tf_question(n.edit_input, new), FALSE))
    covered = {e.input for e in in_scope} | {rec.edit_input}
    return EditRecord(
        task="qa_hard", edit_input=rec.edit_input, edit_label=new, subject=rec.subject, ground_truth=old,
        in_scope=_unique(in_scope), out_of_scope=_unique([e for e in out if e.input not in covered]),
        source=rec.source, ingested_at=rec.ingested_at,
    )


def fc_asserts(rec: EditRecord) -> bool:
    """True when the fc edit of ``rec`` asserts the new fact, False when it retracts the old one
    (the first byte of sha256 over the source edit id is not a multiple of 3: about two thirds assert)."""
    return hashlib.sha256(rec.edit_id.encode("utf-8")).digest()[0] % 3 != 0


def fc_record(rec: EditRecord, neighbours: Sequence[EditRecord]) -> EditRecord | None:
    """The fact-checking edit of one source edit (None when it has no usable ground truth)."""
    if not _usable(rec):
        return None
    new, old = rec.edit_label, rec.ground_truth
    assert old is not None
    rephrase = _rephrasing(rec)
    if fc_asserts(rec):
        edit_input, label = claim(rec.edit_input, new), TRUE
        in_scope = [Example(claim(rephrase, new), TRUE)] if rephrase else []
        in_scope.append(Example(claim(rec.edit_input, old), FALSE))
        in_scope += [Example(claim(rephrase, old), FALSE)] if rephrase else []
    else:
        edit_input, label = claim(rec.edit_input, old), FALSE
        in_scope = [Example(claim(rephrase, old), FALSE)] if rephrase else []
    out: list[Example] = []
    for e in rec.out_of_scope:
        if e.label is None:
            continue
        out.append(Example(claim(e.input, e.label), TRUE))
        wrong = new if not _same(new, e.label) else old
        if not _same(wrong, e.label):
            out.append(Example(claim(e.input, wrong), FALSE))
    out += [Example(claim(n.edit_input, n.ground_truth), TRUE) for n in neighbours if n.ground_truth]
    covered = {e.input for e in in_scope} | {edit_input}
    return EditRecord(
        task="fc", edit_input=edit_input, edit_label=label, subject=rec.subject, ground_truth=old,
        in_scope=_unique(in_scope), out_of_scope=_unique([e for e in out if e.input not in covered]),
        source=rec.source, ingested_at=rec.ingested_at,
    )


GENERATORS: dict[str, Callable[[EditRecord, Sequence[EditRecord]], EditRecord | None]] = {
    "qa_hard": qa_hard_record,
    "fc": fc_record,
}
"""Generated task -> record generator ``(source record, its neighbours) -> record or None``."""


def nearest_by_embedding(embeddings: np.ndarray, k: int) -> list[list[int]]:
    """For each unit-norm row, the ``k`` most similar other rows, most similar first (ties by index)."""
    n = embeddings.shape[0]
    if k <= 0 or n < 2:
        return [[] for _ in range(n)]
    sims = embeddings @ embeddings.T
    np.fill_diagonal(sims, -np.inf)
    # a stable sort on the negated similarities: equal similarities keep index order
    order = np.argsort(-sims, axis=1, kind="stable")
    return order[:, : min(k, n - 1)].tolist()


def generate(
    task: str,
    records: Sequence[EditRecord],
    neighbours: Sequence[Sequence[int]],
) -> list[EditRecord]:
    """The ``task`` records of ``records`` (sources without a usable ground truth are skipped).

    ``neighbours[i]`` indexes the nearest other records of ``records[i]``.
    """
    if task not in GENERATORS:
        raise ValueError(f"no generator for task {task!r}; expected one of {sorted(GENERATORS)}")
    if len(neighbours) != len(records):
        raise ValueError(f"{len(records)} records but {len(neighbours)} neighbour lists")
    out = []
    for rec, near in zip(records, neighbours):
        made = GENERATORS[task](rec, [records[j] for j in near])
        if made is not None:
            out.append(made)
    return out


def pre_edit_pairs(record: EditRecord) -> list[tuple[str, str]]:
    """(query, answer) pairs of the world *before* the edit, for a pipeline-trained base model.

    For :data:`TRUE_FALSE_TASKS`: a true/false label (edit label or in-scope) flips, other
    in-scope queries get the ground truth (a QA-hard edit's own question and rephrasing),
    out-of-scope queries keep their labels. Other tasks: the ground truth for the edit input
    and every in-scope query (when known), and the out-of-scope labels.
    """
    flip = {TRUE: FALSE, FALSE: TRUE}
    pairs: list[tuple[str, str]] = []
    tf = record.task in TRUE_FALSE_TASKS
    for query, label in [(record.edit_input, record.edit_label)] + [(e.input, e.label) for e in record.in_scope]:
        if tf and label is not None and label.strip().lower() in flip:
            pairs.append((query, flip[label.strip().lower()]))
        elif record.ground_truth:
            pairs.append((query, record.ground_truth))
    pairs += [(e.input, e.label) for e in record.out_of_scope if e.label is not None]
    return pairs
