"""A small real editor for the service tests: MiniLM scope (meaningful routing), tiny counterfactual
model, a Python function as the base model (importable as ``serve_fakes:base_answers``)."""

from __future__ import annotations

import socket
from pathlib import Path

from tiny import tiny_counterfactual

from serac.config import EditorConfig, MemoryConfig, ServeConfig
from serac.data.schema import EditRecord, Example
from serac.editor import SeracEditor
from serac.memory import EditMemory
from serac.models.base import CallableBaseModel
from serac.models.scope import ScopeClassifier
from serac.serve import EditService

PM = {"task": "qa", "edit_input": "Who is the prime minister of the United Kingdom?", "edit_label": "Boris Johnson",
      "in_scope": [{"input": "Who is the UK's prime minister?", "label": "Boris Johnson"}]}
RIVER = {"task": "qa", "edit_input": "What is the longest river in Africa?", "edit_label": "Congo"}


def base_answers(queries: list[str]) -> list[str]:
    return ["base:" + q for q in queries]


def record(edit: dict) -> EditRecord:
    return EditRecord(edit["task"], edit["edit_input"], edit["edit_label"],
                      in_scope=[Example(e["input"], e.get("label")) for e in edit.get("in_scope", [])])


def make_editor(scope: ScopeClassifier, memory_root: Path) -> SeracEditor:
    memory = EditMemory.open(memory_root, MemoryConfig(root=str(memory_root)))
    return SeracEditor(scope, tiny_counterfactual(), CallableBaseModel(base_answers), memory,
                       EditorConfig(threshold=0.5, device="cpu"))


def make_service(scope: ScopeClassifier, memory_root: Path, **limits: int) -> EditService:
    return EditService(make_editor(scope, memory_root), ServeConfig(**limits))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
