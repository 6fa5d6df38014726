"""The edit memory's section (``serac.memory``)."""

from __future__ import annotations

from dataclasses import dataclass

from serac.config.errors import ConfigError


@dataclass(frozen=True)
class MemoryConfig:
    root: str = "data/memory"
    """Directory of the edit memory: ``versions/vNNNNNN/`` plus a ``CURRENT`` pointer."""
    index: str = "auto"
    """``exact`` (numpy), ``flat`` (faiss IndexFlatIP), ``hnsw`` (faiss HNSW) or ``auto``:
    exact below ``ann_threshold`` rows, hnsw from there on."""
    ann_threshold: int = 50000
    """Row count at which ``auto`` switches from exact search to HNSW."""
    hnsw_m: int = 32
    """HNSW graph degree (faiss ``M``)."""
    hnsw_ef_search: int = 256
    """HNSW search breadth; higher is slower with better recall (64 missed 3% of exact routes at 10^6)."""
    keep_versions: int = 5
    """Version directories kept on disk; older ones are deleted after each successful write."""
    verify_checksums: bool = True
    """Check each segment's sha256s the first time a process opens it (sizes are always checked)."""
    embedding_dtype: str = "float32"
    """Stored embeddings: ``float32`` or ``float16`` (half the disk and, for HNSW, half the RAM)."""
    hnsw_ef_construction: int = 40
    """HNSW build breadth (faiss ``efConstruction``)."""
    delta_max_rows: int = 20000
    """Rows searched exactly beside the ANN segments before they are sealed into a new ANN segment."""
    max_ann_segments: int = 8
    """More sealed (ANN) segments than this and the two adjacent smallest are merged."""

    def __post_init__(self) -> None:
        if self.embedding_dtype not in ("float32", "float16"):
            raise ConfigError(f"memory.embedding_dtype: unknown {self.embedding_dtype!r}; expected float32 or float16")
        if self.delta_max_rows < 1 or self.max_ann_segments < 1 or self.hnsw_ef_construction < 1:
            raise ConfigError("memory: need delta_max_rows, max_ann_segments and hnsw_ef_construction >= 1")
        if self.index not in ("auto", "exact", "flat", "hnsw"):
            raise ConfigError(f"memory.index: unknown {self.index!r}; expected auto, exact, flat or hnsw")
        if self.ann_threshold < 1:
            raise ConfigError("memory.ann_threshold must be >= 1")
        if self.hnsw_m < 2 or self.hnsw_ef_search < 1:
            raise ConfigError("memory: need hnsw_m >= 2 and hnsw_ef_search >= 1")
        if self.keep_versions < 1:
            raise ConfigError("memory.keep_versions must be >= 1")
