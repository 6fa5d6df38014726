"""Regression tests for issue 17 items 3, 4, 6 and issue 14 item 10b (each failed before its fix)."""

import json

import httpx
import pytest
from fastapi.testclient import TestClient
from serve_fakes import PM, bearer, make_service, record, running_server

from serac.auth import TokenVerifier
from serac.config import ServeConfig
from serac.data.schema import edit_id_for
from serac.memory import EditMemory
from serac.serve import create_app

LIMIT = 20_000


@pytest.fixture
def service(scope, tmp_path):
    return make_service(scope, tmp_path / "memory", max_body_bytes=LIMIT)


@pytest.fixture
def app(service, tokens):
    return create_app(service, TokenVerifier(tokens.path))


@pytest.fixture
def client(app, tokens):
    with TestClient(app, headers=bearer(tokens.ops)) as c:
        yield c


def test_a_supplied_edit_id_that_is_not_the_content_hash_is_refused(client):
    genuine = edit_id_for("qa", PM["edit_input"], PM["edit_label"])
    attack = client.post("/edits", json={"edits": [{**PM, "edit_label": "Attacker Label", "edit_id": genuine}]})
    assert attack.status_code == 422 and "edit_id" in attack.json()["detail"]
    added = client.post("/edits", json={"edits": [PM]}).json()
    assert added["added"] == [genuine]  # the real edit is not shadowed
    pred = client.post("/predict", json={"queries": [PM["in_scope"][0]["input"]]}).json()["predictions"][0]
    assert pred["matched_edit"]["edit_label"] == "Boris Johnson"
    again = client.post("/edits", json={"edits": [{**PM, "edit_id": genuine}]}).json()  # the true id is accepted
    assert again["skipped"] == [genuine]


def chunked(body: bytes, size: int = 65536):
    for start in range(0, len(body), size):
        yield body[start:start + size]


@pytest.mark.parametrize(("limit", "size"), [(LIMIT, 5 * LIMIT), (ServeConfig().max_body_bytes, 5_000_000)])
def test_a_chunked_body_over_the_limit_is_refused_and_not_stored(scope, tokens, tmp_path, limit, size):
    app = create_app(make_service(scope, tmp_path / "memory", max_body_bytes=limit), TokenVerifier(tokens.path))
    # Valid JSON padded with whitespace: only the byte count makes it too large.
    body = b'{"edits": [' + json.dumps(PM).encode() + b"]" + b" " * size + b"}"
    with running_server(app) as base:
        with httpx.Client(base_url=base, timeout=60, headers=bearer(tokens.write)) as http:
            response = http.post("/edits", content=chunked(body), headers={"content-type": "application/json"})
            small = http.post("/edits", content=chunked(json.dumps({"edits": [PM]}).encode()),
                              headers={"content-type": "application/json"})
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in response.request.headers
    assert response.status_code == 413 and "max_body_bytes" in response.json()["detail"]
    assert small.status_code == 200 and len(small.json()["added"]) == 1  # chunked bodies within the limit work
    assert len(EditMemory.open(tmp_path / "memory")) == 1


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/edits", rb'{"edits": [{"task": "qa", "edit_input": "Who \ud800 is?", "edit_label": "x"}]}'),
        ("/edits", rb'{"edits": [{"task": "qa", "edit_input": "Who is?", "edit_label": "\udfff"}]}'),
        ("/edits", rb'{"edits": [{"task": "qa", "edit_input": "Q?", "edit_label": "A", "subject": "\ud83d"}]}'),
        ("/edits", rb'{"edits": [{"task": "qa", "edit_input": NaN, "edit_label": "A"}]}'),
        ("/edits", rb'{"edits": [{"task": "qa", "edit_input": "Q?", "edit_label": "A"}], "reason": "\ud800"}'),
        ("/predict", rb'{"queries": NaN}'),
        ("/predict", rb'{"queries": [Infinity]}'),
        ("/predict", rb'{"queries": [-Infinity, "ok"]}'),
        ("/predict", rb'{"queries": ["Who \ud800 is?"]}'),
    ],
)
def test_unencodable_input_gets_a_4xx_with_a_reason(client, path, body):
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500, response.text[:300]
    assert isinstance(response.json()["detail"], str) and response.json()["detail"]


def test_health_sees_edits_written_by_another_process(client, scope, tmp_path):
    assert client.get("/health").json()["edits"] == 0
    other = EditMemory.open(tmp_path / "memory")  # e.g. the nightly ingest
    edit = record(PM)
    other.add([edit], scope.embedding.embed_edits([edit]), scope.encoder_fingerprint())
    health = client.get("/health").json()
    assert health["edits"] == 1 and health["memory_version"] == other.version
