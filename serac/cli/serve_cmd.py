"""``serac serve``: the live editing HTTP service (FastAPI + uvicorn; see docs/serving.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from serac.cli.app import ParamsOpt, app, fail, load_params
from serac.cli.base_choice import BaseCallableOpt, BaseUrlOpt, operator_base
from serac.config import DEFAULT_PARAMS


@app.command("serve")
def serve(
    host: Annotated[Optional[str], typer.Option("--host", help="Bind address (default serve.host).")] = None,
    port: Annotated[Optional[int], typer.Option("--port", help="Port (default serve.port).")] = None,
    params: ParamsOpt = DEFAULT_PARAMS,
    editor: Annotated[Optional[Path], typer.Option("--editor", help="Packaged editor (default editor.artifact_dir).")] = None,
    memory: Annotated[Optional[Path], typer.Option("--memory", help="Live edit memory (default memory.root).")] = None,
    tokens: Annotated[Optional[Path], typer.Option("--tokens", help="Token store (default serve.tokens_file).")] = None,
    insecure_no_auth: Annotated[bool, typer.Option(
        "--insecure-no-auth", help="Serve without authentication, even on a non-loopback address.")] = False,
    base_callable: BaseCallableOpt = None,
    base_url: BaseUrlOpt = None,
) -> None:
    """Serve POST /edits, DELETE /edits/{id}, POST /predict and GET /health (OpenAPI at /docs).

    Bearer-token auth is on when the token store exists (`serac tokens create`); without one,
    only a loopback address may be served (or any with --insecure-no-auth).
    """
    from dataclasses import replace

    import uvicorn

    from serac.auth import TokenError
    from serac.editor import SeracEditor
    from serac.models.artifacts import ArtifactError
    from serac.serve import EditService, create_app
    from serac.serve.auth import AuthRequired, start_policy

    cfg = load_params(params)
    bind = host or cfg.serve.host
    try:
        verifier, auth_note = start_policy(bind, tokens if tokens is not None else cfg.serve.tokens_file,
                                           insecure_no_auth)
    except (AuthRequired, TokenError) as exc:
        fail(str(exc))
    Console(stderr=True).print(auth_note, markup=False, highlight=False, soft_wrap=True)
    memory_root = str(memory) if memory is not None else cfg.memory.root
    mem_cfg = replace(cfg.memory, root=memory_root)
    directory = editor if editor is not None else Path(cfg.editor.artifact_dir)
    try:
        ed = SeracEditor.load(directory, memory_root=memory_root, memory_config=mem_cfg,
                              validation=cfg.validation, guard=cfg.guard,
                              base=operator_base(cfg, base_callable, base_url))
    except ArtifactError as exc:
        fail(f"{exc} (train one with `serac train`)")
    service = EditService(ed, cfg.serve)
    uvicorn.run(create_app(service, verifier), host=bind, port=port or cfg.serve.port,
                workers=1, log_level="info")
