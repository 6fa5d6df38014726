"""Error bodies that always serialise: ``{"detail": "<why>"}`` with any input echoed made JSON-safe.

A refusal must never turn into a 500 because its own message cannot be encoded (a lone
surrogate or a NaN taken from the request), so the detail is a plain string with anything
that is not encodable as UTF-8 written as a backslash escape, and it is bounded in length.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from starlette.responses import JSONResponse

MAX_DETAIL_CHARS = 2000


def safe_text(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    """``text`` encodable as UTF-8 (lone surrogates become ``\\udxxx``), cut to ``limit`` characters."""
    clean = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


def error_response(status: int, detail: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": safe_text(detail)}, status_code=status, headers=dict(headers or {}))


def validation_detail(errors: Sequence[Mapping[str, Any]]) -> str:
    """Pydantic errors as one line per field (``edits.0.task: Input should be ...``), without the input values."""
    parts = []
    for error in errors:
        loc = ".".join(safe_text(str(part), 64) for part in error.get("loc", ()) if part != "body")
        parts.append(f"{loc or 'body'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"
