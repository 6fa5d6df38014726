import pytest
from serve_fakes import Tokens

from serac.config import ScopeConfig
from serac.models.scope import ScopeClassifier


@pytest.fixture(scope="session")
def scope() -> ScopeClassifier:
    return ScopeClassifier.from_config(ScopeConfig()).eval()


@pytest.fixture
def tokens(tmp_path) -> Tokens:
    return Tokens.create(tmp_path / "tokens.json")
