"""Entry point of the ``serac`` command: imports every command module."""

from serac.cli.app import app

# Each module below registers its commands on ``app`` when imported.
# (one import line per command module; keep sorted)

__all__ = ["app"]

if __name__ == "__main__":
    app()
