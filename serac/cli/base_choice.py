"""The operator's choice of base model on the command line (`--base-callable`, `--base-url`).

Kept apart from :mod:`serac.cli.app` so that commands which never load an editor (``serac
prepare``, ``serac validate``) do not depend on the model code.
"""

from typing import Annotated, Any, Optional

import typer

from serac.cli.app import fail
from serac.config import ProjectConfig

BaseCallableOpt = Annotated[
    Optional[str],
    typer.Option("--base-callable", help="Base model: a module:function you trust (never taken from the editor's files)."),
]
BaseUrlOpt = Annotated[
    Optional[str], typer.Option("--base-url", help="Base model: an HTTP endpoint you trust (never taken from the editor's files).")
]


def operator_base(cfg: ProjectConfig, base_callable: str | None, base_url: str | None) -> Any:
    """The base model the operator chose (flag, else params.yaml ``base``), or None for the editor's own."""
    from serac.models.base import operator_base_model

    try:
        return operator_base_model(cfg.base, callable_ref=base_callable, url=base_url,
                                   batch_size=cfg.editor.batch_size)
    except ValueError as exc:
        fail(str(exc))
