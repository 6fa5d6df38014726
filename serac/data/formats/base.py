"""What every source format is made of: typed row access that records problems, and the spec.

A converter reads a :class:`Row` through :meth:`Row.text` / :meth:`Row.texts` /
:meth:`Row.child`; each missing, null, blank or mistyped field becomes a reason
(``missing_field:alt``, ``null_field:src``, ``wrong_type:answers``, ``empty_field:alt``),
and a converter returns ``None`` once a row has reasons.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_ABSENT = object()


@dataclass
class Row:
    """Typed access to one source row; every problem is recorded as a reason."""

    data: dict[str, Any]
    reasons: list[str] = field(default_factory=list)
    prefix: str = ""

    def add(self, kind: str, name: str) -> None:
        self.reasons.append(f"{kind}:{self.prefix}{name}")

    def value(self, name: str, required: bool = True) -> Any:
        if name not in self.data:
            if required:
                self.add("missing_field", name)
            return None
        value = self.data[name]
        if value is None and required:
            self.add("null_field", name)
        return value

    def _typed(self, name: str, required: bool, accepts: Callable[[Any], bool]) -> Any:
        """The value when present and accepted; ``_ABSENT`` when absent or (recorded) mistyped."""
        value = self.value(name, required)
        if value is None:
            return _ABSENT
        if not accepts(value):
            self.add("wrong_type", name)
            return _ABSENT
        return value

    def text(self, name: str, required: bool = True) -> str | None:
        """A string; blank counts as absent (a reason only when required)."""
        value = self._typed(name, required, lambda v: isinstance(v, str))
        if value is _ABSENT:
            return None
        if not value.strip():
            if required:
                self.add("empty_field", name)
            return None
        return value

    def texts(self, name: str, required: bool = True, nonempty: bool = False, scalar_ok: bool = False) -> list[str]:
        """A list of strings (blank items dropped); ``scalar_ok`` also takes one string."""
        value = self._typed(name, required, lambda v: (scalar_ok and isinstance(v, str)) or (
            isinstance(v, list) and all(isinstance(item, str) for item in v)))
        if value is _ABSENT:
            return []
        items = [item for item in ([value] if isinstance(value, str) else value) if item.strip()]
        if nonempty and not items:
            self.add("empty_field", name)
        return items

    def child(self, name: str, required: bool = True) -> Row | None:
        """A nested object, sharing this row's reasons (named ``parent.field``)."""
        value = self._typed(name, required, lambda v: isinstance(v, dict))
        if value is _ABSENT:
            return None
        return Row(value, self.reasons, prefix=f"{self.prefix}{name}.")


@dataclass(frozen=True)
class Context:
    """What a converter may know beyond its row."""

    task: str | None
    mapping: dict[str, str]
    extra: dict[str, Any]


Converter = Callable[[Row, Context], dict[str, Any] | None]
"""Row -> :class:`~serac.data.schema.EditRecord` keyword arguments (``None`` when the row has reasons).

``task``, ``source`` and ``ingested_at`` are filled in by :func:`~serac.data.loaders.load_file`
unless the converter returns them (the canonical format does).
"""


@dataclass(frozen=True)
class FormatSpec:
    """One registered source format."""

    name: str
    required: frozenset[str]
    """Fields every row must have; a file whose fields include them matches."""
    optional: frozenset[str]
    """Other fields the format defines (documentation; unknown fields are ignored)."""
    task: str | None
    """Default task (``None``: taken from the row or from ``load_file(task=...)``)."""
    convert: Converter
    detectable: bool = True
    """False for formats that need explicit settings (``generic`` needs a mapping)."""
    file_context: Callable[[list[dict[str, Any]]], dict[str, Any]] | None = None
    """Computes file-level context (e.g. the other ConvSent entities) from all rows."""


def spec(name: str, required: str, task: str | None, convert: Converter, optional: str = "", **kw: Any) -> FormatSpec:
    """A :class:`FormatSpec` with its field sets given as space-separated names."""
    return FormatSpec(name, frozenset(required.split()), frozenset(optional.split()), task, convert, **kw)
