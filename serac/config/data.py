"""Sections of the data layer: raw and prepared data, row validation, nightly ingestion."""

from __future__ import annotations

from dataclasses import dataclass, field

from serac.config.errors import ConfigError


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


INGEST_PATTERNS = ("*.jsonl", "*.json", "*.csv", "*.parquet")


@dataclass(frozen=True)
class IngestConfig:
    """Nightly ingestion of edit batches into the memory (``serac.pipeline.ingest``, ``flows/nightly_ingest.py``)."""

    inbox: str = "data/inbox"
    """Where new batches arrive: a local directory or an fsspec URL (``s3://bucket/inbox``);
    files behind a remote URL are copied to ``staging_dir`` first."""
    patterns: tuple[str, ...] = INGEST_PATTERNS
    """File name patterns (globs, not recursive) that count as batches."""
    staging_dir: str = "data/ingested/.staging"
    """Local copies of the batches of a remote inbox."""
    validated_root: str = "data/ingested"
    """Each batch's validation outputs go to ``<validated_root>/<stem>-<sha8>/``."""
    ledger: str = "data/ingested/ledger.json"
    """Batches already ingested, by sha256 of their bytes: a batch in the ledger is never ingested again."""
    retrain_min_new_edits: int = 100
    """Retraining is warranted once this many edits were added since the last training."""
    retrain_min_recall: float = 0.9
    """... or as soon as the scope classifier routes less than this fraction of the new edits' queries."""
    dvc_track_memory: bool = True
    """``dvc add`` the memory after a run that changed it (skipped outside a DVC repository)."""
    register_memory: bool = True
    """After a run that changed the memory, register the champion's components with a snapshot of it as
    the new champion (:func:`serac.registry.refresh.refresh_champion_memory`; nothing without a champion)."""

    def __post_init__(self) -> None:
        if not self.patterns or not all(isinstance(p, str) and p.strip() for p in self.patterns):
            raise ConfigError("ingest.patterns: need at least one non-empty glob")
        if not self.inbox or not self.validated_root or not self.ledger or not self.staging_dir:
            raise ConfigError("ingest: inbox, staging_dir, validated_root and ledger must not be empty")
        if self.retrain_min_new_edits < 1:
            raise ConfigError("ingest.retrain_min_new_edits must be >= 1")
        if not 0.0 <= self.retrain_min_recall <= 1.0:
            raise ConfigError("ingest.retrain_min_recall must be within [0, 1]")
