"""``serac memory history [EDIT_ID] [--verify]``: the memory's audit trail (see serac.memory.audit)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from serac.cli.app import ParamsOpt, fail
from serac.cli.editor_cmds import MemoryOpt, _config, memory_app
from serac.config import DEFAULT_PARAMS


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
            typer.echo(audit.format_record(record, committed, edit_id))
    if not as_json:
        what = f" naming {audit.escape_text(edit_id)}" if edit_id is not None else ""
        typer.echo(f"{len(pairs)} change(s){what} in {audit.escape_text(str(audit.audit_path(root)))}", err=True)
    if verify:
        for problem in problems:
            typer.echo(f"problem: {audit.escape_text(problem)}", err=True)
        if problems:
            raise typer.Exit(1)
        typer.echo("audit trail verified: hash chain intact, every version accounted for", err=True)
