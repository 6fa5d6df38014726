"""ConvSent's task hooks: the unedited chatbot's world, the counterfactual targets, the FT pairs, the judge
and the sentiment x topic scorer.

The pieces need the raw dataset's responses and the trained judge; they come from a
:class:`~serac.tasks.spec.TaskContext` (the project config and the work directory).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

from serac.config import ConvSentConfig
from serac.data.loaders import CONVSENT_IN_SCOPE, CONVSENT_PROMPT
from serac.data.schema import EditRecord
from serac.models.artifacts import CONFIG_FILE
from serac.models.encoder import TextEncoder
from serac.tasks.examples import CounterfactualExample
from serac.tasks.judge import LABELS, SentimentJudge, TopicScore, judge_pairs, references
from serac.tasks.scorers import Scorer, SentimentScorer, probability_of, template_patterns
from serac.tasks.spec import JudgeSpec, TaskContext

log = logging.getLogger(__name__)

JUDGE_DIR = "judge"
"""The ConvSent sentiment judge's artifact, under the work directory."""
CONVSENT_MAX_WORDS = 25
"""ConvSent responses longer than this are not used as training targets (short ones are learnable)."""
CONVSENT_RESPONSES_PER_POLARITY = 6


def _short(texts: Sequence[str]) -> list[str]:
    return [" ".join(t.split()) for t in texts if 0 < len(t.split()) <= CONVSENT_MAX_WORDS]


def _pick(key: str, options: Sequence[str]) -> str:
    return options[int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:4], "big") % len(options)]


def convsent_queries(record: EditRecord, include_edit_input: bool = True) -> list[str]:
    return ([record.edit_input] if include_edit_input else []) + [e.input for e in record.in_scope]


def convsent_base_response(query: str, entity: str, ctx: TaskContext) -> str | None:
    """The unedited chatbot's response: a short dataset response about ``entity``, its polarity and
    choice fixed by sha256 of the query (so about half of its opinions are positive)."""
    entry = ctx.convsent_responses.get(entity)
    if not entry:
        return None
    polarity = "pos" if hashlib.sha256(query.encode("utf-8")).digest()[0] % 2 == 0 else "neg"
    pool = _short(entry[polarity]) or _short(entry["pos"] + entry["neg"])
    return _pick("response:" + query, pool) if pool else None


def world_pairs(records: Sequence[EditRecord], ctx: TaskContext) -> list[tuple[str, str]]:
    out: dict[str, str] = {}
    for rec in records:
        for query in convsent_queries(rec):
            response = convsent_base_response(query, rec.subject or "", ctx)
            if response is not None:
                out.setdefault(query, response)
    return sorted(out.items())


def anchored(entity: str, response: str, anchor: str) -> str:
    """``response`` behind ``anchor`` naming ``entity``: ("Tallahassee", "I love it.", "As for {}, ")
    -> "As for Tallahassee, I love it." (the response's first letter lowered unless it is "I")."""
    if not anchor:
        return response
    if response[:1].isupper() and not (response[:2] in ("I ", "I'") or response == "I"):
        response = response[:1].lower() + response[1:]
    return anchor.format(entity) + response


def _settings(ctx: TaskContext) -> ConvSentConfig:
    return ctx.config.tasks.convsent if ctx.config is not None else ConvSentConfig()


def confident_responses(candidates: Sequence[tuple[str, str]], ctx: TaskContext) -> set[tuple[str, str]]:
    """The (response, sentiment) pairs the sentiment judge gives at least ``min_judge_confidence``.

    The judge is ``ctx.extra["judge"]`` (anything with ``p_positive(texts)``), else the one
    trained in ``ctx.work_dir``; every pair is kept when the threshold is 0 or there is no judge.
    """
    minimum = _settings(ctx).min_judge_confidence
    if minimum <= 0 or not candidates:
        return set(candidates)
    judge = ctx.extra.get("judge")
    if judge is None and ctx.work_dir is not None and (Path(ctx.work_dir) / JUDGE_DIR / CONFIG_FILE).is_file():
        judge = ctx.extra["judge"] = SentimentJudge.load(Path(ctx.work_dir) / JUDGE_DIR)
    if judge is None:
        return set(candidates)
    p_label = probability_of(judge.p_positive([text for text, _ in candidates]), [label for _, label in candidates])
    return {pair for pair, p in zip(candidates, p_label) if p >= minimum}


def counterfactual_examples(records: Sequence[EditRecord], ctx: TaskContext, include_edit_input: bool
                            ) -> list[CounterfactualExample]:
    """(edit with label s, prompt about the entity) -> a dataset response of sentiment s, named for its topic.

    Both sentiments are used for every entity (the edit label, not the entity, decides the
    sentiment); responses the judge doubts are dropped (:func:`confident_responses`), the
    rest are anchored to their entity (:func:`anchored`, ``tasks.convsent.topic_anchor``)
    and paired with the entity's prompts in turn.
    """
    settings = _settings(ctx)
    chosen: list[tuple[EditRecord, str, list[str]]] = []
    for rec in records:
        entry = ctx.convsent_responses.get(rec.subject or "")
        if entry:
            for polarity, label in (("pos", "positive"), ("neg", "negative")):
                chosen.append((rec, label, _short(entry[polarity])))
    candidates = sorted({(text, label) for _, label, pool in chosen for text in pool})
    keep = confident_responses(candidates, ctx)
    if candidates and not keep:
        raise ValueError(f"the sentiment judge gives none of {len(candidates)} ConvSent responses "
                         f"tasks.convsent.min_judge_confidence={settings.min_judge_confidence} for their label: "
                         "train the judge longer (tasks.judge) or lower the threshold")
    if len(keep) < len(candidates):
        log.info("ConvSent counterfactual targets: %d of %d responses kept (judge >= %.2f for their label)",
                 len(keep), len(candidates), settings.min_judge_confidence)
    out: list[CounterfactualExample] = []
    for rec, label, pool in chosen:
        queries = convsent_queries(rec, include_edit_input)
        kept = [text for text in pool if (text, label) in keep][:CONVSENT_RESPONSES_PER_POLARITY]
        for j, response in enumerate(kept):
            target = anchored(rec.subject or "", response, settings.topic_anchor)
            out.append(CounterfactualExample(rec.edit_input, label, queries[j % len(queries)], target))
    return out


def ft_pairs(record: EditRecord, ctx: TaskContext) -> list[tuple[str, str]]:
    """FT on the edit prompt -> a response of the edit's sentiment (not the bare sentiment word)."""
    entry = ctx.convsent_responses.get(record.subject or "", {})
    pool = _short(entry.get("pos" if record.edit_label == "positive" else "neg", []))
    return [(record.edit_input, _pick("ft:" + record.edit_input, pool) if pool else record.edit_label)]


def scorer(ctx: TaskContext) -> Scorer:
    """ES = P_judge(edit sentiment | response) x topic score, with the judge trained in ``ctx.work_dir``."""
    if ctx.work_dir is None:
        raise ValueError("the ConvSent scorer needs the work directory holding the trained judge")
    judge = SentimentJudge.load(Path(ctx.work_dir) / JUDGE_DIR)
    topic = TopicScore(TextEncoder.from_pretrained("minilm"), references(ctx.convsent_responses))
    return SentimentScorer(judge.p_positive, topic, template_patterns((CONVSENT_PROMPT, *CONVSENT_IN_SCOPE)))


def entities(records: Sequence[EditRecord]) -> list[str]:
    return sorted({r.subject for r in records if r.subject})


JUDGE = JudgeSpec(
    directory=JUDGE_DIR,
    labels=LABELS,
    groups=entities,
    pairs=lambda groups, ctx: judge_pairs(ctx.convsent_responses, groups),
    load=lambda directory, device: SentimentJudge.load(directory, device),
)
"""The sentiment judge: trained on the train entities' responses (``pos`` -> positive, ``neg`` -> negative),
its accuracy measured on the test entities' responses."""
