"""The ``guard`` section: the blast-radius guard of new edits (:mod:`serac.editor.guard`)."""

from __future__ import annotations

from dataclasses import dataclass

from serac.config.errors import ConfigError


@dataclass(frozen=True)
class GuardConfig:
    """How much of the canary set one edit may capture."""

    max_capture: float = 0.005
    """An edit whose scope takes in more than this fraction of the canary queries is refused."""
    canaries: int = 2000
    """Canary queries packaged with the editor: out-of-scope queries of the validation split (then train)."""
    examples: int = 3
    """Captured canaries quoted in a refusal."""

    def __post_init__(self) -> None:
        if not 0 <= self.max_capture <= 1:
            raise ConfigError("guard.max_capture must be within [0, 1]")
        if self.canaries < 0 or self.examples < 0:
            raise ConfigError("guard.canaries and guard.examples must be >= 0")
