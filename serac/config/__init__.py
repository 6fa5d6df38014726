"""Project configuration: ``params.yaml`` read once into frozen dataclasses.

Each component receives only its own section and never mutates it. One module per group of
sections (:mod:`~serac.config.data`, :mod:`~serac.config.models`, :mod:`~serac.config.memory`,
:mod:`~serac.config.training`, :mod:`~serac.config.evaluation`, :mod:`~serac.config.ops`,
:mod:`~serac.config.tasks`, :mod:`~serac.config.guard`), the whole in :mod:`~serac.config.project`, reading and checking
``params.yaml`` in :mod:`~serac.config.loader`. Import every name from ``serac.config``.
"""

from serac.config.data import INGEST_PATTERNS, DataConfig, IngestConfig, ValidationConfig
from serac.config.errors import ConfigError
from serac.config.evaluation import COUNTERFACTUAL_VARIANTS, EVALUATION_BASELINES, EvaluationConfig
from serac.config.guard import GuardConfig
from serac.config.loader import DEFAULT_PARAMS, build, load_config
from serac.config.memory import MemoryConfig
from serac.config.models import BaseModelConfig, CounterfactualConfig, EditorConfig, ScopeConfig
from serac.config.ops import RegistryConfig, ServeConfig, TrackingConfig
from serac.config.project import ProjectConfig
from serac.config.tasks import ConvSentConfig, GenerateConfig, TasksConfig
from serac.config.training import TrainConfig, TrainingConfig

__all__ = [
    "DEFAULT_PARAMS",
    "COUNTERFACTUAL_VARIANTS",
    "EVALUATION_BASELINES",
    "INGEST_PATTERNS",
    "BaseModelConfig",
    "ConfigError",
    "ConvSentConfig",
    "CounterfactualConfig",
    "DataConfig",
    "EditorConfig",
    "EvaluationConfig",
    "GenerateConfig",
    "GuardConfig",
    "IngestConfig",
    "MemoryConfig",
    "ProjectConfig",
    "RegistryConfig",
    "ScopeConfig",
    "ServeConfig",
    "TasksConfig",
    "TrackingConfig",
    "TrainConfig",
    "TrainingConfig",
    "ValidationConfig",
    "build",
    "load_config",
]
