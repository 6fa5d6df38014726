"""MLflow tracking, the editor as an MLflow pyfunc model, the model registry and its promotion gate.

- :mod:`serac.registry.tracking`: where runs go (local SQLite store or a team server), run
  helpers, the :class:`MlflowHook` for the training loop, version tags.
- :mod:`serac.registry.pyfunc`: :class:`SeracPyfunc` (load the saved editor, route queries) and
  :func:`log_editor_model` (log + register a version).
- :mod:`serac.registry.promotion`: the pure gate :func:`decide` and :func:`promote`, which moves
  the ``champion`` alias only when the gate passes.
- :mod:`serac.registry.refresh`: :func:`~serac.registry.refresh.refresh_champion_memory`, the
  champion's components with a new memory snapshot as the new champion (the nightly ingest).
"""

import os

# MLflow starts its telemetry client (a DNS lookup, then HTTP) when ``mlflow`` is first
# imported, so the opt-out must be in the environment before any submodule imports it.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from serac.registry.promotion import Decision, decide, promote  # noqa: E402
from serac.registry.pyfunc import SeracPyfunc, log_editor_model  # noqa: E402
from serac.registry.tracking import MlflowHook, configure_mlflow, start_run  # noqa: E402

__all__ = [
    "Decision",
    "MlflowHook",
    "SeracPyfunc",
    "configure_mlflow",
    "decide",
    "log_editor_model",
    "promote",
    "start_run",
]
