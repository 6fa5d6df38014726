"""Project configuration: ``params.yaml`` read once into frozen dataclasses.

Each component receives only its own section and never mutates it. Unknown keys
are an error (they are almost always typos), named with their dotted path.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PARAMS = Path("params.yaml")


class ConfigError(ValueError):
    """A params.yaml value is missing, unknown or out of range."""


@dataclass(frozen=True)
class DataConfig:
    raw_root: str = "../shared/data"
    """Directory holding the raw datasets (one sub-directory per dataset)."""
    prepared_dir: str = "data/prepared"
    """Where ``serac prepare`` writes ``<dataset>/<split>.parquet``."""
    splits: dict[str, float] = field(default_factory=lambda: {"train": 0.8, "val": 0.1, "test": 0.1})
    """Split fractions; a record's split is decided by the hash of its edit_id."""
    split_salt: str = "serac-split-v1"
    """Changing the salt reshuffles every split deterministically."""

    def __post_init__(self) -> None:
        if not self.splits or any(v < 0 for v in self.splits.values()):
            raise ConfigError("data.splits: fractions must be non-negative and non-empty")
        if abs(sum(self.splits.values()) - 1.0) > 1e-6:
            raise ConfigError(f"data.splits: fractions must sum to 1, got {sum(self.splits.values())}")


@dataclass(frozen=True)
class ValidationConfig:
    min_chars: int = 1
    max_chars: int = 2000
    """Longest accepted string (edit input, label, example input)."""
    max_tokens: int = 256
    """Longest accepted edit input + label, in tokens of ``tokenizer``."""
    tokenizer: str = "minilm"
    """Tokenizer for the token-length check: ``minilm`` (the offline default) or a path/name."""
    max_failure_rate: float = 0.2
    """A batch fails as a whole when more than this fraction of rows is quarantined."""
    require_in_scope: bool = True
    """Training data needs at least one in-scope example per edit."""

    def __post_init__(self) -> None:
        if not 0 <= self.max_failure_rate <= 1:
            raise ConfigError("validation.max_failure_rate must be within [0, 1]")
        if not 0 < self.min_chars <= self.max_chars:
            raise ConfigError("validation: need 0 < min_chars <= max_chars")


@dataclass(frozen=True)
class ProjectConfig:
    data: DataConfig = field(default_factory=DataConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)


def load_config(path: str | Path = DEFAULT_PARAMS) -> ProjectConfig:
    """Read ``params.yaml``; a missing file gives the built-in defaults."""
    path = Path(path)
    if not path.exists():
        return ProjectConfig()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return build(ProjectConfig, raw, where=str(path))


def build(cls: type, values: dict[str, Any], where: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, recursing into nested dataclasses.

    Keys that are not dataclass fields raise :class:`ConfigError`.
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} in {cls.__name__}")
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            kwargs[name] = build(hint, value, where=f"{where}:{name}")
        else:
            kwargs[name] = _coerce(value, hint, f"{where}:{name}")
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _coerce(value: Any, hint: Any, where: str) -> Any:
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    origin = typing.get_origin(hint)
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    if origin in (typing.Union, types.UnionType) or origin in (dict, list, tuple) or hint is Any:
        return value
    if isinstance(hint, type) and value is not None and not isinstance(value, hint):
        raise ConfigError(f"{where}: expected {hint.__name__}, got {type(value).__name__} ({value!r})")
    return value
