"""Base models: frozen HF models, Python callables, HTTP endpoints, and the kind registry."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from tiny import tiny_seq2seq

from serac.config import BaseModelConfig, ConfigError
from serac.models.artifacts import ArtifactError
from serac.models.base import (
    BASE_MODELS,
    BaseModel,
    BaseModelError,
    CallableBaseModel,
    HFBaseModel,
    HTTPBaseModel,
    build_base_model,
)

QUERIES = ["the sky is", "water boils at", "paris is in"]


def test_registry_covers_every_configured_kind():
    assert set(BASE_MODELS) == {"seq2seq", "causal", "classifier", "callable", "http"}


def test_trained_default_loads_frozen_from_its_artifact(tmp_path):
    t2t = tiny_seq2seq(tie=False, max_new_tokens=4)
    t2t.save(tmp_path / "base")
    base = build_base_model(BaseModelConfig(max_new_tokens=4), "cpu", artifact_dir=tmp_path / "base")
    assert isinstance(base, HFBaseModel) and isinstance(base, BaseModel)
    params = list(base.text_to_text.parameters())
    assert params and not any(p.requires_grad for p in params)
    assert not base.text_to_text.training
    assert base.predict(QUERIES) == t2t.generate(QUERIES)
    assert base.describe() == {
        "kind": "seq2seq",
        "name_or_path": "minilm",
        "revision": None,
        "max_input_length": 128,
        "max_new_tokens": 4,
        "artifact_dir": str(tmp_path / "base"),
    }
    # The editor copies the trained default into its own artifact and rebuilds it from describe().
    assert base.trained_here
    base.save(tmp_path / "editor" / "base")
    fields = {k: v for k, v in base.describe().items() if k in BaseModelConfig.__dataclass_fields__}
    again = build_base_model(BaseModelConfig(**fields), "cpu", artifact_dir=tmp_path / "editor" / "base")
    assert again.predict(QUERIES) == base.predict(QUERIES)


def test_untrained_default_and_kind_mismatch_are_refused(tmp_path):
    with pytest.raises(ValueError, match="artifact_dir"):
        build_base_model(BaseModelConfig(), "cpu")
    tiny_seq2seq(tie=False, max_new_tokens=4).save(tmp_path / "base")
    with pytest.raises(ArtifactError, match="config.json.*classifier"):
        build_base_model(BaseModelConfig(kind="classifier"), "cpu", artifact_dir=tmp_path / "base")


def test_hf_model_by_local_path_is_referenced_not_copied(tmp_path):
    t2t = tiny_seq2seq(tie=False, max_new_tokens=4)
    t2t.model.save_pretrained(tmp_path / "hf")
    t2t.tokenizer.save_pretrained(tmp_path / "hf")
    cfg = BaseModelConfig(kind="seq2seq", name_or_path=str(tmp_path / "hf"), max_new_tokens=4)
    base = build_base_model(cfg, "cpu")
    assert not any(p.requires_grad for p in base.text_to_text.parameters())
    assert base.predict(QUERIES) == t2t.generate(QUERIES)
    assert not base.trained_here
    assert base.describe() == {
        "kind": "seq2seq",
        "name_or_path": str(tmp_path / "hf"),
        "revision": None,
        "max_input_length": 128,
        "max_new_tokens": 4,
    }


def shout(queries: list[str]) -> list[str]:
    return [q.upper() for q in queries]


def test_callable_from_a_function_or_an_import_string(tmp_path, monkeypatch):
    assert CallableBaseModel(shout).predict(["a", "b"]) == ["A", "B"]
    (tmp_path / "my_base_model.py").write_text(
        "def answer(queries):\n    return [q[::-1] for q in queries]\n\ndef broken(queries):\n    return ['x']\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    base = build_base_model(BaseModelConfig(kind="callable", callable="my_base_model:answer"), "cpu")
    assert base.predict(["abc", "de"]) == ["cba", "ed"]
    assert base.describe() == {
        "kind": "callable",
        "name_or_path": "my_base_model:answer",
        "revision": None,
        "callable": "my_base_model:answer",
    }
    with pytest.raises(BaseModelError, match="1 answers for 2 queries"):
        CallableBaseModel("my_base_model:broken").predict(["a", "b"])
    with pytest.raises(BaseModelError, match="not strings"):
        CallableBaseModel(lambda qs: [1 for _ in qs]).predict(["a"])


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("no_colon_here", "module:function"),
        ("no_such_module_xyz:f", "cannot import"),
        ("json:no_such_function", "no attribute"),
        ("json:__doc__", "not callable"),
    ],
)
def test_bad_callable_references(reference, message):
    with pytest.raises(ValueError, match=message):
        CallableBaseModel(reference)


def test_config_requires_callable_and_url():
    with pytest.raises(ConfigError, match="callable"):
        BaseModelConfig(kind="callable")
    with pytest.raises(ConfigError, match="url"):
        BaseModelConfig(kind="http")


class _Handler(BaseHTTPRequestHandler):
    """Answers by path: /ok, /error, /notjson, /short, /nokey, /slow."""

    requests: list[list[str]] = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        queries = body["queries"]
        type(self).requests.append(queries)
        if self.path == "/slow":
            time.sleep(1.0)
        if self.path == "/error":
            return self._reply(500, b"model exploded")
        replies = {
            "/ok": json.dumps({"answers": [f"answer to {q}" for q in queries]}).encode(),
            "/slow": json.dumps({"answers": queries}).encode(),
            "/notjson": b"<html>not json</html>",
            "/short": json.dumps({"answers": ["only one"]}).encode(),
            "/nokey": json.dumps({"predictions": queries}).encode(),
        }
        self._reply(200, replies[self.path])

    def _reply(self, status: int, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out

    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_http_base_model_answers_in_batches(server):
    _Handler.requests.clear()
    cfg = BaseModelConfig(kind="http", url=f"{server}/ok", timeout_s=5)
    base = build_base_model(cfg, "cpu", batch_size=2)
    queries = ["q1", "q2", "q3", "q4", "q5"]
    assert base.predict(queries) == [f"answer to {q}" for q in queries]
    assert _Handler.requests == [["q1", "q2"], ["q3", "q4"], ["q5"]]
    assert base.describe() == {"kind": "http", "name_or_path": f"{server}/ok", "revision": None, "url": f"{server}/ok"}


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/error", "HTTP 500.*model exploded"),
        ("/notjson", "not JSON"),
        ("/short", "1 answers for 2 queries"),
        ("/nokey", "no 'answers'"),
        ("/slow", "no answer within 0.2 s"),
    ],
)
def test_http_errors_are_clear(server, path, message):
    base = HTTPBaseModel(f"{server}{path}", timeout_s=0.2)
    with pytest.raises(BaseModelError, match=message) as info:
        base.predict(["a", "b"])
    assert server in str(info.value)


def test_http_unreachable_and_bad_url():
    with socket.socket() as sock:  # a port that nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(BaseModelError, match="unreachable"):
        HTTPBaseModel(f"http://127.0.0.1:{port}/", timeout_s=2).predict(["a"])
    with pytest.raises(ValueError, match="http"):
        HTTPBaseModel("ftp://example.org")


def test_protocol_is_structural():
    class Constant:
        def predict(self, queries):
            return ["x"] * len(queries)

        def describe(self):
            return {"kind": "callable", "name_or_path": "constant", "revision": None}

    assert isinstance(Constant(), BaseModel)
