"""The service's routes in process: behaviour, limits and error reasons."""

import json
import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from serve_fakes import PM, RIVER, bearer, make_service

from serac.auth import TokenVerifier
from serac.memory import EditMemory
from serac.serve import create_app


@pytest.fixture
def client(scope, tmp_path, tokens):
    service = make_service(scope, tmp_path / "memory", max_edits_per_request=5, max_queries_per_request=4,
                           max_text_chars=200, max_body_bytes=20_000)
    with TestClient(create_app(service, TokenVerifier(tokens.path)), headers=bearer(tokens.ops)) as c:
        yield c


def test_edit_is_visible_to_the_next_query_and_delete_undoes_it(client, tmp_path):
    assert client.get("/health").json()["edits"] == 0
    added = client.post("/edits", json={"edits": [PM, RIVER]})
    assert added.status_code == 200
    body = added.json()
    assert len(body["added"]) == 2 and body["skipped"] == [] and body["memory_version"] == 1
    pred = client.post("/predict", json={"queries": ["Who is the UK's prime minister?", "How do I bake bread?"]})
    first, second = pred.json()["predictions"]
    assert first["route"] == "counterfactual" and first["edit_id"] == body["added"][0] and first["score"] > 0.5
    assert first["matched_edit"]["edit_label"] == "Boris Johnson"
    assert second["route"] == "base" and second["answer"] == "base:How do I bake bread?"
    assert second["matched_edit"] is None
    again = client.post("/edits", json={"edits": [PM]}).json()
    assert again["added"] == [] and again["skipped"] == [body["added"][0]]  # idempotent
    gone = client.delete(f"/edits/{body['added'][0]}")
    assert gone.status_code == 200 and gone.json()["removed"] is True
    after = client.post("/predict", json={"queries": ["Who is the UK's prime minister?"]}).json()["predictions"][0]
    assert after["route"] == "base" and after["edit_id"] != body["added"][0]
    assert client.delete(f"/edits/{body['added'][0]}").json()["removed"] is False
    assert len(EditMemory.open(tmp_path / "memory")) == 1  # persisted


@pytest.mark.parametrize(
    ("method", "path", "payload", "status", "reason"),
    [
        ("post", "/edits", {"edits": [PM] * 6}, 413, "max_edits_per_request"),
        ("post", "/predict", {"queries": ["q"] * 5}, 413, "max_queries_per_request"),
        ("post", "/edits", {"edits": [{**PM, "edit_label": "x" * 300}]}, 422, "max_text_chars"),
        ("post", "/edits", {"edits": [{**PM, "task": "poetry"}]}, 422, "task"),
        ("post", "/edits", {"edits": [{**PM, "edit_label": "   "}]}, 422, "blank"),
        ("post", "/edits", {"edits": []}, 422, "edits"),
        ("post", "/edits", {"edit": [PM]}, 422, "edits"),
        ("post", "/predict", {"queries": "not a list"}, 422, "queries"),
        ("post", "/predict", {"queries": ["a\x00b"]}, 422, "NUL"),
    ],
)
def test_malformed_and_oversized_requests_get_4xx_with_a_reason(client, method, path, payload, status, reason):
    response = getattr(client, method)(path, json=payload)
    assert response.status_code == status
    assert reason in str(response.json()["detail"])


def test_bad_json_and_huge_bodies_are_refused(client):
    bad = client.post("/edits", content=b"{not json", headers={"content-type": "application/json"})
    assert bad.status_code == 422 and "JSON" in str(bad.json()["detail"])
    huge = client.post("/predict", content=b"x" * 30_000, headers={"content-type": "application/json"})
    assert huge.status_code == 413 and "max_body_bytes" in huge.json()["detail"]


def test_openapi_spec_lists_the_routes(client):
    spec = client.get("/openapi.json").json()
    assert {"/edits", "/edits/{edit_id}", "/predict", "/health"} <= set(spec["paths"])
    assert "413" in spec["paths"]["/edits"]["post"]["responses"]


def test_docs_openapi_json_is_the_served_spec(client):
    """docs/openapi.json is kept equal to the app's spec; SERAC_WRITE_OPENAPI=1 rewrites it."""
    path = Path(__file__).parents[2] / "docs" / "openapi.json"
    served = json.dumps(client.get("/openapi.json").json(), indent=2, sort_keys=True) + "\n"
    if os.environ.get("SERAC_WRITE_OPENAPI") == "1":
        path.write_text(served, encoding="utf-8")
    assert path.read_text(encoding="utf-8") == served, \
        "docs/openapi.json is stale: SERAC_WRITE_OPENAPI=1 pytest tests/serve/test_app.py -k openapi_json"


def test_edits_written_by_another_process_are_seen(client, scope, tmp_path):
    from serve_fakes import record

    other = EditMemory.open(tmp_path / "memory")  # e.g. the nightly ingest, writing the same memory
    edit = record(PM)
    other.add([edit], scope.embedding.embed_edits([edit]), scope.encoder_fingerprint())
    pred = client.post("/predict", json={"queries": ["Who is the UK's prime minister?"]}).json()["predictions"][0]
    assert pred["route"] == "counterfactual" and pred["edit_id"] == edit.edit_id
