"""GPU checks: marked ``gpu`` and skipped where torch sees no CUDA device (CI, this project's CPU machines).

Run them on a GPU worker with ``pytest -m gpu tests/gpu``; they use tiny random models and the
packaged MiniLM tokenizer only, so they need no model weights.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items):
    skip = pytest.mark.skip(reason="no CUDA device")
    for item in items:
        if Path(str(item.fspath)).is_relative_to(HERE):
            item.add_marker(pytest.mark.gpu)
            if not torch.cuda.is_available():
                item.add_marker(skip)
