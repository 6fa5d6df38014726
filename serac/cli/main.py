"""Entry point of the ``serac`` command: imports every command module."""

# Each module below registers its commands on ``app`` when imported.
# (one import line per command module; keep sorted)
from serac.cli import (
    data_prepare,  # noqa: F401
    data_validate,  # noqa: F401
)
from serac.cli.app import app

__all__ = ["app"]

if __name__ == "__main__":
    app()
