"""Entry point of the ``serac`` command: imports every command module."""

# Each module below registers its commands on ``app`` when imported.
from serac.cli import (  # noqa: F401
    audit_cmd,
    data_prepare,
    data_validate,
    editor_cmds,
    evaluate_cmd,
    serve_cmd,
    tasks_cmd,
    tokens_cmd,
    train_cmd,
)
from serac.cli.app import app

__all__ = ["app"]

if __name__ == "__main__":
    app()
