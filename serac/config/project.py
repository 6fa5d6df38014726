"""The whole configuration: one section per component (each component receives only its own)."""

from __future__ import annotations

from dataclasses import dataclass, field

from serac.config.data import DataConfig, IngestConfig, ValidationConfig
from serac.config.evaluation import EvaluationConfig
from serac.config.memory import MemoryConfig
from serac.config.models import BaseModelConfig, CounterfactualConfig, EditorConfig, ScopeConfig
from serac.config.ops import RegistryConfig, ServeConfig, TrackingConfig
from serac.config.tasks import TasksConfig
from serac.config.training import TrainingConfig


@dataclass(frozen=True)
class ProjectConfig:
    data: DataConfig = field(default_factory=DataConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    scope: ScopeConfig = field(default_factory=ScopeConfig)
    counterfactual: CounterfactualConfig = field(default_factory=CounterfactualConfig)
    base: BaseModelConfig = field(default_factory=BaseModelConfig)
    editor: EditorConfig = field(default_factory=EditorConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    tasks: TasksConfig = field(default_factory=TasksConfig)
