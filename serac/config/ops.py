"""Operating sections: the HTTP service, MLflow tracking, the model registry."""

from __future__ import annotations

from dataclasses import dataclass

from serac.config.errors import ConfigError


@dataclass(frozen=True)
class ServeConfig:
    """``serac serve``: the live editing HTTP service (``serac.serve``)."""

    host: str = "127.0.0.1"
    port: int = 8000
    max_edits_per_request: int = 1000
    """A POST /edits batch above this is refused with 413."""
    max_queries_per_request: int = 64
    """A POST /predict batch above this is refused with 413."""
    max_text_chars: int = 2000
    """Longest accepted edit input, label, example or query."""
    max_body_bytes: int = 4_000_000
    """Request bodies above this are refused with 413 (by Content-Length, and by the bytes actually read)."""
    tokens_file: str = ".serac/tokens.json"
    """Bearer-token store (salted hashes, mode 0600; ``serac tokens``). Auth is on whenever it exists."""

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError("serve.port must be within 1..65535")
        if min(self.max_edits_per_request, self.max_queries_per_request, self.max_text_chars,
               self.max_body_bytes) < 1:
            raise ConfigError("serve: request limits must be >= 1")


@dataclass(frozen=True)
class TrackingConfig:
    """Where MLflow runs go (``serac.registry.tracking``)."""

    tracking_uri: str = "sqlite:///mlflow/mlflow.db"
    """MLflow tracking URI; a relative ``sqlite:///`` path is resolved against the project root.
    The environment variable ``MLFLOW_TRACKING_URI`` wins when set (team mode: a tracking server)."""
    artifact_root: str = "mlflow/artifacts"
    """Artifact location of new experiments (``<artifact_root>/<experiment>``); a relative path is
    resolved against the project root, a URI (``s3://...``) is kept. A tracking server decides itself."""
    experiment_name: str = "serac"
    log_stages: bool = True
    """The DVC stage commands (``serac train``, ``serac evaluate``) log a run each; the flows always log."""

    def __post_init__(self) -> None:
        if not self.tracking_uri or not self.artifact_root or not self.experiment_name.strip():
            raise ConfigError("tracking: tracking_uri, artifact_root and experiment_name must not be empty")


@dataclass(frozen=True)
class RegistryConfig:
    """The registered editor model and its promotion gate (``serac.registry.promotion``)."""

    model_name: str = "serac-editor"
    es_tolerance: float = 0.01
    """A challenger may lose at most this much edit success (ES) against the champion."""
    dd_tolerance: float = 0.01
    """A challenger may add at most this much drawdown (DD) against the champion."""
    champion_alias: str = "champion"
    """Alias of the version that serves (``models:/serac-editor@champion``)."""
    challenger_alias: str = "challenger"
    """Alias of the latest version that went through the gate, promoted or not."""
    primary_k: int = 10
    """Memory size (edits) of the evaluation whose ES/DD the gate compares."""

    def __post_init__(self) -> None:
        if not self.model_name.strip():
            raise ConfigError("registry.model_name must not be empty")
        if self.es_tolerance < 0 or self.dd_tolerance < 0:
            raise ConfigError("registry: es_tolerance and dd_tolerance must be >= 0")
        for alias in (self.champion_alias, self.challenger_alias):
            # MLflow reserves "latest" and "v<digits>" (they resolve to versions)
            if not alias or alias.lower() == "latest" or (alias[0] in "vV" and alias[1:].isdigit()):
                raise ConfigError(f"registry: {alias!r} cannot be a model alias")
        if self.champion_alias == self.challenger_alias:
            raise ConfigError("registry: champion_alias and challenger_alias must differ")
        if self.primary_k < 1:
            raise ConfigError("registry.primary_k must be >= 1")
