"""The seed example on a packaged editor, as a before/after table (``make demo`` prints it).

An edit changes what the model says about its own scope and nothing else: the unedited
answer to the edit's question, then the editor's answers (with the edit in a fresh
memory) to a rephrasing (counterfactual route) and to unrelated questions (base route,
the frozen model's own answers byte for byte). The editor's live memory is never touched:
the edit goes into a temporary copy that is deleted afterwards.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from serac.data.schema import EditRecord
from serac.editor import SeracEditor
from serac.io import write_bytes
from serac.memory import EditMemory
from serac.memory.audit import AuditContext

SEED_EDIT = EditRecord("qa", "Who is the prime minister of the UK?", "Boris Johnson",
                       source="demo", edit_id="demo-seed-uk-pm")
SEED_QUERIES = ("Who is the prime minister of the UK?", "The prime minister of the UK is currently who?",
                "What team does Messi play for?", "Why is the sky blue?")


@dataclass(frozen=True)
class ShowcaseRow:
    query: str
    before: str
    """The unedited (frozen base) model's answer."""
    after: str
    """The editor's answer with the edit in memory."""
    routed_to: str
    score: float

    @property
    def changed(self) -> bool:
        return self.before != self.after


def before_after(editor: SeracEditor, edit: EditRecord = SEED_EDIT,
                 queries: Sequence[str] = SEED_QUERIES) -> list[ShowcaseRow]:
    """Each query answered by the frozen base model, then by ``editor``'s models with ``edit`` alone in memory."""
    queries = list(queries)
    before = editor.base.predict(queries)
    with tempfile.TemporaryDirectory(prefix="serac-showcase-") as tmp:
        root = Path(tmp) / "memory"
        memory = EditMemory.open(root, dataclasses.replace(editor.memory.config, root=str(root)))
        edited = SeracEditor(editor.scope, editor.counterfactual, editor.base, memory, editor.config)
        edited.edit([edit], audit=AuditContext.local("the seed example of the demo", source="demo"))
        after = edited.predict(queries)
    return [ShowcaseRow(q, b, p.answer, p.routed_to, p.score) for q, b, p in zip(queries, before, after)]


def showcase_markdown(rows: Sequence[ShowcaseRow], edit: EditRecord = SEED_EDIT, base: str = "") -> str:
    """The rows as a Markdown table, headed by the edit (and the base model's name)."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [f"Edit: **{cell(edit.edit_input)}** → **{cell(edit.edit_label)}**" + (f" (base model: {base})" if base else ""),
             "", "| query | before (unedited) | after (edited) | route | score | changed |", "|---|---|---|---|---|---|"]
    lines += [f"| {cell(r.query)} | {cell(r.before)} | {cell(r.after)} | {r.routed_to} | {r.score:.3f} | "
              f"{'yes' if r.changed else 'no'} |" for r in rows]
    return "\n".join(lines) + "\n"


def write_showcase(rows: Sequence[ShowcaseRow], path: str | Path, edit: EditRecord = SEED_EDIT, base: str = "") -> Path:
    """Write :func:`showcase_markdown` atomically to ``path``."""
    write_bytes(path, showcase_markdown(rows, edit, base).encode("utf-8"))
    return Path(path)
