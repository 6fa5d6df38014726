"""The row rules: one definition of what an edit must satisfy, whatever door it comes in by.

Every entry point decides with :data:`row_rules`: batch ingest and ``serac validate`` /
``serac edit FILE`` through the Great Expectations suite built from them
(:func:`serac.data.validation.build_suite`), ``serac edit --input``, ``POST /edits`` and
:meth:`serac.editor.SeracEditor.edit` through :func:`check_records`, which evaluates the same
:class:`RowRule` objects in Python on the same computed columns (:func:`row_values`). A rule
is written once, as data: its GX expectation type, column and bounds; the reason a refused
row carries is the same string on every path, e.g.
``expect_column_values_to_be_in_set(label_equals_input)``.

Two checks are about a batch rather than a row, so only the GX suite runs them:
``expect_column_values_to_be_unique(edit_id)`` (later copies in one file) and
``expect_column_values_to_be_in_set(in_memory)`` (already live). Elsewhere an edit that is
already present, or repeated in one call, is *skipped* (adding is idempotent by content
hash), not refused.

Which characters are refused, and why: :mod:`serac.data.text`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from serac.config import ValidationConfig
from serac.data.schema import EditRecord
from serac.data.text import BIDI_CONTROLS, CONTROL_CHARS, ZERO_WIDTH
from serac.models.hub import load_tokenizer

NOT_NULL = "expect_column_values_to_not_be_null"
IN_SET = "expect_column_values_to_be_in_set"
MATCH_REGEX = "expect_column_values_to_match_regex"
LENGTHS_BETWEEN = "expect_column_value_lengths_to_be_between"
BETWEEN = "expect_column_values_to_be_between"
UNIQUE = "expect_column_values_to_be_unique"

GX_CLASSES: dict[str, str] = {
    NOT_NULL: "ExpectColumnValuesToNotBeNull",
    IN_SET: "ExpectColumnValuesToBeInSet",
    MATCH_REGEX: "ExpectColumnValuesToMatchRegex",
    LENGTHS_BETWEEN: "ExpectColumnValueLengthsToBeBetween",
    BETWEEN: "ExpectColumnValuesToBeBetween",
    UNIQUE: "ExpectColumnValuesToBeUnique",
}
"""GX expectation class of each expectation type a rule may use."""


@dataclass(frozen=True)
class RowRule:
    """One expectation on one column of the computed row (:func:`row_values`)."""

    expectation: str
    column: str
    description: str
    value_set: tuple[Any, ...] | None = None
    min_value: int | None = None
    max_value: int | None = None
    regex: str | None = None

    @property
    def reason(self) -> str:
        """``<expectation type>(<column>)``: what a row that fails this rule is refused for."""
        return f"{self.expectation}({self.column})"

    def gx_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"column": self.column, "description": self.description}
        if self.expectation == IN_SET:
            kwargs["value_set"] = list(self.value_set or ())
        elif self.expectation == MATCH_REGEX:
            kwargs["regex"] = self.regex
        elif self.expectation in (LENGTHS_BETWEEN, BETWEEN):
            kwargs.update(min_value=self.min_value, max_value=self.max_value)
        return kwargs

    def passes(self, value: Any) -> bool:
        """This rule on one value, with GX's semantics: every check but not-null ignores nulls."""
        if self.expectation == NOT_NULL:
            return value is not None
        if value is None:
            return True
        if self.expectation == IN_SET:
            return value in (self.value_set or ())
        if self.expectation == MATCH_REGEX:
            return re.search(self.regex or "", value) is not None
        if self.expectation in (LENGTHS_BETWEEN, BETWEEN):
            size = len(value) if self.expectation == LENGTHS_BETWEEN else value
            return (self.min_value is None or size >= self.min_value) and (
                self.max_value is None or size <= self.max_value)
        raise ValueError(f"{self.reason}: not a per-row rule")


TASK_RULES: Mapping[str, tuple[tuple[str, tuple[Any, ...], str], ...]] = {
    "qa": (),
    "fact": (("subject_in_input", (True,), "the subject, when given, occurs in the prompt"),),
    "fc": (("edit_label_norm", ("true", "false"), "label is true or false (any case)"),),
    "convsent": (("edit_label", ("positive", "negative"), "label is positive or negative"),),
    "qa_hard": (),
}
"""Per-task ``in_set`` rules on top of the common ones: (column, values, meaning)."""

REQUIRED = ("task", "edit_id", "edit_input", "edit_label")


def row_rules(task: str, cfg: ValidationConfig, *, training: bool = True, batch: bool = False) -> list[RowRule]:
    """The rules for a row of ``task``, in reporting order; ``batch`` adds the two batch checks.

    ``training`` adds the in-scope requirement (when ``cfg.require_in_scope``).
    """
    lo, hi = cfg.min_chars, cfg.max_chars
    rules = [RowRule(NOT_NULL, c, f"{c} is required") for c in REQUIRED]
    rules.append(RowRule(IN_SET, "task", f"task is {task!r}", value_set=(task,)))
    if batch:
        rules.append(RowRule(UNIQUE, "edit_id", "unique in the batch (first copy kept)"))
    for c in ("edit_input", "edit_label"):
        rules.append(RowRule(MATCH_REGEX, c, f"{c} is not blank", regex=r"\S"))
        rules.append(RowRule(LENGTHS_BETWEEN, c, f"{c} has {lo}..{hi} characters", min_value=lo, max_value=hi))
    rules += [RowRule(LENGTHS_BETWEEN, c, f"{c}, when given, has <= {hi} characters", max_value=hi)
              for c in ("subject", "ground_truth")]
    rules += [
        RowRule(BETWEEN, "example_input_min_chars", f"every example input has >= {lo} characters", min_value=lo),
        RowRule(BETWEEN, "example_input_max_chars", f"every example input has <= {hi} characters", max_value=hi),
        RowRule(BETWEEN, "example_label_max_chars", f"every example label has <= {hi} characters", max_value=hi),
        RowRule(BETWEEN, "token_len", f"input + label take <= {cfg.max_tokens} tokens of {cfg.tokenizer!r}",
                max_value=cfg.max_tokens),
    ]
    if training and cfg.require_in_scope:
        rules.append(RowRule(BETWEEN, "n_in_scope", "at least one in-scope example (training data)", min_value=1))
    flags = {
        "in_memory": "edit_id is not already in the memory",
        "label_equals_input": "edit_label differs from edit_input (ignoring case and spaces)",
        "has_control_chars": "no control characters, U+FFFD or lone surrogates in any text",
        "has_bidi_controls": "no bidirectional override or isolate (U+202A-U+202E, U+2066-U+2069) in any text",
        "has_zero_width": "no zero-width character (U+200B-U+200D, U+2060, U+FEFF) in edit input, label "
                          "or example inputs",
        "blank_example_input": "no example input is blank (whitespace only)",
    }
    rules += [RowRule(IN_SET, c, d, value_set=(False,)) for c, d in flags.items() if batch or c != "in_memory"]
    rules += [RowRule(IN_SET, c, d, value_set=v) for c, v, d in TASK_RULES[task]]
    return rules


# ---------------------------------------------------------------- the computed row


def row_values(record: EditRecord, existing_ids: Iterable[str] = frozenset()) -> dict[str, Any]:
    """The columns the rules look at, for one record (``token_len`` comes from :func:`token_lengths`).

    Texts keep lone surrogates turned into U+FFFD (Arrow strings cannot hold them); the
    character checks look at the original text, so such rows fail anyway.
    """
    examples = record.in_scope + record.out_of_scope
    ex_inputs = [_text(e.input) or "" for e in examples]
    ex_labels = [_text(e.label) for e in examples if e.label is not None]
    edit_input, edit_label, subject = _text(record.edit_input), _text(record.edit_label), _text(record.subject)
    every_text = [t for t in (edit_input, edit_label, subject, _text(record.ground_truth), *ex_inputs, *ex_labels)
                  if t is not None]
    identity_texts = [t for t in (edit_input, edit_label, *ex_inputs) if t is not None]
    return {
        "task": record.task,
        "edit_id": _clean(_text(record.edit_id)),
        "edit_input": _clean(edit_input),
        "edit_label": _clean(edit_label),
        "edit_label_norm": None if edit_label is None else _clean(edit_label.strip().casefold()),
        "subject": _clean(subject),
        "ground_truth": _clean(_text(record.ground_truth)),
        "subject_in_input": None if not subject or edit_input is None else subject.casefold() in edit_input.casefold(),
        "n_in_scope": len(record.in_scope),
        "example_input_min_chars": min(map(len, ex_inputs)) if ex_inputs else None,
        "example_input_max_chars": max(map(len, ex_inputs)) if ex_inputs else None,
        "example_label_max_chars": max(map(len, ex_labels)) if ex_labels else None,
        "has_control_chars": any(CONTROL_CHARS.search(t) for t in every_text),
        "has_bidi_controls": any(BIDI_CONTROLS.search(t) for t in every_text),
        "has_zero_width": any(ZERO_WIDTH.search(t) for t in identity_texts),
        "blank_example_input": any(not t.strip() for t in ex_inputs),
        "label_equals_input": _squash(edit_input) == _squash(edit_label),
        "in_memory": record.edit_id in existing_ids,
    }


def token_lengths(inputs: Sequence[str], labels: Sequence[str], tokenizer: str) -> list[int]:
    """Tokens in the pair ``[CLS] input [SEP] label [SEP]`` for each row, batch-tokenised.

    Uses the Rust tokenizer directly (about 30% faster than the transformers call and
    free of its "sequence longer than model max length" warning) unless it has
    truncation or padding configured, which would distort the lengths.
    """
    if not inputs:
        return []
    tok = load_tokenizer(tokenizer)
    backend = getattr(tok, "backend_tokenizer", None)
    lengths: list[int] = []
    for start in range(0, len(inputs), _TOKENIZE_CHUNK):
        a, b = inputs[start : start + _TOKENIZE_CHUNK], labels[start : start + _TOKENIZE_CHUNK]
        if backend is not None and backend.truncation is None and backend.padding is None:
            lengths.extend(len(enc) for enc in backend.encode_batch(list(zip(a, b)), add_special_tokens=True))
        else:
            enc = tok(list(a), list(b), truncation=False, padding=False, verbose=False)
            lengths.extend(len(ids) for ids in enc["input_ids"])
    return lengths


_TOKENIZE_CHUNK = 8192
_SURROGATES = re.compile("[\ud800-\udfff]")


def _text(value: Any) -> str | None:
    return value if value is None or isinstance(value, str) else str(value)


def _clean(text: str | None) -> str | None:
    return _SURROGATES.sub("\ufffd", text) if text and _SURROGATES.search(text) else text


def _squash(text: str | None) -> str | None:
    """Case- and whitespace-insensitive form, for the label == input check."""
    return None if text is None else " ".join(text.split()).casefold()


# ---------------------------------------------------------------- the per-row check


@dataclass(frozen=True)
class Refusal:
    """One edit an entry point refuses: its position in the call, its id, and every reason."""

    position: int
    edit_id: str
    reasons: tuple[str, ...]


class EditRefused(ValueError):
    """Edits that break a row rule (or the blast-radius guard); nothing of the call was stored."""

    def __init__(self, refusals: Sequence[Refusal]) -> None:
        self.refusals = tuple(refusals)
        super().__init__("; ".join(f"edit {r.position} ({r.edit_id}): {', '.join(r.reasons)}"
                                   for r in self.refusals))


def check_records(records: Sequence[EditRecord], cfg: ValidationConfig, *, training: bool = False) -> list[Refusal]:
    """The records that break a row rule, with their reasons in rule order (empty: all pass).

    The same rules, columns and reason names as the GX suite, without GX (milliseconds per
    edit): what the API, the Python API and ``serac edit --input`` decide with.
    """
    records = list(records)
    values = [row_values(r) for r in records]
    lengths = token_lengths([v["edit_input"] or "" for v in values], [v["edit_label"] or "" for v in values],
                            cfg.tokenizer)
    rules: dict[str, list[RowRule]] = {}
    refusals = []
    for position, (record, row, n_tokens) in enumerate(zip(records, values, lengths)):
        row["token_len"] = n_tokens
        task_rules = rules.setdefault(record.task, row_rules(record.task, cfg, training=training))
        reasons = tuple(rule.reason for rule in task_rules if not rule.passes(row[rule.column]))
        if reasons:
            refusals.append(Refusal(position, record.edit_id, reasons))
    return refusals
