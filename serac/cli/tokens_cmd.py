"""``serac tokens create|revoke|ls``: the bearer tokens of ``serac serve`` (see docs/serving.md, Security)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from serac.cli.app import ParamsOpt, app, fail, load_params
from serac.config import DEFAULT_PARAMS

tokens_app = typer.Typer(help="Bearer tokens for `serac serve` (only salted hashes are stored).", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")

TokensOpt = Annotated[Optional[Path], typer.Option("--tokens", help="Token store (default serve.tokens_file).")]


def _store(params: Path, tokens: Path | None):
    from serac.auth import TokenStore

    return TokenStore(tokens if tokens is not None else load_params(params).serve.tokens_file)


@tokens_app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="Who holds it (recorded as the principal of each request).")],
    scope: Annotated[str, typer.Option("--scope", help="Comma-separated: read (predict, health), write (add edits), "
                                                       "admin (delete edits).")] = "read",
    params: ParamsOpt = DEFAULT_PARAMS,
    tokens: TokensOpt = None,
) -> None:
    """Create a token and print it once (it cannot be shown again)."""
    from serac.auth import TokenError

    store = _store(params, tokens)
    try:
        token = store.create(name, scope)
    except TokenError as exc:
        fail(str(exc))
    Console(stderr=True).print(f"token {name!r} stored in {store.path}; it is shown once:", markup=False,
                               highlight=False)
    typer.echo(token)


@tokens_app.command("revoke")
def revoke(
    name: Annotated[str, typer.Argument(help="The token's name.")],
    params: ParamsOpt = DEFAULT_PARAMS,
    tokens: TokensOpt = None,
) -> None:
    """Delete a token; a running server refuses it from the next request on."""
    from serac.auth import TokenError

    store = _store(params, tokens)
    try:
        removed = store.revoke(name)
    except TokenError as exc:
        fail(str(exc))
    if not removed:
        fail(f"{store.path}: no token named {name!r}", code=1)
    typer.echo(f"revoked {name}")


@tokens_app.command("ls")
def ls(params: ParamsOpt = DEFAULT_PARAMS, tokens: TokensOpt = None) -> None:
    """List token names, scopes and creation times (no secrets: none are stored)."""
    from serac.auth import TokenError

    store = _store(params, tokens)
    try:
        infos = store.list_tokens()
    except TokenError as exc:
        fail(str(exc))
    table = Table(title=f"{store.path}: {len(infos)} tokens")
    for column in ("name", "scopes", "created"):
        table.add_column(column)
    for info in infos:
        table.add_row(info.name, ",".join(info.scopes), info.created)
    Console().print(table)
