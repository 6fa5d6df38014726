"""The FastAPI application: routes, limits and error responses.

``POST /edits``, ``DELETE /edits/{edit_id}``, ``POST /predict``, ``GET /health``; the
OpenAPI spec is at ``/openapi.json`` (docs at ``/docs``). Every refusal is a 4xx with a
``detail`` that says why: 413 for oversized bodies and batches, 422 for malformed input.
"""

from __future__ import annotations

from fastapi import FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse

from serac import __version__
from serac.memory.audit import MAX_REASON_CHARS, AuditContext
from serac.serve.schemas import (
    DeleteResponse,
    EditsRequest,
    EditsResponse,
    ErrorResponse,
    HealthResponse,
    MatchedEdit,
    PredictionOut,
    PredictRequest,
    PredictResponse,
)
from serac.serve.service import EditService, RequestError

_ERRORS = {413: {"model": ErrorResponse, "description": "Body or batch too large"},
           422: {"model": ErrorResponse, "description": "Malformed request"}}


def create_app(service: EditService) -> FastAPI:
    """The service's ASGI app; routes call ``service`` (plain functions run in the thread pool)."""
    app = FastAPI(title="serac live editor", version=__version__,
                  description="SERAC memory-based model editing: add and remove edits live, query the editor.")
    limit = service.config.max_body_bytes

    @app.middleware("http")
    async def refuse_large_bodies(request: Request, call_next):
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return JSONResponse({"detail": f"request body of {length} bytes; the limit is {limit} "
                                           "(serve.max_body_bytes)"}, status_code=413)
        return await call_next(request)

    @app.exception_handler(RequestError)
    async def request_error(_: Request, exc: RequestError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    @app.get("/health", response_model=HealthResponse)
    def health() -> HealthResponse:
        memory = service.editor.memory
        return HealthResponse(status="ok", edits=len(memory), memory_version=memory.version,
                              index_kind=memory.stats()["index_kind"], threshold=service.editor.config.threshold)

    @app.post("/edits", response_model=EditsResponse, responses=_ERRORS)
    def add_edits(body: EditsRequest, request: Request) -> EditsResponse:
        """Add edits (idempotent by edit_id); visible to the next query, durable once answered."""
        result = service.add(body.edits, audit=audit_context(request, body.reason))
        return EditsResponse(added=result.added, skipped=result.skipped, memory_version=result.version)

    @app.delete("/edits/{edit_id}", response_model=DeleteResponse, responses=_ERRORS)
    def delete_edit(
        request: Request,
        edit_id: str = Path(min_length=1, max_length=128),
        reason: str | None = Query(default=None, max_length=MAX_REASON_CHARS,
                                   description="Why (a ticket id or note), for the audit trail."),
    ) -> DeleteResponse:
        """Forget an edit; it stops matching at once. ``removed`` is false when it was not live."""
        result = service.remove(edit_id, audit=audit_context(request, reason))
        return DeleteResponse(edit_id=edit_id, removed=bool(result.removed), memory_version=result.version)

    @app.post("/predict", response_model=PredictResponse, responses=_ERRORS)
    def predict(body: PredictRequest) -> PredictResponse:
        """Answer queries: route, matched edit and scope score for each."""
        predictions = service.predict(body.queries)
        out = []
        for p in predictions:
            record = service.matched(p.edit_id) if p.routed_to == "counterfactual" else None
            matched = MatchedEdit(edit_id=record.edit_id, edit_input=record.edit_input,
                                  edit_label=record.edit_label) if record is not None else None
            out.append(PredictionOut(query=p.query, answer=p.answer, route=p.routed_to, edit_id=p.edit_id,
                                     score=p.score, matched_edit=matched))
        return PredictResponse(predictions=out, memory_version=service.editor.memory.version)

    return app


def audit_context(request: Request, reason: str | None) -> AuditContext:
    """Who (the authenticated token's name), why and from which client address, for the audit trail."""
    principal = getattr(request.state, "principal", "anonymous")
    client = request.client.host if request.client is not None else "unknown"
    return AuditContext(actor=str(principal), reason=reason, source=f"api {client}")
