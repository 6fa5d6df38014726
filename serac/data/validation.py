"""Great Expectations validation of an edit batch: every row passes or is quarantined.

The flow is ``records -> DataFrame -> GX suite -> failed expectations per row``:

1. :func:`record_frame` makes one DataFrame row per record. Checks that need
   per-row Python (control characters, label vs input, memory lookup, example
   lengths) are computed there in one pass into plain columns; tokenisation is
   one batched call. GX then asserts those columns with vectorised column
   expectations, so the suite costs ~1-2 s at 10^5 rows even with the
   ``COMPLETE`` result format.
2. :func:`build_suite` builds the :class:`ExpectationSuite` for a task from
   :class:`~serac.config.ValidationConfig` (in code, never from a stored suite).
3. :func:`validate_records` runs it and turns GX's ``unexpected_index_list`` into
   quarantine reasons, named ``<expectation type>(<column>)``, e.g.
   ``expect_column_values_to_not_be_null(edit_label)``. Loader rejects keep their
   own reasons (``missing_field:alt``). ``rows_in == passed + quarantined``, always.

Duplicates: ``expect_column_values_to_be_unique`` flags *every* copy of a repeated
edit_id. We quarantine only the later copies and keep the first occurrence in
file order, so a resent edit is not lost altogether. The first copy still has
to pass every other expectation on its own; if it fails one, all copies end up
in quarantine (the first for its own reasons, the rest as duplicates).

:func:`validate_file` loads a file, validates it and writes the batch's outputs
(:func:`serac.data.quarantine.write_outputs`).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np
import pandas as pd

from serac.config import ValidationConfig
from serac.data import quarantine as q
from serac.data.errors import RejectedRow
from serac.data.schema import TASKS, EditRecord
from serac.models.hub import load_tokenizer

if TYPE_CHECKING:
    from great_expectations import ExpectationSuite

RESULT_FORMAT = {"result_format": "COMPLETE"}
"""Every failing row, reported by its DataFrame index label (the source row, see :func:`record_frame`).

Not ``unexpected_index_column_names``: with it GX 1.24 looks each failing row up
with one ``DataFrame.at`` per index column in Python and serialises a dict per
row, which took 17-28 s for 100k failing rows against 0.7 s for plain index
labels (benchmarks/validate.py, worst case).
"""

BAD_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd\ud800-\udfff]")
"""C0/C1 control characters (tab, newline and carriage return allowed), U+FFFD and lone surrogates."""

_SURROGATES = re.compile("[\ud800-\udfff]")
_ROW_SUFFIX = re.compile(r"#(\d+)$")
_TOKENIZE_CHUNK = 8192


# ---------------------------------------------------------------- the DataFrame


def record_frame(
    records: Sequence[EditRecord],
    tokenizer: str,
    *,
    existing_ids: Iterable[str] = frozenset(),
    timings: dict[str, float] | None = None,
) -> pd.DataFrame:
    """One row per record: the record's text fields plus the computed columns the suite checks.

    ``idx`` is the position in ``records``; ``row`` the 1-based source row (from the
    ``file#row`` source, else ``idx + 1``). The index is ``row`` when those are unique
    (so GX results name source rows), else ``idx``; unnamed, see :data:`RESULT_FORMAT`.
    Text is stored with lone surrogates turned into U+FFFD (Arrow strings cannot hold
    them); ``has_control_chars`` is computed on the original text, so such rows fail anyway.
    """
    existing = existing_ids if isinstance(existing_ids, (set, frozenset)) else frozenset(existing_ids)
    cols: dict[str, list[Any]] = {name: [] for name in _FRAME_COLUMNS}
    for idx, rec in enumerate(records):
        examples = rec.in_scope + rec.out_of_scope
        ex_lens = [len(_text(e.input) or "") for e in examples]
        texts = [rec.edit_input, rec.edit_label, rec.subject, rec.ground_truth]
        texts += [t for e in examples for t in (e.input, e.label)]
        joined = "\n".join(_text(t) for t in texts if t is not None)
        edit_input, edit_label, subject = _text(rec.edit_input), _text(rec.edit_label), _text(rec.subject)
        match = _ROW_SUFFIX.search(rec.source or "")
        cols["idx"].append(idx)
        cols["row"].append(int(match.group(1)) if match else idx + 1)
        cols["source"].append(rec.source)
        cols["task"].append(rec.task)
        cols["edit_id"].append(_clean(_text(rec.edit_id)))
        cols["edit_input"].append(_clean(edit_input))
        cols["edit_label"].append(_clean(edit_label))
        cols["edit_label_norm"].append(None if edit_label is None else _clean(edit_label.strip().casefold()))
        cols["subject_in_input"].append(
            None if not subject or edit_input is None else subject.casefold() in edit_input.casefold()
        )
        cols["n_in_scope"].append(len(rec.in_scope))
        cols["example_input_min_chars"].append(min(ex_lens) if ex_lens else None)
        cols["example_input_max_chars"].append(max(ex_lens) if ex_lens else None)
        cols["has_control_chars"].append(BAD_CHARS.search(joined) is not None)
        cols["label_equals_input"].append(_squash(edit_input) == _squash(edit_label))
        cols["in_memory"].append(rec.edit_id in existing)
    started = time.perf_counter()
    token_len = token_lengths([t or "" for t in cols["edit_input"]], [t or "" for t in cols["edit_label"]], tokenizer)
    if timings is not None:
        timings["tokenize_s"] = time.perf_counter() - started
    frame = pd.DataFrame({name: pd.Series(values, dtype=_FRAME_COLUMNS[name]) for name, values in cols.items()})
    frame["token_len"] = pd.Series(token_len, dtype="int64")
    # Unnamed on purpose: GX takes a named index for unexpected_index_column_names (the slow path).
    frame.index = pd.Index((frame["row"] if frame["row"].is_unique else frame["idx"]).to_numpy(), dtype="int64")
    return frame


_FRAME_COLUMNS: dict[str, str] = {
    "idx": "int64",
    "row": "int64",
    "source": "str",
    "task": "str",
    "edit_id": "str",
    "edit_input": "str",
    "edit_label": "str",
    "edit_label_norm": "str",
    "subject_in_input": "boolean",
    "n_in_scope": "int64",
    "example_input_min_chars": "Int64",
    "example_input_max_chars": "Int64",
    "has_control_chars": "bool",
    "label_equals_input": "bool",
    "in_memory": "bool",
}


def _text(value: Any) -> str | None:
    return value if value is None or isinstance(value, str) else str(value)


def _clean(text: str | None) -> str | None:
    return _SURROGATES.sub("\ufffd", text) if text and _SURROGATES.search(text) else text


def _squash(text: str | None) -> str | None:
    """Case- and whitespace-insensitive form, for the label == input check."""
    return None if text is None else " ".join(text.split()).casefold()


def token_lengths(inputs: Sequence[str], labels: Sequence[str], tokenizer: str) -> np.ndarray:
    """Tokens in the pair ``[CLS] input [SEP] label [SEP]`` for each row, batch-tokenised.

    Uses the Rust tokenizer directly (about 30% faster than the transformers call and
    free of its "sequence longer than model max length" warning) unless it has
    truncation or padding configured, which would distort the lengths.
    """
    if not inputs:
        return np.zeros(0, dtype=np.int64)
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
    return np.asarray(lengths, dtype=np.int64)


# ---------------------------------------------------------------- the suite


def build_suite(task: str, cfg: ValidationConfig, *, training: bool = True) -> "ExpectationSuite":
    """The expectation suite for ``task``: the common checks plus the task's own (:data:`TASK_CHECKS`)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    import great_expectations as gx

    E, lo, hi = gx.expectations, cfg.min_chars, cfg.max_chars
    checks = [E.ExpectColumnValuesToNotBeNull(column=c, description=f"{c} is required") for c in _REQUIRED]
    checks.append(E.ExpectColumnValuesToBeInSet(column="task", value_set=[task], description=f"task is {task!r}"))
    checks.append(E.ExpectColumnValuesToBeUnique(column="edit_id", description="unique in the batch (first copy kept)"))
    for c in ("edit_input", "edit_label"):
        checks.append(E.ExpectColumnValuesToMatchRegex(column=c, regex=r"\S", description=f"{c} is not blank"))
        checks.append(E.ExpectColumnValueLengthsToBeBetween(
            column=c, min_value=lo, max_value=hi, description=f"{c} has {lo}..{hi} characters"))
    bounds = [
        ("example_input_min_chars", lo, None, f"every example input has >= {lo} characters"),
        ("example_input_max_chars", None, hi, f"every example input has <= {hi} characters"),
        ("token_len", None, cfg.max_tokens, f"input + label take <= {cfg.max_tokens} tokens of {cfg.tokenizer!r}"),
    ]
    if training and cfg.require_in_scope:
        bounds.append(("n_in_scope", 1, None, "at least one in-scope example (training data)"))
    checks += [E.ExpectColumnValuesToBeBetween(column=c, min_value=a, max_value=b, description=d)
               for c, a, b, d in bounds]
    flags = {
        "in_memory": "edit_id is not already in the memory",
        "label_equals_input": "edit_label differs from edit_input (ignoring case and spaces)",
        "has_control_chars": "no control characters, U+FFFD or lone surrogates in any text",
    }
    checks += [E.ExpectColumnValuesToBeInSet(column=c, value_set=[False], description=d) for c, d in flags.items()]
    checks += [E.ExpectColumnValuesToBeInSet(column=c, value_set=v, description=d) for c, v, d in TASK_CHECKS[task]]
    # Passed to the constructor: suite.add_expectation() needs an active data context in GX 1.x.
    return gx.ExpectationSuite(name=f"serac-{task}", expectations=checks)


_REQUIRED = ("task", "edit_id", "edit_input", "edit_label")

TASK_CHECKS: dict[str, list[tuple[str, list[Any], str]]] = {
    "qa": [],
    "fact": [("subject_in_input", [True], "the subject, when given, occurs in the prompt")],
    "fc": [("edit_label_norm", ["true", "false"], "label is true or false (any case)")],
    "convsent": [("edit_label", ["positive", "negative"], "label is positive or negative")],
    "qa_hard": [],
}
"""Per-task ``expect_column_values_to_be_in_set`` checks on top of the common ones: (column, values, meaning)."""


def reason_name(expectation_config: dict[str, Any]) -> str:
    """``expect_column_values_to_not_be_null(edit_label)``: the quarantine reason of an expectation."""
    return f"{expectation_config['type']}({expectation_config['kwargs'].get('column', '')})"


def run_suite(frame: pd.DataFrame, suite: "ExpectationSuite") -> dict[str, Any]:
    """Validate ``frame`` with ``suite`` in an ephemeral GX context; the result as plain JSON types.

    Run-specific metadata (the batch load time) is dropped so reruns give identical JSON.
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    asset = context.data_sources.add_pandas("serac").add_dataframe_asset(suite.name)
    batch = asset.add_batch_definition_whole_dataframe("batch").get_batch(batch_parameters={"dataframe": frame})
    result = to_jsonable(batch.validate(suite, result_format=RESULT_FORMAT).to_json_dict())
    result.get("meta", {}).get("batch_markers", {}).pop("ge_load_time", None)
    return result


def to_jsonable(obj: Any) -> Any:
    """``obj`` with numpy scalars/arrays and pandas NA turned into plain Python values."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is pd.NA or obj is pd.NaT:
        return None
    return obj


def failures_by_idx(result: dict[str, Any], frame: pd.DataFrame) -> dict[int, list[str]]:
    """Failed expectation names per ``idx``, from one suite result on ``frame``.

    Raises ``RuntimeError`` when an expectation errored or failed without naming
    rows: silently passing those rows would be worse than stopping.
    """
    to_idx = dict(zip(frame.index.tolist(), frame["idx"].tolist()))
    later_copy = dict(zip(frame.index.tolist(), frame["edit_id"].duplicated(keep="first").tolist()))
    failed: dict[int, list[str]] = {}
    for res in result["results"]:
        config = res["expectation_config"]
        name = reason_name(config)
        if _raised(res.get("exception_info")):
            raise RuntimeError(f"expectation {name} raised: {res['exception_info']}")
        if res["success"]:
            continue
        detail = res.get("result", {})
        hits = detail.get("unexpected_index_list") or []
        if len(hits) != detail.get("unexpected_count", -1) or not hits:
            raise RuntimeError(f"expectation {name} failed without a complete list of failing rows")
        if config["type"] == "expect_column_values_to_be_unique":
            hits = [label for label in hits if later_copy[label]]
        for label in hits:
            failed.setdefault(to_idx[label], []).append(name)
    return failed


def _raised(info: Any) -> bool:
    if not isinstance(info, dict):
        return False
    if "raised_exception" in info:
        return bool(info["raised_exception"])
    return any(_raised(v) for v in info.values())


# ---------------------------------------------------------------- the report


@dataclass
class ValidationReport:
    """Outcome of validating one batch. ``rows_in == len(passed) + len(quarantined)``."""

    rows_in: int
    passed: list[EditRecord]
    quarantined: list[q.QuarantinedRow]
    reason_counts: dict[str, int]
    """Quarantined rows per reason, most common first (a row with two reasons counts twice)."""
    failure_rate: float
    max_failure_rate: float
    batch_ok: bool
    """False when ``failure_rate > max_failure_rate``: the batch as a whole is refused."""
    gx_result: dict[str, Any]
    """``{"success": bool, "index": "row" | "idx", "runs": {task: GX suite result}}``, JSON-able;
    ``index`` says what GX's ``unexpected_index_list`` holds: source rows, or batch positions."""
    tasks: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict, compare=False)
    """Seconds per phase (``frame_s``, ``tokenize_s``, ``gx_s``, ``total_s``); not written to disk."""

    def summary(self) -> dict[str, Any]:
        """The deterministic, JSON-able headline numbers (what ``summary.json`` holds)."""
        return {
            "rows_in": self.rows_in,
            "passed": len(self.passed),
            "quarantined": len(self.quarantined),
            "failure_rate": self.failure_rate,
            "max_failure_rate": self.max_failure_rate,
            "batch_ok": self.batch_ok,
            "tasks": list(self.tasks),
            "reasons": dict(self.reason_counts),
            "gx_success": self.gx_result.get("success"),
        }


def validate_records(
    records: Sequence[EditRecord],
    rejected: Sequence[RejectedRow],
    cfg: ValidationConfig,
    *,
    task: str | None = None,
    existing_ids: Iterable[str] = frozenset(),
    training: bool = True,
) -> ValidationReport:
    """Validate parsed ``records`` (plus the loader's ``rejected`` rows) and split them.

    ``task`` pins the suite (records of another task fail ``..._in_set(task)``);
    without it each task present gets its own suite. ``existing_ids`` are the
    edit_ids already in the memory; ``training`` adds the in-scope requirement
    (when ``cfg.require_in_scope``).
    """
    started = time.perf_counter()
    timings: dict[str, float] = {}
    records = list(records)
    frame = record_frame(records, cfg.tokenizer, existing_ids=existing_ids, timings=timings)
    tasks = (task,) if task is not None else tuple(sorted(set(frame["task"].tolist())))
    gx_started = time.perf_counter()
    runs: dict[str, Any] = {}
    failed: dict[int, list[str]] = {}
    for name in tasks:
        suite = build_suite(name, cfg, training=training)
        part = frame if task is not None else frame[frame["task"] == name]
        runs[name] = run_suite(part, suite)
        order = {reason_name(e.configuration.to_json_dict()): i for i, e in enumerate(suite.expectations)}
        for i, reasons in failures_by_idx(runs[name], part).items():
            failed[i] = sorted(reasons, key=lambda r: order.get(r, len(order)))
    timings["gx_s"] = time.perf_counter() - gx_started

    rows = frame["row"].tolist()
    passed = [rec for i, rec in enumerate(records) if i not in failed]
    quarantined = q.sort_rows(
        [q.from_rejected(r) for r in rejected]
        + [q.from_record(records[i], rows[i], reasons) for i, reasons in failed.items()]
    )
    rows_in = len(records) + len(rejected)
    if rows_in != len(passed) + len(quarantined):  # the invariant every consumer relies on
        raise AssertionError(f"rows in {rows_in} != passed {len(passed)} + quarantined {len(quarantined)}")
    failure_rate = len(quarantined) / rows_in if rows_in else 0.0
    timings["total_s"] = time.perf_counter() - started
    timings["frame_s"] = timings["total_s"] - timings["gx_s"] - timings.get("tokenize_s", 0.0)
    return ValidationReport(
        rows_in=rows_in,
        passed=passed,
        quarantined=quarantined,
        reason_counts=q.reason_counts(quarantined),
        failure_rate=failure_rate,
        max_failure_rate=cfg.max_failure_rate,
        batch_ok=failure_rate <= cfg.max_failure_rate,
        gx_result={
            "success": all(r.get("success", False) for r in runs.values()),
            "index": "row" if frame["row"].is_unique else "idx",
            "runs": runs,
        },
        tasks=tasks,
        timings=timings,
    )


def validate_file(
    path: str | Path,
    out_dir: str | Path,
    cfg: ValidationConfig,
    *,
    format: str | None = None,
    task: str | None = None,
    existing_ids: Iterable[str] = frozenset(),
    training: bool = True,
) -> ValidationReport:
    """Load ``path``, validate it and write the outputs into ``out_dir`` (:func:`~serac.data.quarantine.write_outputs`).

    Whole-file problems raise :class:`~serac.data.errors.DataFileError` before
    anything is written. Records are stamped ``ingested_at`` = the file's
    modification time (whole seconds, UTC), so re-running on the same file
    rewrites byte-identical outputs (rows that carry their own ``ingested_at`` keep it).
    """
    from serac.data.loaders import load_file

    stamp = datetime.fromtimestamp(int(Path(path).stat().st_mtime), UTC) if Path(path).exists() else None
    loaded = load_file(path, format=format, task=task, ingested_at=stamp)
    report = validate_records(
        loaded.records, loaded.rejected, cfg, task=task, existing_ids=existing_ids, training=training
    )
    q.write_outputs(out_dir, report, path=str(path), format=loaded.format, training=training)
    return report
