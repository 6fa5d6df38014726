"""The Typer application object; command modules register on it."""

import typer

app = typer.Typer(name="serac", help="Memory-based model editing (SERAC) pipeline.", no_args_is_help=True)


@app.callback()
def main() -> None:
    """Memory-based model editing (SERAC): data, memory, editor and pipeline commands."""
