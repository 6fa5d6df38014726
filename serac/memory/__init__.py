"""SERAC's edit memory: versioned Parquet storage of edits plus a vector index over their embeddings.

Embeddings come from the caller (the scope classifier's encoder); see :mod:`serac.memory.store`
for the API and :mod:`serac.memory.layout` for the on-disk format.
"""

from serac.memory.index import ExactIndex, FaissIndex, VectorIndex, build_index, resolve_index_kind
from serac.memory.layout import MemoryCorruptError
from serac.memory.store import (
    AddResult,
    EditMemory,
    Hit,
    MemoryConflictError,
    MemoryReadOnlyError,
    RemoveResult,
)

__all__ = [
    "AddResult",
    "EditMemory",
    "ExactIndex",
    "FaissIndex",
    "Hit",
    "MemoryConflictError",
    "MemoryCorruptError",
    "MemoryReadOnlyError",
    "RemoveResult",
    "VectorIndex",
    "build_index",
    "resolve_index_kind",
]
