"""SERAC's edit memory: versioned Parquet storage of edits plus a vector index over their embeddings.

Embeddings come from the caller (the scope classifier's encoder); see :mod:`serac.memory.store`
for the API, :mod:`serac.memory.layout` / :mod:`serac.memory.segment` for the on-disk format,
:mod:`serac.memory.policy` for when segments merge and get an ANN index,
:mod:`serac.memory.view` for search over a loaded version (:meth:`EditMemory.read_view`),
:mod:`serac.memory.loader` / :mod:`serac.memory.commit` for reading and writing versions,
:mod:`serac.memory.locking` for the writer lock, :mod:`serac.memory.legacy` for the
first-format upgrade and :mod:`serac.memory.audit` for the audit trail of every change.
"""

from serac.memory.audit import AuditContext, AuditRecord
from serac.memory.index import ExactIndex, FaissIndex, VectorIndex, build_index, resolve_index_kind
from serac.memory.layout import MemoryCorruptError
from serac.memory.store import (
    AddResult,
    EditMemory,
    MemoryConflictError,
    MemoryReadOnlyError,
    RemoveResult,
)
from serac.memory.view import Hit, MemoryView

__all__ = [
    "AddResult",
    "AuditContext",
    "AuditRecord",
    "EditMemory",
    "ExactIndex",
    "FaissIndex",
    "Hit",
    "MemoryConflictError",
    "MemoryCorruptError",
    "MemoryReadOnlyError",
    "MemoryView",
    "RemoveResult",
    "VectorIndex",
    "build_index",
    "resolve_index_kind",
]
