"""Reading ``params.yaml`` (plus overlays) into a :class:`~serac.config.project.ProjectConfig`.

Unknown keys are an error (they are almost always typos), named with their dotted path.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from serac.config.errors import ConfigError
from serac.config.project import ProjectConfig

DEFAULT_PARAMS = Path("params.yaml")


def load_config(path: str | Path = DEFAULT_PARAMS, *overlays: str | Path) -> ProjectConfig:
    """Read ``params.yaml``; a missing file gives the built-in defaults.

    ``overlays`` are YAML files of overrides deep-merged on top, in order (e.g.
    ``params.demo.yaml`` shrinks training for the demo); each must exist.
    """
    path = Path(path)
    raw = _read_yaml(path) if path.exists() else {}
    for overlay in overlays:
        overlay = Path(overlay)
        if not overlay.exists():
            raise ConfigError(f"{overlay}: overlay file does not exist")
        raw = _deep_merge(raw, _read_yaml(overlay))
    where = " + ".join(str(p) for p in (path, *overlays))
    return build(ProjectConfig, raw, where=where)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return raw


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


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
