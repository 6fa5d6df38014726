"""Importable helpers for the registry tests.

The base model of a saved editor is stored by reference (``module:function``), so
a loaded editor -- and the MLflow model built from it -- must be able to import it
by name: pytest puts this directory on ``sys.path`` for the tests in it.
"""

from __future__ import annotations

BASE_REFERENCE = "registry_support:base_answers"


def base_answers(queries: list[str]) -> list[str]:
    return ["base:" + q for q in queries]
