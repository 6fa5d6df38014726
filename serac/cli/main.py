"""Entry point of the ``serac`` command: imports every command module."""

# Each module below registers its commands on ``app`` when imported.
from serac.cli import data_prepare, data_validate, editor_cmds, evaluate_cmd, serve_cmd, tasks_cmd, train_cmd  # noqa: F401
from serac.cli.app import app

__all__ = ["app"]

if __name__ == "__main__":
    app()
