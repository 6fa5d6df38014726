"""EditService: the editor behind the HTTP routes, safe for concurrent request threads.

Writes go through :class:`~serac.memory.EditMemory`, which serialises them (thread lock plus
``flock``) and commits each one to disk before returning: an acknowledged edit survives a
killed process. Reads never wait for writes; each routing call works on one memory version.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from serac.config import ServeConfig
from serac.data.schema import EditRecord, Example
from serac.editor import Prediction, SeracEditor
from serac.memory import AddResult, RemoveResult
from serac.memory.audit import AuditContext
from serac.serve.schemas import EditIn


class RequestError(ValueError):
    """A request the service refuses; ``status`` is the HTTP status (4xx)."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass
class EditService:
    editor: SeracEditor
    config: ServeConfig

    def records(self, edits: Sequence[EditIn]) -> list[EditRecord]:
        """Validated records for ``edits``; RequestError (413 / 422) says why not."""
        if len(edits) > self.config.max_edits_per_request:
            raise RequestError(413, f"{len(edits)} edits in one request; the limit is "
                                    f"{self.config.max_edits_per_request} (serve.max_edits_per_request)")
        records = []
        for i, edit in enumerate(edits):
            texts = [edit.edit_input, edit.edit_label] + [e.input for e in (*edit.in_scope, *edit.out_of_scope)]
            self._check_texts(texts, f"edits[{i}]")
            if not edit.edit_input.strip() or not edit.edit_label.strip():
                raise RequestError(422, f"edits[{i}]: edit_input and edit_label must not be blank")
            try:
                records.append(EditRecord(
                    task=edit.task, edit_input=edit.edit_input, edit_label=edit.edit_label,
                    in_scope=tuple(Example(e.input, e.label) for e in edit.in_scope),
                    out_of_scope=tuple(Example(e.input, e.label) for e in edit.out_of_scope),
                    subject=edit.subject, ground_truth=edit.ground_truth, source="api",
                ))
            except ValueError as exc:
                raise RequestError(422, f"edits[{i}]: {exc}") from exc
            if edit.edit_id is not None and edit.edit_id != records[-1].edit_id:
                # The id is the content hash: a chosen one could shadow the real edit with other content.
                raise RequestError(422, f"edits[{i}]: edit_id {edit.edit_id} is not the content hash of this edit "
                                        f"({records[-1].edit_id}); leave it out, the server computes it")
        return records

    def add(self, edits: Sequence[EditIn], audit: AuditContext | None = None) -> AddResult:
        return self.editor.edit(self.records(edits), audit=audit)

    def remove(self, edit_id: str, audit: AuditContext | None = None) -> RemoveResult:
        return self.editor.forget([edit_id], audit=audit)

    def predict(self, queries: Sequence[str]) -> list[Prediction]:
        if len(queries) > self.config.max_queries_per_request:
            raise RequestError(413, f"{len(queries)} queries in one request; the limit is "
                                    f"{self.config.max_queries_per_request} (serve.max_queries_per_request)")
        self._check_texts(queries, "queries")
        if any(not q.strip() for q in queries):
            raise RequestError(422, "queries: a query must not be blank")
        self.editor.memory.refresh()  # another process (e.g. the nightly ingest) may have written
        return self.editor.predict(list(queries))

    def matched(self, edit_id: str | None) -> EditRecord | None:
        if edit_id is None:
            return None
        try:
            return self.editor.memory.get(edit_id)
        except KeyError:  # removed since the prediction was made
            return None

    def _check_texts(self, texts: Sequence[str], where: str) -> None:
        limit = self.config.max_text_chars
        for text in texts:
            if len(text) > limit:
                raise RequestError(422, f"{where}: a text of {len(text)} characters; the limit is {limit} "
                                        "(serve.max_text_chars)")
            if "\x00" in text:
                raise RequestError(422, f"{where}: NUL characters are not accepted")
