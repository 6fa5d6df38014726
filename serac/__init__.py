"""serac: memory-based model editing (SERAC) as an MLOps pipeline."""

__version__ = "0.1.0"
