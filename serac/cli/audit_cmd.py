"""``serac memory history [EDIT_ID] [--verify]``: the memory's audit trail (see serac.memory.audit)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from serac.cli.app import ParamsOpt, fail
from serac.cli.editor_cmds import MemoryOpt, _config, memory_app
from serac.config import DEFAULT_PARAMS

if TYPE_CHECKING:
    from serac.memory.audit import AuditRecord


@memory_app.command("history")
def memory_history(
    edit_id: Annotated[Optional[str], typer.Argument(help="Only the changes that name this edit.")] = None,
    verify: Annotated[bool, typer.Option("--verify", help="Check the hash chain and the versions; exit 1 on a problem.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the records as JSON lines.")] = False,
    limit: Annotated[int, typer.Option("--limit", help="Show at most the newest this many records (0: all).")] = 0,
    params: ParamsOpt = DEFAULT_PARAMS,
    memory: MemoryOpt = None,
) -> None:
    """Who changed the memory, when, what (edits, versions), why and from where; oldest first."""
    from serac.memory import audit
    from serac.memory.layout import MemoryCorruptError

    cfg = _config(params, memory)
    root = Path(cfg.memory.root)
    try:
        pairs = audit.history(root, edit_id)
        problems = audit.verify(root) if verify else []
    except (audit.AuditError, MemoryCorruptError) as exc:
        fail(str(exc))
    shown = pairs[-limit:] if limit > 0 else pairs
    for record, committed in shown:
        if as_json:
            typer.echo(json.dumps({**record.to_json(), "committed": committed}, ensure_ascii=True))
        else:
            typer.echo(format_record(record, committed, edit_id))
    if not as_json:
        what = f" naming {audit.escape_text(edit_id)}" if edit_id is not None else ""
        typer.echo(f"{len(pairs)} change(s){what} in {audit.escape_text(str(audit.audit_path(root)))}", err=True)
        if pairs and edit_id is None and pairs[0][0].version_before > 0:
            typer.echo(f"the trail starts at v{pairs[0][0].version_before} (earlier changes were not audited)", err=True)
    if verify:
        for problem in problems:
            typer.echo(f"problem: {audit.escape_text(problem)}", err=True)
        if problems:
            raise typer.Exit(1)
        typer.echo("audit trail verified: hash chain intact, every version accounted for", err=True)


def format_record(record: AuditRecord, committed: bool = True, edit_id: str | None = None) -> str:
    """One line per record, escaped for the terminal; ``edit_id`` adds that edit's row source."""
    from serac.memory.audit import escape_text

    ids = record.edit_ids
    parts = [
        f"#{record.seq}", record.at, record.action,
        f"v{record.version_before}->v{record.version_after}" + ("" if committed else " (not committed)"),
        f"by {record.actor}",
    ]
    if record.source:
        parts.append(f"via {record.source}")
    if record.reason:
        parts.append(f'reason "{record.reason}"')
    if ids:
        parts.append(f"{len(ids)} edit(s): " + ", ".join(ids[:3]) + (f", ... (+{len(ids) - 3})" if len(ids) > 3 else ""))
    if edit_id is not None and record.source_of(edit_id):
        parts.append(f"from {record.source_of(edit_id)}")
    sealed = [s["name"] for s in record.details.get("segments_written", ()) if s.get("index")]
    dropped = record.details.get("segments_dropped", ())
    if sealed:
        parts.append(f"sealed {', '.join(sealed)}")
    if dropped:
        parts.append(f"dropped {len(dropped)} segment(s)")
    return escape_text(" ".join(parts))
