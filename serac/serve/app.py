"""The FastAPI application: routes, authentication, limits and error responses.

``POST /edits``, ``DELETE /edits/{edit_id}``, ``POST /predict``, ``GET /health``; the
OpenAPI spec is at ``/openapi.json`` (docs at ``/docs``). Every refusal is a 4xx with a
``detail`` string that says why: 401/403 for a missing, bad or under-scoped bearer token,
413 for oversized bodies and batches, 422 for malformed input.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse

from serac import __version__
from serac.auth import TokenVerifier
from serac.memory.audit import MAX_REASON_CHARS, AuditContext
from serac.serve.auth import ANONYMOUS, BearerAuth, requires, security_scheme
from serac.serve.errors import error_response, validation_detail
from serac.serve.limits import BodyLimit
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

_AUTH = {401: {"model": ErrorResponse, "description": "Missing, invalid or revoked bearer token"},
         403: {"model": ErrorResponse, "description": "The token lacks this route's scope"}}
_ERRORS = {**_AUTH,
           413: {"model": ErrorResponse, "description": "Body or batch too large"},
           422: {"model": ErrorResponse, "description": "Malformed request"}}


def create_app(service: EditService, verifier: TokenVerifier | None) -> FastAPI:
    """The service's ASGI app; routes call ``service`` (plain functions run in the thread pool).

    ``verifier`` checks bearer tokens; None serves without authentication (every caller is
    ``anonymous``: only for loopback or an explicit ``--insecure-no-auth``).
    """
    app = FastAPI(title="serac live editor", version=__version__,
                  description="SERAC memory-based model editing: add and remove edits live, query the editor. "
                              "Every route needs a bearer token with its scope (see docs/serving.md, Security).")

    @app.exception_handler(RequestError)
    async def request_error(_: Request, exc: RequestError) -> JSONResponse:
        return error_response(exc.status, exc.detail)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, validation_detail(exc.errors()))

    @app.get("/health", response_model=HealthResponse, responses=_AUTH, **requires("read"))
    def health() -> HealthResponse:
        memory = service.editor.memory
        memory.refresh()  # another process may have written (cheap: one small file read when unchanged)
        return HealthResponse(status="ok", edits=len(memory), memory_version=memory.version,
                              index_kind=memory.stats()["index_kind"], threshold=service.editor.config.threshold)

    @app.post("/edits", response_model=EditsResponse, responses=_ERRORS, **requires("write"))
    def add_edits(body: EditsRequest, request: Request) -> EditsResponse:
        """Add edits (idempotent: the id is the content hash); visible to the next query, durable once answered."""
        result = service.add(body.edits, audit=audit_context(request, body.reason))
        return EditsResponse(added=result.added, skipped=result.skipped, memory_version=result.version)

    @app.delete("/edits/{edit_id}", response_model=DeleteResponse, responses=_ERRORS, **requires("admin"))
    def delete_edit(
        request: Request,
        edit_id: str = Path(min_length=1, max_length=128),
        reason: str | None = Query(default=None, max_length=MAX_REASON_CHARS,
                                   description="Why (a ticket id or note), for the audit trail."),
    ) -> DeleteResponse:
        """Forget an edit; it stops matching at once. ``removed`` is false when it was not live."""
        result = service.remove(edit_id, audit=audit_context(request, reason))
        return DeleteResponse(edit_id=edit_id, removed=bool(result.removed), memory_version=result.version)

    @app.post("/predict", response_model=PredictResponse, responses=_ERRORS, **requires("read"))
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

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            spec.setdefault("components", {})["securitySchemes"] = security_scheme()
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    # Added last = outermost: authenticate before reading (and counting) the body.
    app.add_middleware(BodyLimit, limit=service.config.max_body_bytes)
    app.add_middleware(BearerAuth, verifier=verifier, routes=app.router.routes)
    return app


def audit_context(request: Request, reason: str | None) -> AuditContext:
    """Who (the authenticated token's name), why and from which client address, for the audit trail."""
    principal = getattr(request.state, "principal", ANONYMOUS)
    client = request.client.host if request.client is not None else "unknown"
    return AuditContext(actor=str(principal), reason=reason, source=f"api {client}")
