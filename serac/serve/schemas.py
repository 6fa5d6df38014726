"""Request and response bodies of the service (they make its OpenAPI spec)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from serac.data.schema import TASKS
from serac.memory.audit import MAX_REASON_CHARS

Task = Literal[TASKS]  # type: ignore[valid-type]


def _valid_unicode(text: str) -> str:
    """Refuse lone surrogates (JSON ``\\ud800`` escapes): they are not Unicode text and cannot be stored."""
    for ch in text:
        if "\ud800" <= ch <= "\udfff":
            raise ValueError(f"lone surrogate U+{ord(ch):04X} is not valid Unicode text")
    return text


Text = Annotated[str, AfterValidator(_valid_unicode)]


class ExampleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: Text = Field(min_length=1, description="A query the edit should (in_scope) or must not (out_of_scope) change.")
    label: Text | None = Field(default=None, description="Its expected answer, if known.")


class EditIn(BaseModel):
    """One edit. Its id is the content hash of (task, edit_input, edit_label), computed by the server."""

    model_config = ConfigDict(extra="forbid")

    task: Task = "qa"
    edit_input: Text = Field(min_length=1)
    edit_label: Text = Field(min_length=1)
    in_scope: list[ExampleIn] = Field(default_factory=list, max_length=64)
    out_of_scope: list[ExampleIn] = Field(default_factory=list, max_length=64)
    subject: Text | None = None
    ground_truth: Text | None = None
    edit_id: str | None = Field(default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$",
                                description="Optional; must equal the content hash or the edit is refused (422).")


class EditsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    edits: list[EditIn] = Field(min_length=1, description="Refused with 413 above serve.max_edits_per_request.")
    reason: Text | None = Field(default=None, max_length=MAX_REASON_CHARS,
                                description="Why (a ticket id or note): recorded in the memory's audit trail.")


class EditsResponse(BaseModel):
    added: list[str] = Field(description="Ids stored by this request (durable when the response is sent).")
    skipped: list[str] = Field(description="Ids already live (or repeated in the request): unchanged.")
    memory_version: int


class DeleteResponse(BaseModel):
    edit_id: str
    removed: bool
    memory_version: int


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queries: list[Text] = Field(min_length=1, description="Refused with 413 above serve.max_queries_per_request.")


class MatchedEdit(BaseModel):
    edit_id: str
    edit_input: str
    edit_label: str


class PredictionOut(BaseModel):
    query: str
    answer: str
    route: Literal["counterfactual", "base"]
    edit_id: str | None = Field(description="The best-scoring edit (also when below the threshold).")
    score: float = Field(description="Scope probability of that edit covering the query.")
    matched_edit: MatchedEdit | None = Field(description="The edit the counterfactual model was conditioned on.")


class PredictResponse(BaseModel):
    predictions: list[PredictionOut]
    memory_version: int


class HealthResponse(BaseModel):
    status: Literal["ok"]
    edits: int
    memory_version: int
    index_kind: str | None
    threshold: float


class ErrorResponse(BaseModel):
    detail: str
