"""The Typer application object; command modules register on it."""

from pathlib import Path
from typing import Annotated, NoReturn, Optional, Sequence

import typer
from rich.console import Console

from serac.config import ConfigError, ProjectConfig, load_config

app = typer.Typer(name="serac", help="Memory-based model editing (SERAC) pipeline.", no_args_is_help=True)


@app.callback()
def main() -> None:
    """Memory-based model editing (SERAC): data, memory, editor and pipeline commands."""


ParamsOpt = Annotated[Path, typer.Option("--params", help="Project parameters (params.yaml).")]
OverlayOpt = Annotated[
    Optional[list[Path]], typer.Option("--overlay", help="YAML overrides merged on top of --params (repeatable).")
]

def load_params(params: Path, overlays: Sequence[Path] | None = None) -> ProjectConfig:
    """params.yaml (+ overlays) or a one-line error naming the key and exit status 2."""
    try:
        return load_config(params, *(overlays or ()))
    except ConfigError as exc:
        fail(str(exc))


def fail(message: str, code: int = 2) -> NoReturn:
    Console(stderr=True).print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)
