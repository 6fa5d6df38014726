import pytest

from serac.config import ScopeConfig
from serac.models.scope import ScopeClassifier


@pytest.fixture(scope="session")
def scope() -> ScopeClassifier:
    return ScopeClassifier.from_config(ScopeConfig()).eval()
