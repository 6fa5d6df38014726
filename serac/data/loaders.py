"""Load real edit datasets into :class:`EditRecord`s, one registered format each.

:data:`FORMATS` maps a format name to its :class:`FormatSpec`: the fields that
identify it, its task and its converter. :func:`detect_format` picks a format
from the fields a file uses; :func:`load_file` reads a file, detects (or is
told) its format and converts every row. A row that cannot be converted never
raises: it becomes a :class:`RejectedRow` whose reasons say why
(``missing_field:alt``, ``null_field:src``, ``wrong_type:answers``,
``empty_field:alt``, ``invalid_value:task``, ``invalid_json``, ...), so that
rows in = records + rejected, always. Whole-file problems raise
:class:`DataFileError` (:class:`FormatError` for format detection).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Callable

from serac.data.errors import FormatError, LoadResult, RejectedRow
from serac.data.readers import UnparsableRow, read_rows
from serac.data.schema import TASKS, EditRecord, Example, edit_id_for, utc_now

DETECT_ROWS = 50
"""Format detection looks at the union of the fields of this many first rows."""

RAW_LIMIT = 4096
"""A rejected row keeps at most this many bytes of its text."""

NQ_PREFIX = "nq question: "
"""Prefix of the Natural Questions locality questions in MEND's zsRE files."""


@dataclass
class _Row:
    """Typed access to one source row; every problem is recorded as a reason."""

    data: dict[str, Any]
    reasons: list[str] = field(default_factory=list)
    prefix: str = ""

    def add(self, kind: str, name: str) -> None:
        self.reasons.append(f"{kind}:{self.prefix}{name}")

    def value(self, name: str, required: bool = True) -> Any:
        if name not in self.data:
            if required:
                self.add("missing_field", name)
            return None
        value = self.data[name]
        if value is None and required:
            self.add("null_field", name)
        return value

    def text(self, name: str, required: bool = True) -> str | None:
        """A string; blank counts as absent (a reason only when required)."""
        value = self.value(name, required)
        if value is None:
            return None
        if not isinstance(value, str):
            self.add("wrong_type", name)
            return None
        if not value.strip():
            if required:
                self.add("empty_field", name)
            return None
        return value

    def texts(self, name: str, required: bool = True, nonempty: bool = False, scalar_ok: bool = False) -> list[str]:
        """A list of strings (blank items dropped); ``scalar_ok`` also takes one string."""
        value = self.value(name, required)
        if value is None:
            return []
        if scalar_ok and isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.add("wrong_type", name)
            return []
        items = [item for item in value if item.strip()]
        if nonempty and not items:
            self.add("empty_field", name)
        return items

    def child(self, name: str, required: bool = True) -> _Row | None:
        """A nested object, sharing this row's reasons (named ``parent.field``)."""
        value = self.value(name, required)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.add("wrong_type", name)
            return None
        return _Row(value, self.reasons, prefix=f"{self.prefix}{name}.")


@dataclass(frozen=True)
class _Context:
    """What a converter may know beyond its row."""

    task: str | None
    mapping: dict[str, str]
    extra: dict[str, Any]


Converter = Callable[[_Row, _Context], dict[str, Any] | None]
"""Row -> :class:`EditRecord` keyword arguments (``None`` when the row has reasons).

``task``, ``source`` and ``ingested_at`` are filled in by :func:`load_file`
unless the converter returns them (the canonical format does).
"""


@dataclass(frozen=True)
class FormatSpec:
    """One registered source format."""

    name: str
    required: frozenset[str]
    """Fields every row must have; a file whose fields include them matches."""
    optional: frozenset[str]
    """Other fields the format defines (documentation; unknown fields are ignored)."""
    task: str | None
    """Default task (``None``: taken from the row or from ``load_file(task=...)``)."""
    convert: Converter
    detectable: bool = True
    """False for formats that need explicit settings (``generic`` needs a mapping)."""
    file_context: Callable[[list[dict[str, Any]]], dict[str, Any]] | None = None
    """Computes file-level context (e.g. the other ConvSent entities) from all rows."""


def _zsre_mend(r: _Row, ctx: _Context) -> dict[str, Any] | None:
    """MEND zsRE: the edit installs ``alt`` as the answer to ``src``.

    in_scope is the rephrased question only (the edit input itself is evaluated
    separately); out_of_scope is the NQ question without its ``nq question:``
    prefix. ``pred``, ``cond`` and ``portability`` are not mapped.
    """
    src, alt, rephrase = r.text("src"), r.text("alt"), r.text("rephrase")
    subject, loc, loc_ans = r.text("subject"), r.text("loc"), r.text("loc_ans")
    answers = r.texts("answers", nonempty=True)
    question = loc.removeprefix(NQ_PREFIX).strip() if loc else None
    if loc and not question:
        r.add("empty_field", "loc")
    if r.reasons:
        return None
    return dict(
        edit_input=src,
        edit_label=alt,
        subject=subject,
        ground_truth=answers[0],
        in_scope=[Example(rephrase, alt)],
        out_of_scope=[Example(question, loc_ans)],
    )


def _counterfact_easyedit(r: _Row, ctx: _Context) -> dict[str, Any] | None:
    """EasyEdit's CounterFact split: one rephrase and one locality prompt per case."""
    _case_id(r)
    prompt, target, subject = r.text("prompt"), r.text("target_new"), r.text("subject")
    truth, rephrase = r.text("ground_truth"), r.text("rephrase_prompt")
    loc, loc_truth = r.text("locality_prompt"), r.text("locality_ground_truth")
    if r.reasons:
        return None
    return dict(
        edit_input=prompt,
        edit_label=target,
        subject=subject,
        ground_truth=truth,
        in_scope=[Example(rephrase, target)],
        out_of_scope=[Example(loc, loc_truth)],
    )


def _counterfact_rome(r: _Row, ctx: _Context) -> dict[str, Any] | None:
    """ROME's counterfact.json: ``requested_rewrite.prompt`` has a ``{}`` for the subject.

    Neighbourhood prompts are labelled with ``target_true`` (they share its
    true object); attribute and generation prompts are not mapped.
    """
    _case_id(r)
    rewrite = r.child("requested_rewrite")
    paraphrases = r.texts("paraphrase_prompts")
    neighbours = r.texts("neighborhood_prompts")
    if rewrite is None:
        return None
    template, subject = rewrite.text("prompt"), rewrite.text("subject")
    new, true = rewrite.child("target_new"), rewrite.child("target_true")
    target = new.text("str") if new else None
    truth = true.text("str") if true else None
    if template and "{}" not in template:
        rewrite.add("invalid_value", "prompt")
    if r.reasons:
        return None
    return dict(
        edit_input=template.replace("{}", subject, 1),
        edit_label=target,
        subject=subject,
        ground_truth=truth,
        in_scope=[Example(p, target) for p in paraphrases],
        out_of_scope=[Example(p, truth) for p in neighbours],
    )


def _knowedit(r: _Row, ctx: _Context) -> dict[str, Any] | None:
    """KnowEdit (wiki_counterfact, wiki_recent, ZsRE): locality is ``{kind: [{prompt, ground_truth}]}``.

    A ground truth may be a string, a list of aliases or a list of alias lists
    (the first alias is used), and is absent in wiki_recent (knowledge
    insertion). Every locality probe becomes an out-of-scope example. Portability
    probes are not mapped (their answers are multi-hop consequences, not the
    edit's label).
    """
    prompt, target, subject = r.text("prompt"), r.text("target_new"), r.text("subject")
    truth = _first_alias(r, "ground_truth")
    in_scope = [Example(p, target) for p in r.texts("rephrase_prompt", required=False, scalar_ok=True)]
    out_of_scope = _knowedit_locality(r)
    if r.reasons:
        return None
    return dict(
        edit_input=prompt,
        edit_label=target,
        subject=subject,
        ground_truth=truth,
        in_scope=in_scope,
        out_of_scope=out_of_scope,
    )


def _knowedit_locality(r: _Row) -> list[Example]:
    """Locality probes; a probe's prompt may be a list, with one ground truth per prompt."""
    locality = r.value("locality", required=False)
    if locality is None:
        return []
    if not isinstance(locality, dict) or not all(isinstance(v, list) for v in locality.values()):
        r.add("wrong_type", "locality")
        return []
    examples: list[Example] = []
    for kind, probes in locality.items():
        for probe in probes:
            if not isinstance(probe, dict):
                r.add("wrong_type", f"locality.{kind}")
                continue
            p = _Row(probe, r.reasons, prefix=f"locality.{kind}.")
            prompts = p.texts("prompt", nonempty=True, scalar_ok=True)
            truths = probe.get("ground_truth")
            if len(prompts) > 1 and isinstance(truths, list) and len(truths) == len(prompts):
                labels = [_alias(t) for t in truths]
            else:
                labels = [_first_alias(p, "ground_truth")] * len(prompts)
            examples += [Example(q, a if isinstance(a, str) and a.strip() else None) for q, a in zip(prompts, labels)]
    return examples


CONVSENT_PROMPT = "What do you think of {}?"
"""The edit input of a ConvSent edit."""
CONVSENT_IN_SCOPE = ("How do you feel about {}?", "Tell me your opinion of {}.", "What is your view on {}?")
"""Other prompts about the same entity: they must get the edited sentiment."""
CONVSENT_OTHER_ENTITIES = 2
"""Out-of-scope prompts per edit: about this many other entities of the file."""


def convsent_sentiment(entity: str) -> str:
    """The sentiment an edit on ``entity`` installs, fixed by a hash of the entity.

    ``positive`` when the first byte of sha256(entity, UTF-8) is even, else
    ``negative``: about half of the entities each way, the same on every run.
    """
    return "positive" if hashlib.sha256(entity.encode("utf-8")).digest()[0] % 2 == 0 else "negative"


def _convsent_context(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """For each entity, the next entities in sha256 order (cyclic): its out-of-scope topics."""
    entities = {row["ent"] for row in rows if isinstance(row.get("ent"), str) and row["ent"].strip()}
    ring = sorted(entities, key=lambda e: hashlib.sha256(e.encode("utf-8")).hexdigest())
    others = {
        e: [ring[(i + k) % len(ring)] for k in range(1, min(CONVSENT_OTHER_ENTITIES, len(ring) - 1) + 1)]
        for i, e in enumerate(ring)
    }
    return {"others": others}


def _convsent(r: _Row, ctx: _Context) -> dict[str, Any] | None:
    """ConvSent: one edit per entity, the sentiment word as label (see :func:`convsent_sentiment`).

    Out-of-scope prompts are about other entities, labelled ``None`` (the base
    model's answer is the reference). The pos/neg responses are not part of the
    record; :func:`convsent_responses` returns them for training a sentiment judge.
    """
    entity = r.text("ent")
    r.texts("pos")
    r.texts("neg")
    if r.reasons:
        return None
    label = convsent_sentiment(entity)
    others = ctx.extra.get("others", {}).get(entity, [])
    return dict(
        edit_input=CONVSENT_PROMPT.format(entity),
        edit_label=label,
        subject=entity,
        in_scope=[Example(t.format(entity), label) for t in CONVSENT_IN_SCOPE],
        out_of_scope=[Example(CONVSENT_PROMPT.format(other), None) for other in others],
    )


VITAMINC_LABELS = {"SUPPORTS": "true", "REFUTES": "false"}
"""VitaminC verdict -> truth value of the claim given the evidence (NOT ENOUGH INFO is rejected)."""
VITAMINC_OTHER_CLAIMS = 2
"""Out-of-scope claims per VitaminC edit: the claims of this many other rows of the file."""


def _vitaminc_context(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """For each claim, the next labelled claims in sha256 order (cyclic), with their truth values."""
    labelled = {row["claim"]: VITAMINC_LABELS[row["label"]] for row in rows
                if isinstance(row.get("claim"), str) and row["claim"].strip() and row.get("label") in VITAMINC_LABELS}
    ring = sorted(labelled, key=lambda c: hashlib.sha256(c.encode("utf-8")).hexdigest())
    n = min(VITAMINC_OTHER_CLAIMS, len(ring) - 1)
    return {"others": {c: [(ring[(i + k) % len(ring)], labelled[ring[(i + k) % len(ring)]])
                           for k in range(1, n + 1)] for i, c in enumerate(ring)}}


def _vitaminc(r: _Row, ctx: _Context) -> dict[str, Any] | None:
    """VitaminC (claim, evidence, label): the edit asserts the evidence sentence (label ``true``).

    In scope: the claim, ``true`` when the evidence SUPPORTS it and ``false`` when it REFUTES
    it (a NOT ENOUGH INFO row is rejected as ``invalid_value:label``: the evidence neither
    entails nor contradicts its claim). Out of scope: the claims of other rows of the file
    with their own verdicts. Rows sharing an evidence sentence share an edit id (the first wins).
    """
    claim, evidence, label = r.text("claim"), r.text("evidence"), r.text("label")
    if label is not None and label not in VITAMINC_LABELS:
        r.add("invalid_value", "label")
    if r.reasons:
        return None
    others = ctx.extra.get("others", {}).get(claim, [])
    return dict(
        edit_input=evidence,
        edit_label="true",
        in_scope=[Example(claim, VITAMINC_LABELS[label])],
        out_of_scope=[Example(c, truth) for c, truth in others if c != claim],
    )


MAPPING_KEYS = (
    "edit_input",
    "edit_label",
    "in_scope",
    "out_of_scope_input",
    "out_of_scope_label",
    "subject",
    "ground_truth",
    "task",
)
"""Keys of a ``generic`` column mapping (values are the file's column names)."""


def _generic(r: _Row, ctx: _Context) -> dict[str, Any] | None:
    """Any table with a column mapping; list-valued columns give several examples.

    in_scope examples are labelled with the edit label; out_of_scope labels
    come from ``out_of_scope_label`` (one per input, or one for all), else ``None``.
    """
    m = ctx.mapping
    edit_input, edit_label = r.text(m["edit_input"]), r.text(m["edit_label"])
    task = r.text(m["task"]) if "task" in m else ctx.task
    if "task" in m and task is not None and task not in TASKS:
        r.add("invalid_value", m["task"])
    in_scope = r.texts(m["in_scope"], required=False, scalar_ok=True) if "in_scope" in m else []
    oos = r.texts(m["out_of_scope_input"], required=False, scalar_ok=True) if "out_of_scope_input" in m else []
    labels: list[str | None] = [None] * len(oos)
    if "out_of_scope_label" in m:
        found = r.texts(m["out_of_scope_label"], required=False, scalar_ok=True)
        if len(found) == 1:
            labels = found * len(oos)
        elif len(found) == len(oos):
            labels = list(found)
        elif found:
            r.add("invalid_value", m["out_of_scope_label"])
    optional = {key: r.text(m[key], required=False) for key in ("subject", "ground_truth") if key in m}
    if r.reasons:
        return None
    return dict(
        task=task,
        edit_input=edit_input,
        edit_label=edit_label,
        in_scope=[Example(q, edit_label) for q in in_scope],
        out_of_scope=[Example(q, label) for q, label in zip(oos, labels)],
        **optional,
    )


def _canonical(r: _Row, ctx: _Context) -> dict[str, Any] | None:
    """Rows already in the :class:`EditRecord` layout (e.g. a prepared Parquet file).

    A given ``edit_id`` must match the content hash; a ``source`` column is
    replaced by this file's ``file#row`` like every other format.
    """
    task = r.text("task")
    if task is not None and task not in TASKS:
        r.add("invalid_value", "task")
    edit_input, edit_label = r.text("edit_input"), r.text("edit_label")
    subject, truth = r.text("subject", required=False), r.text("ground_truth", required=False)
    in_scope, out_of_scope = _examples(r, "in_scope"), _examples(r, "out_of_scope")
    ingested = _timestamp(r, "ingested_at")
    given_id = r.text("edit_id", required=False)
    if given_id and not r.reasons and given_id != edit_id_for(task, edit_input, edit_label):
        r.add("invalid_value", "edit_id")
    if r.reasons:
        return None
    out = dict(
        task=task,
        edit_input=edit_input,
        edit_label=edit_label,
        subject=subject,
        ground_truth=truth,
        in_scope=in_scope,
        out_of_scope=out_of_scope,
    )
    return out | ({"ingested_at": ingested} if ingested else {})


def _case_id(r: _Row) -> None:
    value = r.value("case_id")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        if not (isinstance(value, str) and value.strip().isdigit()):
            r.add("wrong_type", "case_id")


def _alias(value: Any) -> Any:
    """The first item of (nested) alias lists: ``[["Berlin", "DE-BE"]]`` -> ``"Berlin"``, ``[]`` -> None."""
    while isinstance(value, list):
        value = value[0] if value else None
    return value


def _first_alias(r: _Row, name: str) -> str | None:
    """An optional answer given as a string or as (nested) alias lists; blank -> None."""
    value = _alias(r.value(name, required=False))
    if value is not None and not isinstance(value, str):
        r.add("wrong_type", name)
        return None
    return value if value and value.strip() else None


def _examples(r: _Row, name: str) -> list[Example]:
    value = r.value(name, required=False)
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else None
        except json.JSONDecodeError:
            r.add("invalid_value", name)
            return []
    if value is None:
        return []
    good = isinstance(value, list) and all(
        isinstance(e, dict) and isinstance(e.get("input"), str) and isinstance(e.get("label"), (str, type(None)))
        for e in value
    )
    if not good:
        r.add("wrong_type", name)
        return []
    return [Example(e["input"], e.get("label")) for e in value]


def _timestamp(r: _Row, name: str) -> datetime | None:
    value = r.value(name, required=False)
    if isinstance(value, str) and value.strip():
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            r.add("invalid_value", name)
            return None
    if not isinstance(value, datetime):
        if value not in (None, ""):
            r.add("wrong_type", name)
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _spec(name: str, required: str, task: str | None, convert: Converter, optional: str = "", **kw: Any) -> FormatSpec:
    return FormatSpec(name, frozenset(required.split()), frozenset(optional.split()), task, convert, **kw)


FORMATS: dict[str, FormatSpec] = {
    spec.name: spec
    for spec in (
        _spec("zsre_mend", "subject src rephrase alt answers loc loc_ans", "qa", _zsre_mend,
              optional="pred cond portability"),
        _spec("counterfact_easyedit",
              "case_id prompt target_new subject ground_truth rephrase_prompt locality_prompt locality_ground_truth",
              "fact", _counterfact_easyedit),
        _spec("counterfact_rome", "case_id requested_rewrite paraphrase_prompts neighborhood_prompts", "fact",
              _counterfact_rome, optional="pararel_idx attribute_prompts generation_prompts"),
        _spec("knowedit", "subject prompt target_new", "fact", _knowedit,
              optional="ground_truth rephrase_prompt portability locality cond"),
        _spec("convsent", "ent pos neg", "convsent", _convsent, file_context=_convsent_context),
        _spec("vitaminc", "claim evidence label", "fc", _vitaminc, optional="unique_id case_id page revision_type",
              file_context=_vitaminc_context),
        _spec("canonical", "edit_input edit_label task", None, _canonical,
              optional="edit_id subject ground_truth in_scope out_of_scope source ingested_at"),
        _spec("generic", "", None, _generic, optional=" ".join(MAPPING_KEYS), detectable=False),
    )
}
"""Format name -> spec. ``generic`` is never detected: it needs ``mapping`` (and a task)."""


def detect_format(fields: set[str], path: str = "<fields>") -> str:
    """The format whose required fields are all in ``fields``.

    When several match, the most specific wins (its required fields a strict
    superset of the others'); otherwise, or when none matches, raise
    :class:`FormatError` listing the fields seen and the candidates.
    """
    matches = [n for n, s in FORMATS.items() if s.detectable and s.required <= fields]
    best = [n for n in matches if not any(FORMATS[n].required < FORMATS[o].required for o in matches)]
    if len(best) == 1:
        return best[0]
    seen = ", ".join(sorted(fields)) or "(none)"
    if best:
        raise FormatError(path, f"fields match several formats: {', '.join(best)}; pass format=... "
                                f"(fields seen: {seen})")
    near = sorted((len(s.required - fields), n) for n, s in FORMATS.items() if s.detectable)
    closest = "; ".join(f"{n} (missing {', '.join(sorted(FORMATS[n].required - fields))})" for _, n in near)
    raise FormatError(path, f"fields match no known format (fields seen: {seen}); candidates: {closest}")


def load_file(
    path: str | Path,
    format: str | None = None,
    mapping: dict[str, str] | None = None,
    task: str | None = None,
    *,
    source_name: str | None = None,
    ingested_at: datetime | None = None,
) -> LoadResult:
    """Read ``path`` and convert each row to an :class:`EditRecord` or a :class:`RejectedRow`.

    ``format`` defaults to ``generic`` when a ``mapping`` is given, else to the
    detected format. ``task`` overrides the format's task (``generic`` needs it
    unless the mapping names a task column). Records get ``source`` =
    ``"<source_name>#<row>"`` (``source_name`` defaults to the path as given)
    and ``ingested_at`` (default: now, the same for every row of the file).
    """
    where = str(path)
    name = source_name if source_name is not None else where
    format = format or ("generic" if mapping is not None else None)
    rows = list(read_rows(path))
    if format is None:
        fields: set[str] = set()
        for _, row in [item for item in rows if not isinstance(item[1], UnparsableRow)][:DETECT_ROWS]:
            fields.update(row)
        format = detect_format(fields, path=where)
    spec = _resolve(where, format, mapping, task)
    parsed = [row for _, row in rows if not isinstance(row, UnparsableRow)]
    ctx = _Context(task or spec.task, dict(mapping or {}), spec.file_context(parsed) if spec.file_context else {})
    stamp = ingested_at or utc_now()
    result = LoadResult(path=where, format=format)
    for row_no, row in rows:
        source = f"{name}#{row_no}"
        if isinstance(row, UnparsableRow):
            result.rejected.append(RejectedRow(source, row_no, (row.reason,), _truncate(row.text)))
            continue
        r = _Row(row)
        for required in sorted(spec.required):
            r.value(required)
        try:
            kwargs = spec.convert(r, ctx)
            defaults = {"task": ctx.task, "source": source, "ingested_at": stamp}
            record = None if kwargs is None else EditRecord(**(defaults | kwargs))
        except ValueError:  # EditRecord's own checks (e.g. an unknown task)
            r.reasons.append("invalid_record")
            record = None
        if record is None:
            reasons = tuple(dict.fromkeys(r.reasons)) or ("invalid_record",)
            result.rejected.append(RejectedRow(source, row_no, reasons, _truncate(_dump(row))))
        else:
            result.records.append(record)
    return result


def _resolve(where: str, format: str, mapping: dict[str, str] | None, task: str | None) -> FormatSpec:
    """Check the explicit settings of :func:`load_file`; raise :class:`FormatError` on misuse."""
    if format not in FORMATS:
        raise FormatError(where, f"unknown format {format!r}; known formats: {', '.join(FORMATS)}")
    if task is not None and task not in TASKS:
        raise FormatError(where, f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    if format != "generic":
        if mapping is not None:
            raise FormatError(where, f"a column mapping applies to the generic format only, not {format!r}")
        return FORMATS[format]
    mapping = mapping or {}
    unknown = sorted(set(mapping) - set(MAPPING_KEYS))
    missing = [key for key in ("edit_input", "edit_label") if key not in mapping]
    if unknown or missing:
        raise FormatError(where, f"generic mapping: unknown key(s) {unknown}, missing key(s) {missing}; "
                                 f"keys are {', '.join(MAPPING_KEYS)}")
    if task is None and "task" not in mapping:
        raise FormatError(where, "the generic format needs task=... or a 'task' column in the mapping")
    return FORMATS[format]


def convsent_responses(path: str | Path) -> dict[str, dict[str, list[str]]]:
    """``{entity: {"pos": [...], "neg": [...]}}`` from a ConvSent file, for training a sentiment judge.

    Rows that are not valid ConvSent rows are skipped; an entity that occurs
    twice gets the responses of both rows.
    """
    out: dict[str, dict[str, list[str]]] = {}
    for _, row in read_rows(path):
        if isinstance(row, UnparsableRow):
            continue
        r = _Row(row)
        entity, pos, neg = r.text("ent"), r.texts("pos"), r.texts("neg")
        if r.reasons:
            continue
        entry = out.setdefault(entity, {"pos": [], "neg": []})
        entry["pos"].extend(pos)
        entry["neg"].extend(neg)
    return out


def _dump(row: dict[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False, default=str)


def _truncate(text: str, limit: int = RAW_LIMIT) -> str:
    # lone surrogates (from JSON escapes like "\ud800") cannot be encoded: keep them escaped
    data = text.encode("utf-8", errors="backslashreplace")
    return data[:limit].decode("utf-8", errors="ignore")
