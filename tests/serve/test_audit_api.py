"""POST /edits and DELETE /edits/{id} are audited: the token's name, the reason, the client address."""

import pytest
from fastapi import Request
from fastapi.testclient import TestClient
from serve_fakes import PM, RIVER, make_service

from serac.memory import audit
from serac.serve import create_app


def client_for(service, principal: str | None) -> TestClient:
    app = create_app(service)
    if principal is not None:  # what sec-serve's auth does for a request that passed it

        @app.middleware("http")
        async def authenticated(request: Request, call_next):
            request.state.principal = principal
            return await call_next(request)

    return TestClient(app)


@pytest.mark.parametrize("principal", ["ops-token", None])
def test_edits_and_deletes_are_recorded_with_who_why_and_where(scope, tmp_path, principal):
    root = tmp_path / "memory"
    with client_for(make_service(scope, root), principal) as client:
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


def test_reason_is_optional_and_bounded(scope, tmp_path):
    root = tmp_path / "memory"
    with client_for(make_service(scope, root), None) as client:
        too_long = client.post("/edits", json={"edits": [PM], "reason": "x" * (audit.MAX_REASON_CHARS + 1)})
        assert too_long.status_code == 422
        assert client.delete("/edits/abc", params={"reason": "y" * (audit.MAX_REASON_CHARS + 1)}).status_code == 422
        assert client.post("/edits", json={"edits": [PM]}).status_code == 200
    (record,) = audit.read_records(root)
    assert record.reason is None and record.actor == "anonymous"
