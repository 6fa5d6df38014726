"""``serac edit add``, ``serac query`` and ``serac memory ls|rm|stats``.

They work on the packaged editor (``editor.artifact_dir``) and the live edit
memory (``memory.root``); ``--editor`` / ``--memory`` override both.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from serac.cli.app import ParamsOpt, app, fail, load_params
from serac.cli.base_choice import BaseCallableOpt, BaseUrlOpt, operator_base
from serac.config import DEFAULT_PARAMS, ProjectConfig
from serac.data.text import escape_for_terminal

if TYPE_CHECKING:
    from serac.memory.audit import AuditContext

edit_app = typer.Typer(help="Add edits to the edit memory.", no_args_is_help=True)
memory_app = typer.Typer(help="Inspect and change the edit memory.", no_args_is_help=True)
app.add_typer(edit_app, name="edit")
app.add_typer(memory_app, name="memory")

EditorOpt = Annotated[Optional[Path], typer.Option("--editor", help="Packaged editor (default: editor.artifact_dir).")]
MemoryOpt = Annotated[Optional[Path], typer.Option("--memory", help="Edit memory directory (default: memory.root).")]
ReasonOpt = Annotated[Optional[str], typer.Option("--reason", help="Why (a ticket id or note), for the audit trail.")]


def _config(params: Path, memory: Path | None) -> ProjectConfig:
    cfg = load_params(params)
    if memory is not None:
        cfg = replace(cfg, memory=replace(cfg.memory, root=str(memory)))
    return cfg


def _load_editor(cfg: ProjectConfig, editor: Path | None, base_callable: str | None = None,
                 base_url: str | None = None):
    from serac.editor import SeracEditor
    from serac.models.artifacts import ArtifactError

    directory = editor if editor is not None else Path(cfg.editor.artifact_dir)
    base = operator_base(cfg, base_callable, base_url)
    try:
        return SeracEditor.load(directory, memory_root=cfg.memory.root, memory_config=cfg.memory, base=base,
                                validation=cfg.validation, guard=cfg.guard)
    except ArtifactError as exc:
        fail(f"{exc} (train one with `serac train`)")


def cell(value: object) -> Text:
    """A table cell showing ``value`` literally: control, bidi and zero-width characters escaped, no markup."""
    return Text(escape_for_terminal(value))


def _audit_context(reason: str | None, source: str) -> AuditContext:
    """The OS user running the command, ``reason``, ``source``: who and why, for the audit trail."""
    from serac.memory.audit import AuditContext

    try:
        return AuditContext.local(reason, source)
    except ValueError as exc:
        fail(f"--reason: {exc}")


@edit_app.command("add")
def edit_add(
    file: Annotated[Optional[Path], typer.Argument(help="Batch of edits (any supported format).")] = None,
    input: Annotated[Optional[str], typer.Option("--input", help="Edit input (instead of FILE).")] = None,
    label: Annotated[Optional[str], typer.Option("--label", help="New label for --input.")] = None,
    rephrase: Annotated[Optional[list[str]], typer.Option("--rephrase", help="An in-scope rephrasing (repeatable).")] = None,
    task: Annotated[str, typer.Option("--task", help="Task of --input edits (qa, fact, fc, convsent).")] = "qa",
    out: Annotated[Optional[Path], typer.Option("--out", help="Validation outputs (default data/validated/<stem>).")] = None,
    params: ParamsOpt = DEFAULT_PARAMS,
    editor: EditorOpt = None,
    memory: MemoryOpt = None,
    reason: ReasonOpt = None,
) -> None:
    """Validate edits, quarantine bad rows, and add the good ones to the memory (idempotent).

    A FILE is validated as a batch (the GX suite; outputs in ``--out``); an ``--input`` edit
    with the same row rules, one edit at a time. Edits already in the memory are reported as
    already present. An edit refused by the blast-radius guard stops the command: nothing is added.
    """
    from serac.data.errors import DataFileError
    from serac.data.rules import EditRefused
    from serac.data.schema import EditRecord, Example
    from serac.data.validation import validate_file

    if (file is None) == (input is None):
        fail("give either FILE or --input/--label")
    if input is not None and not label:
        fail("--input needs --label")
    audit = _audit_context(reason, "cli" if file is None else f"cli {file}")
    cfg = _config(params, memory)
    console = Console(highlight=False)
    quarantined = 0
    try:
        if file is not None:
            target = out if out is not None else Path("data/validated") / file.stem
            # Edits already live pass validation here and are skipped by the memory: "already present".
            report = validate_file(file, target, cfg.validation, training=False)
            for row in report.quarantined:
                console.print(Text.assemble(("quarantined", "yellow"), f" {escape_for_terminal(row.source)}: "
                                            f"{', '.join(row.reasons)}"), soft_wrap=True)
            if not report.batch_ok:
                fail(f"batch failed validation ({report.failure_rate:.0%} quarantined); nothing added", code=1)
            records, quarantined = report.passed, len(report.quarantined)
        else:
            records = [EditRecord(task, input, label, in_scope=[Example(r, label) for r in rephrase or ()],
                                  source="cli")]
    except (DataFileError, ValueError) as exc:
        fail(escape_for_terminal(exc))
    try:
        result = _load_editor(cfg, editor).edit(records, audit=audit)
    except EditRefused as exc:
        for refusal in exc.refusals:
            where = records[refusal.position].source or f"edit {refusal.position}"
            console.print(Text.assemble(("refused", "red"), f" {escape_for_terminal(where)} "
                                        f"({refusal.edit_id}): {', '.join(refusal.reasons)}"), soft_wrap=True)
        fail(f"{len(exc.refusals)} edit(s) refused; nothing added", code=1)
    if file is None and result.skipped:
        console.print(f"edit {result.skipped[0]} already present; memory version {result.version} (unchanged)",
                      soft_wrap=True)
        return
    console.print(
        f"added {len(result.added)} edit(s), {len(result.skipped)} already present, "
        f"{quarantined} quarantined; memory version {result.version}",
        soft_wrap=True,
    )


@app.command("query")
def query(
    queries: Annotated[list[str], typer.Argument(help="One or more queries.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines instead of a table.")] = False,
    params: ParamsOpt = DEFAULT_PARAMS,
    editor: EditorOpt = None,
    memory: MemoryOpt = None,
    base_callable: BaseCallableOpt = None,
    base_url: BaseUrlOpt = None,
) -> None:
    """Answer queries with the editor: answer, route, matched edit and scope score."""
    cfg = _config(params, memory)
    ed = _load_editor(cfg, editor, base_callable, base_url)
    predictions = ed.predict(queries)
    if as_json:
        for p in predictions:
            typer.echo(json.dumps({"query": p.query, "answer": p.answer, "routed_to": p.routed_to,
                                   "edit_id": p.edit_id, "score": round(p.score, 4)}))
        return
    table = Table(title=f"threshold {ed.config.threshold}")
    for column in ("query", "answer", "route", "matched edit", "score"):
        table.add_column(column)
    for p in predictions:
        matched = ""
        if p.edit_id is not None:
            record = ed.memory.get(p.edit_id)
            matched = f"{p.edit_id[:8]} {record.edit_input} → {record.edit_label}"
        table.add_row(cell(p.query), cell(p.answer), p.routed_to, cell(matched), f"{p.score:.3f}")
    Console().print(table)


@memory_app.command("ls")
def memory_ls(
    limit: Annotated[int, typer.Option("--limit", help="Show at most this many edits.")] = 50,
    params: ParamsOpt = DEFAULT_PARAMS,
    memory: MemoryOpt = None,
) -> None:
    """List the live edits."""
    from serac.memory import EditMemory

    cfg = _config(params, memory)
    mem = EditMemory.open(cfg.memory.root, cfg.memory)
    table = Table(title=cell(f"{cfg.memory.root}: {len(mem)} edits, version {mem.version}"))
    for column in ("edit_id", "task", "edit_input", "edit_label"):
        table.add_column(column)
    for record in mem.records()[:limit]:
        table.add_row(cell(record.edit_id), cell(record.task), cell(record.edit_input), cell(record.edit_label))
    Console().print(table)


@memory_app.command("rm")
def memory_rm(
    edit_ids: Annotated[list[str], typer.Argument(help="edit_ids to forget.")],
    params: ParamsOpt = DEFAULT_PARAMS,
    memory: MemoryOpt = None,
    reason: ReasonOpt = None,
) -> None:
    """Forget edits (tombstones; they stop matching immediately)."""
    from serac.memory import EditMemory

    audit = _audit_context(reason, "cli")
    cfg = _config(params, memory)
    result = EditMemory.open(cfg.memory.root, cfg.memory).remove(edit_ids, audit=audit)
    Console().print(f"removed {len(result.removed)}, unknown {len(result.unknown)}; memory version {result.version}")
    if result.unknown:
        raise typer.Exit(1)


@memory_app.command("stats")
def memory_stats(params: ParamsOpt = DEFAULT_PARAMS, memory: MemoryOpt = None) -> None:
    """Counts, version, embedding size, index kind and bytes on disk."""
    from serac.memory import EditMemory

    cfg = _config(params, memory)
    stats = EditMemory.open(cfg.memory.root, cfg.memory).stats()
    table = Table(title=str(cfg.memory.root))
    table.add_column("")
    table.add_column("value", justify="right")
    for key, value in stats.items():
        table.add_row(key, str(value))
    Console().print(table)
