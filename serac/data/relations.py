"""Same-subject / other-relation scope negatives, mined from the edits themselves.

CounterFact's locality prompts share an edit's relation but not its subject, zsRE's are
unrelated questions: neither teaches the scope classifier that "Where did Boris Johnson
go to university?" is *out* of scope of "Who is the UK PM? -> Boris Johnson". This module
builds such queries from the data, deterministically:

1. :func:`mine_templates`: every edit input (and labelled rephrasing) that contains its
   record's subject becomes a relation template by putting ``{}`` where the subject was
   ("The Space Needle is located in" -> "{} is located in"). A template remembers the
   answers seen with it (edit labels and ground truths, normalised).
2. Templates are grouped into *answer-type clusters*: two templates whose answer sets share
   at least one answer are linked (union-find), so "{} is located in", "{}, which is
   located in" and "In which country is {}?" end up together, and so do most templates of
   relations with the same kind of answer (countries, cities, languages, ...). The
   clusters over-merge on purpose: a merged pair of relations only costs negatives.
3. :func:`same_subject_queries`: for each edit, templates are tried in a seeded order (a
   pure function of ``seed`` and the edit id) and the first ``per_edit`` that are safely of
   *another* relation are filled with the edit's subject. Safe means all of: a different
   cluster from every template of the edit's own inputs; none of the template's answers is
   the edit's label or ground truth; no content word in common with the edit's own
   templates (after :data:`STOPWORDS`, compared by their first :data:`STEM_CHARS` letters, so
   "The location of {} is" is not a negative of "{} is located in"); at least one content word
   in the template ("{} is in", "{}, from" name no relation: "Smirnoff is in" may well ask
   where Smirnoff was founded); seen at least ``min_count`` times (answer sets of one-off
   templates are too thin to trust); and the query is none of the edit's in-scope inputs.
   An edit whose own templates have no content word at all ("Hinkley Glacier, in -> Europe")
   gets no queries: nothing in its wording tells which relations are other ones.

Records without a subject, or whose subject does not occur in their input, get no
queries. Mining on the training edits and filling with a held-out edit's subject gives a
locality set for evaluation (:mod:`serac.evaluation.locality`).
"""

from __future__ import annotations

import re
import zlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from serac.data.schema import EditRecord
from serac.metrics import normalize_answer

SLOT = "{}"

STOPWORDS = frozenset(
    "a an the of in on at to by for from with as and or is are was were be been being has have had does do did "
    "what which who whom whose when where why how that this it its their they them he she his her there "
    "one some any can could will would may might shall should into onto than then also".split()
)
"""Function words ignored when comparing two templates' wording."""

STEM_CHARS = 5
"""Content words are compared by this many leading letters: a crude stem that makes "located",
"location" and "locations" (or "originates" / "originally") one word. Merging unrelated words
("counter" / "country") only costs negatives; missing a stem makes a same-relation rewording a
wrong negative."""

_WORD = re.compile(r"[a-z]+")


@dataclass(frozen=True)
class RelationTemplate:
    """A prompt or question with ``{}`` in place of the subject, and what was seen with it."""

    text: str
    answers: frozenset[str]
    """Normalised labels and ground truths of the edits it came from."""
    count: int
    """Edits it was mined from."""
    cluster: int
    """Answer-type cluster (templates linked by a shared answer)."""

    def words(self) -> frozenset[str]:
        return content_stems(self.text)

    def fill(self, subject: str) -> str:
        return self.text.replace(SLOT, subject, 1)


def content_words(text: str) -> frozenset[str]:
    """Lower-case alphabetic words of ``text`` that are not :data:`STOPWORDS`."""
    return frozenset(w for w in _WORD.findall(text.lower()) if w not in STOPWORDS)


def content_stems(text: str) -> frozenset[str]:
    """The :func:`content_words` of ``text`` cut to their first :data:`STEM_CHARS` letters."""
    return frozenset(w[:STEM_CHARS] for w in content_words(text))


def subject_template(text: str, subject: str | None) -> str | None:
    """``text`` with the first occurrence of ``subject`` replaced by ``{}``; None when it does not occur."""
    if not subject or subject not in text or SLOT in text:
        return None
    template = text.replace(subject, SLOT, 1)
    return template if template.strip() != SLOT else None


def record_templates(record: EditRecord, *, rephrasings: bool = True) -> list[str]:
    """The templates of a record's own inputs: its edit input and (``rephrasings``) labelled in-scope queries."""
    texts = [record.edit_input]
    if rephrasings:
        texts += [e.input for e in record.in_scope if e.label is not None]
    out = [subject_template(t, record.subject) for t in texts]
    return list(dict.fromkeys(t for t in out if t is not None))


def _record_answers(record: EditRecord) -> set[str]:
    return {normalize_answer(a) for a in (record.edit_label, record.ground_truth) if a} - {""}


@dataclass(frozen=True)
class TemplateBank:
    """Mined templates: the trusted ones (negative sources) and the answer-type clusters of all."""

    templates: tuple[RelationTemplate, ...]
    """Templates seen at least ``min_count`` times, each with its cluster id."""
    cluster_answers: dict[int, frozenset[str]]
    """Every answer seen with a cluster's templates."""
    weak_links: dict[str, frozenset[int]]
    """Rarer templates -> the clusters they share an answer with (they join none: no bridging)."""

    @cached_property
    def _cluster_of(self) -> dict[str, int]:
        return {t.text: t.cluster for t in self.templates}

    def clusters_of(self, template: str) -> frozenset[int]:
        """The cluster of a trusted template, or the clusters a rarer one is linked to (empty: unknown)."""
        cluster = self._cluster_of.get(template)
        return frozenset({cluster}) if cluster is not None else self.weak_links.get(template, frozenset())


def mine_templates(records: Sequence[EditRecord], *, min_count: int = 2, min_shared: int = 2) -> TemplateBank:
    """Relation templates of the edit inputs of ``records`` (rephrasings carry noisy prefixes: not mined).

    Templates seen at least ``min_count`` times are clustered: two are linked when their answer
    sets share ``min_shared`` answers (union-find). Rarer templates attach to every cluster they
    share one answer with, without joining clusters together.
    """
    answers: dict[str, set[str]] = defaultdict(set)
    counts: dict[str, int] = defaultdict(int)
    for rec in records:
        seen = _record_answers(rec)
        for template in record_templates(rec, rephrasings=False):
            answers[template] |= seen
            counts[template] += 1
    strong = sorted(t for t in answers if counts[t] >= min_count)
    parent = list(range(len(strong)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    holders: dict[str, list[int]] = defaultdict(list)
    for i, text in enumerate(strong):
        for answer in answers[text]:
            holders[answer].append(i)
    shared: dict[tuple[int, int], int] = defaultdict(int)
    for idxs in holders.values():
        for a in range(len(idxs)):
            for b in range(a + 1, len(idxs)):
                shared[(idxs[a], idxs[b])] += 1
    for (i, j), n in sorted(shared.items()):
        if n >= min_shared:
            ri, rj = find(i), find(j)
            if ri != rj:
                parent[max(ri, rj)] = min(ri, rj)
    templates = tuple(RelationTemplate(t, frozenset(answers[t]), counts[t], find(i)) for i, t in enumerate(strong))
    cluster_answers: dict[int, set[str]] = defaultdict(set)
    for t in templates:
        cluster_answers[t.cluster] |= t.answers
    answer_clusters: dict[str, set[int]] = defaultdict(set)
    for cluster, values in cluster_answers.items():
        for answer in values:
            answer_clusters[answer].add(cluster)
    weak = {t: frozenset().union(*(answer_clusters.get(a, set()) for a in answers[t]))
            for t in sorted(answers) if counts[t] < min_count}
    return TemplateBank(templates, {c: frozenset(v) for c, v in cluster_answers.items()}, weak)


def _stable_seed(edit_id: str) -> int:
    return zlib.crc32(edit_id.encode("utf-8"))


def same_subject_queries(
    records: Sequence[EditRecord], bank: TemplateBank, per_edit: int, seed: int = 0
) -> list[list[str]]:
    """Up to ``per_edit`` same-subject / other-relation queries per record (see the module doc).

    A pure function of its arguments: the order of ``records`` does not change any record's queries.
    """
    if per_edit <= 0:
        return [[] for _ in records]
    pool = sorted(bank.templates, key=lambda t: t.text)
    pool_words = [t.words() for t in pool]  # once, not per record and candidate
    out: list[list[str]] = []
    for rec in records:
        own = record_templates(rec)
        if not rec.subject or not own:
            out.append([])
            continue
        own_clusters = frozenset().union(*(bank.clusters_of(t) for t in own))
        own_words = frozenset().union(*(content_stems(t) for t in own))
        if not own_words:  # "{}, in", "{} is from": the wording names no relation, so none is safely another
            out.append([])
            continue
        banned_answers = _record_answers(rec)
        in_scope = {rec.edit_input, *(e.input for e in rec.in_scope)}
        queries: list[str] = []
        order = np.random.default_rng([seed, _stable_seed(rec.edit_id)]).permutation(len(pool))
        for idx in order:
            t = pool[int(idx)]
            if (t.cluster in own_clusters or t.text in own or bank.cluster_answers[t.cluster] & banned_answers
                    or not pool_words[int(idx)] or pool_words[int(idx)] & own_words):
                continue
            query = t.fill(rec.subject)
            if query in in_scope or query in queries:
                continue
            queries.append(query)
            if len(queries) == per_edit:
                break
        out.append(queries)
    return out


__all__ = ["STEM_CHARS", "STOPWORDS", "RelationTemplate", "TemplateBank", "content_stems", "content_words",
           "mine_templates", "record_templates", "same_subject_queries", "subject_template"]
