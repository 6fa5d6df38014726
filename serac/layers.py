"""The import layers of serac, top to bottom: the one place the layer order is written down.

A module may import from its own package and from any *lower* layer, never from a higher
one, and never from a peer in its own layer (``evaluation`` and ``training`` are peers:
both build on ``tasks``, neither on the other). ``tests/test_layering.py`` checks every
import of every module of ``serac/`` and ``flows/`` against this order, including imports
inside functions and under ``if TYPE_CHECKING:`` (a type-only import is still a
dependency of the reader: it counts) and ``importlib.import_module("serac...")`` calls
with a literal name.

A name here is the first part below ``serac`` (``serac.training.loop`` -> ``training``; ``auth``: the
service's token store, ``serac/auth/``),
or ``flows`` for the Prefect flows outside the package; ``serac`` itself (its
``__init__``: the version) sits in the bottom layer. A new subpackage or top-level module
belongs in exactly one layer: the layering test fails until it is placed.
"""

from __future__ import annotations

LAYERS: tuple[tuple[str, ...], ...] = (
    ("cli", "flows"),
    ("pipeline", "serve", "team"),
    ("evaluation", "training", "registry", "auth"),
    ("tasks",),
    ("editor",),
    ("memory",),
    ("data",),
    ("models",),
    ("config",),
    ("io", "metrics", "edit_text", "dvc_files", "layers", "serac"),
)
"""Top to bottom. ``tasks``: the task registry, scorers and judges that training and evaluation
share; ``metrics`` (pure ES / DD / scope metrics) and ``edit_text`` (an edit written out as text)
have no serac imports at all."""

ROOT = "serac"
"""The name of the package root itself in :data:`LAYERS`."""


def layer_of(name: str) -> int:
    """The index of ``name``'s layer in :data:`LAYERS` (0 = top); KeyError when it is in none."""
    for index, layer in enumerate(LAYERS):
        if name in layer:
            return index
    raise KeyError(name)


def unit_of(module: str) -> str | None:
    """The layer name of a dotted module name: ``serac.training.loop`` -> ``training``,
    ``serac`` -> ``serac``, ``flows.retrain`` -> ``flows``; None for anything else (third party)."""
    parts = module.split(".")
    if parts[0] == "flows":
        return "flows"
    if parts[0] != ROOT:
        return None
    if len(parts) == 1 or parts[1].startswith("__"):  # ``from serac import __version__``: the root itself
        return ROOT
    return parts[1]


def allowed(importer: str, imported: str) -> bool:
    """Whether layer name ``importer`` may import from layer name ``imported``."""
    return importer == imported or layer_of(importer) < layer_of(imported)
