"""POST /edits and DELETE /edits/{id} are audited: the token's name, the reason, the client address."""

import pytest
from fastapi.testclient import TestClient
from serve_fakes import PM, RIVER, bearer, make_service

from serac.auth import TokenVerifier
from serac.memory import audit
from serac.serve import create_app


def client_for(service, tokens, authenticated: bool) -> TestClient:
    """With the auth middleware and the ``ops`` token (all scopes), or with auth disabled (``anonymous``)."""
    if authenticated:
        return TestClient(create_app(service, TokenVerifier(tokens.path)), headers=bearer(tokens.ops))
    return TestClient(create_app(service, None))


@pytest.mark.parametrize("principal", ["ops", None])
def test_edits_and_deletes_are_recorded_with_who_why_and_where(scope, tmp_path, tokens, principal):
    root = tmp_path / "memory"
    with client_for(make_service(scope, root), tokens, principal is not None) as client:
        added = client.post("/edits", json={"edits": [PM, RIVER], "reason": "TICKET-42 \x1b[31mred"}).json()
        assert client.post("/edits", json={"edits": [PM]}).json()["added"] == []  # no change, no record
        gone = client.delete(f"/edits/{added['added'][0]}", params={"reason": "wrong PM"})
        assert gone.json()["removed"] is True
        client.delete("/edits/not-an-edit")  # nothing removed: no record
    add, remove = audit.read_records(root)
    who = principal or "anonymous"
    assert (add.action, add.actor, add.version_before, add.version_after) == ("add", who, 0, 1)
    assert add.edit_ids == tuple(added["added"]) and add.reason == "TICKET-42 \x1b[31mred"
    assert add.source == "api testclient"  # the client address as the server saw it
    assert (remove.action, remove.actor, remove.reason, remove.edit_ids) == (
        "remove", who, "wrong PM", (added["added"][0],))
    assert audit.verify(root) == []


def test_reason_is_optional_and_bounded(scope, tmp_path, tokens):
    root = tmp_path / "memory"
    with client_for(make_service(scope, root), tokens, False) as client:
        too_long = client.post("/edits", json={"edits": [PM], "reason": "x" * (audit.MAX_REASON_CHARS + 1)})
        assert too_long.status_code == 422
        assert client.delete("/edits/abc", params={"reason": "y" * (audit.MAX_REASON_CHARS + 1)}).status_code == 422
        assert client.post("/edits", json={"edits": [PM]}).status_code == 200
    (record,) = audit.read_records(root)
    assert record.reason is None and record.actor == "anonymous"
