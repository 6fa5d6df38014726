"""Bearer-token authentication for the service as pure ASGI middleware (the token logic is ``serac.auth``).

Each API route declares the one scope it needs with :func:`requires` (which also writes it into
the OpenAPI spec as the route's security requirement, so the spec and the check cannot drift).
The middleware runs before the body is read: a request without a valid token gets 401 with
``WWW-Authenticate: Bearer``, one without the route's scope 403. Routes outside the API (the
spec and its docs pages) are public; an unknown path needs a valid token before it gets its 404.
A request that passed sets ``request.state.principal`` to the token's name (``"anonymous"``
when auth is disabled or the route is public).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi.routing import APIRoute
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from serac.auth import SCOPES, Principal, TokenError, TokenVerifier
from serac.serve.errors import error_response

ANONYMOUS = "anonymous"
SCHEME = "bearerAuth"
_REALM = 'Bearer realm="serac"'
_log = logging.getLogger(__name__)


def requires(scope: str) -> dict[str, Any]:
    """Route keyword arguments declaring that it needs ``scope`` (a security requirement in the spec)."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")
    return {"openapi_extra": {"security": [{SCHEME: [scope]}]}}


def required_scope(route: APIRoute) -> str:
    """The scope ``route`` declared with :func:`requires`; ValueError when it declared none."""
    try:
        return str((route.openapi_extra or {})["security"][0][SCHEME][0])
    except (KeyError, IndexError, TypeError):
        raise ValueError(f"route {route.path} declares no scope (use serac.serve.auth.requires)") from None


def security_scheme() -> dict[str, Any]:
    return {SCHEME: {"type": "http", "scheme": "bearer",
                     "description": "`serac tokens create --name N --scope read,write`; scopes: read (POST "
                                    "/predict, GET /health), write (POST /edits), admin (DELETE /edits/{edit_id})."}}


class BearerAuth:
    """``verifier`` None disables auth (every request is ``anonymous``); ``routes`` are the app's routes."""

    def __init__(self, app: ASGIApp, verifier: TokenVerifier | None, routes: Sequence[BaseRoute]):
        self.app = app
        self.verifier = verifier
        self.routes = routes
        for route in routes:
            if isinstance(route, APIRoute):
                required_scope(route)  # fail at start-up, not on the first request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        needed = self._needed(scope)
        principal = ANONYMOUS
        if self.verifier is not None and needed is not None:
            outcome = _authenticate(self.verifier, scope, needed)
            if not isinstance(outcome, Principal):
                await outcome(scope, receive, send)
                return
            principal = outcome.name
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)

    def _needed(self, scope: Scope) -> str | None:
        """The scope the request needs; "" for any valid token; None for a public route."""
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return required_scope(route) if isinstance(route, APIRoute) else None
        return ""  # unknown path or method: authenticate before telling what exists



def _authenticate(verifier: TokenVerifier, scope: Scope, needed: str) -> Principal | JSONResponse:
    """The request's principal, or the refusal to send (401, 403; 503 when the store is unusable)."""
    token = _bearer(scope)
    if token is None:
        return error_response(401, "missing bearer token (Authorization: Bearer <token>)",
                              {"www-authenticate": _REALM})
    try:
        who = verifier.verify(token)
    except TokenError as exc:  # a broken store lets no one in
        _log.error("token store unusable: %s", exc)
        return error_response(503, "authentication unavailable (token store unreadable)")
    if who is None:
        return error_response(401, "invalid or revoked token", {"www-authenticate": f'{_REALM}, error="invalid_token"'})
    if needed and needed not in who.scopes:
        return error_response(403, f"token {who.name!r} lacks the {needed!r} scope",
                              {"www-authenticate": f'{_REALM}, error="insufficient_scope", scope="{needed}"'})
    return who


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            kind, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            return token if kind.lower() == "bearer" and token else None
    return None


class AuthRequired(RuntimeError):
    """The service would be reachable from other hosts with no authentication configured."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost may resolve to anything
        return False


def start_policy(host: str, tokens_file: str | Path, insecure_no_auth: bool = False) -> tuple[TokenVerifier | None, str]:
    """How ``serac serve`` authenticates on ``host``: (verifier or None, a line to log).

    Auth is on when the token store exists (even empty: revoking the last token locks everyone
    out rather than opening the service). Without one the service runs unauthenticated only on
    a loopback address, or anywhere with ``insecure_no_auth``; otherwise :class:`AuthRequired`.
    A malformed or group/world-writable store raises :class:`~serac.auth.TokenError`.
    """
    if insecure_no_auth:
        return None, (f"WARNING: --insecure-no-auth: serving {host} WITHOUT authentication; anyone who reaches "
                      "the port can add and delete edits")
    path = Path(tokens_file)
    if path.exists() or path.is_symlink():
        verifier = TokenVerifier(path)
        return verifier, f"bearer-token auth on: {len(verifier)} token(s) in {path}"
    if is_loopback(host):
        return None, (f"WARNING: no token store at {path}: serving loopback {host} without authentication "
                      "(create tokens with `serac tokens create` to turn auth on)")
    raise AuthRequired(f"refusing to serve {host} without authentication: no token store at {path}. Create a "
                       "token with `serac tokens create --name NAME --scope read,write` (or --tokens PATH), or "
                       "pass --insecure-no-auth to serve unauthenticated anyway")
