"""A small real editor for the service tests: MiniLM scope (meaningful routing), tiny counterfactual
model, a Python function as the base model (importable as ``serve_fakes:base_answers``); a token
store with one token per scope plus one with all three."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from tiny import tiny_counterfactual

from serac.auth import TokenStore
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


@dataclass(frozen=True)
class Tokens:
    """A token store at ``path`` holding ``read``, ``write`` and ``admin`` tokens (named so) and ``ops`` (all)."""

    path: Path
    read: str
    write: str
    admin: str
    ops: str

    @classmethod
    def create(cls, path: Path) -> Tokens:
        store = TokenStore(path)
        return cls(path, *(store.create(scope, scope) for scope in ("read", "write", "admin")),
                   store.create("ops", "read,write,admin"))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


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


@contextmanager
def running_server(app, **config) -> Iterator[str]:
    """``app`` served by uvicorn on 127.0.0.1 in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **config))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    try:
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
