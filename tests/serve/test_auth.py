"""Bearer-token auth on the service (issue 17 item 2): 401/403, scopes, principal, start-up policy, CLI.

Before the fix every route answered anyone: an anonymous POST /edits was stored (200).
"""

import json

import pytest
from fastapi import Request
from fastapi.testclient import TestClient
from serve_fakes import PM, bearer, make_service
from typer.testing import CliRunner

from serac.auth import TokenStore, TokenVerifier
from serac.cli.main import app as cli
from serac.memory import EditMemory
from serac.serve import create_app
from serac.serve.auth import AuthRequired, requires, start_policy

ROUTES = [("post", "/edits", {"edits": [PM]}), ("delete", "/edits/abc", None),
          ("post", "/predict", {"queries": ["Who leads the UK?"]}), ("get", "/health", None)]
NEEDS = {"/edits": "write", "/edits/abc": "admin", "/predict": "read", "/health": "read"}


@pytest.fixture
def app(scope, tmp_path, tokens):
    service = make_service(scope, tmp_path / "memory")
    app = create_app(service, TokenVerifier(tokens.path))

    @app.get("/whoami", **requires("read"))
    def whoami(request: Request) -> dict:
        return {"principal": request.state.principal}

    return app


@pytest.fixture
def client(app):
    with TestClient(app) as c:
        yield c


def call(client, method, path, body, headers=None):
    kwargs = {"json": body} if body is not None else {}
    return client.request(method.upper(), path, headers=headers or {}, **kwargs)


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_every_route_refuses_a_missing_or_bad_token_with_401(client, tmp_path, method, path, body):
    for headers, error in [({}, None), (bearer("serac_forged"), "invalid_token"),
                           ({"Authorization": "Basic dXNlcjpwdw=="}, None), ({"Authorization": "Bearer"}, None)]:
        response = call(client, method, path, body, headers)
        assert response.status_code == 401, (headers, response.text)
        challenge = response.headers["www-authenticate"]
        assert challenge.startswith('Bearer realm="serac"') and (error is None or f'error="{error}"' in challenge)
        assert "token" in response.json()["detail"]
    assert len(EditMemory.open(tmp_path / "memory")) == 0


@pytest.mark.parametrize("holder", ["read", "write", "admin"])
def test_each_scope_opens_exactly_its_routes(client, tokens, holder):
    for method, path, body in ROUTES:
        response = call(client, method, path, body, bearer(getattr(tokens, holder)))
        needed = NEEDS[path]
        if needed == holder:
            assert response.status_code == 200, (holder, path, response.text)
        else:
            assert response.status_code == 403, (holder, path, response.text)
            assert f'error="insufficient_scope", scope="{needed}"' in response.headers["www-authenticate"]
            assert needed in response.json()["detail"]


def test_the_principal_is_the_token_name_or_anonymous(client, tokens, scope, tmp_path):
    assert client.get("/whoami", headers=bearer(tokens.read)).json() == {"principal": "read"}
    assert client.get("/whoami", headers=bearer(tokens.ops)).json() == {"principal": "ops"}
    open_app = create_app(make_service(scope, tmp_path / "other"), None)

    @open_app.get("/whoami", **requires("read"))
    def whoami(request: Request) -> dict:
        return {"principal": request.state.principal}

    with TestClient(open_app) as anonymous:
        assert anonymous.get("/whoami").json() == {"principal": "anonymous"}
        assert anonymous.post("/edits", json={"edits": [PM]}).status_code == 200


def test_a_revoked_token_is_refused_from_the_next_request(client, tokens):
    assert client.get("/health", headers=bearer(tokens.read)).status_code == 200
    assert TokenStore(tokens.path).revoke("read")
    assert client.get("/health", headers=bearer(tokens.read)).status_code == 401
    assert client.get("/health", headers=bearer(tokens.ops)).status_code == 200


def test_a_store_made_unsafe_while_serving_lets_no_one_in(client, tokens):
    tokens.path.chmod(0o666)
    refused = client.get("/health", headers=bearer(tokens.ops))
    assert refused.status_code == 503 and "token store" in refused.json()["detail"]
    tokens.path.chmod(0o600)
    assert client.get("/health", headers=bearer(tokens.ops)).status_code == 200


def test_auth_comes_before_the_body_is_read_and_unknown_paths_need_a_token(client, tokens):
    bad_json = client.post("/edits", content=b"{not json", headers={"content-type": "application/json"})
    assert bad_json.status_code == 401
    assert client.get("/nowhere").status_code == 401
    assert client.get("/nowhere", headers=bearer(tokens.read)).status_code == 404


def test_the_spec_is_public_and_states_each_routes_scope(client):
    spec = client.get("/openapi.json").json()
    scheme = spec["components"]["securitySchemes"]["bearerAuth"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    for method, path, _ in ROUTES:
        template = "/edits/{edit_id}" if path == "/edits/abc" else path
        operation = spec["paths"][template][method]
        assert operation["security"] == [{"bearerAuth": [NEEDS[path]]}]
        assert {"401", "403"} <= set(operation["responses"])


def test_a_route_without_a_declared_scope_fails_at_start(scope, tmp_path, tokens):
    app = create_app(make_service(scope, tmp_path / "memory"), TokenVerifier(tokens.path))

    @app.get("/forgotten")
    def forgotten() -> dict:
        return {}

    with pytest.raises(ValueError, match="declares no scope"), TestClient(app) as c:
        c.get("/health")


@pytest.mark.parametrize(("host", "store", "insecure", "auth", "note"), [
    ("127.0.0.1", False, False, False, "WARNING: no token store"),
    ("localhost", False, False, False, "WARNING: no token store"),
    ("::1", False, False, False, "WARNING: no token store"),
    ("0.0.0.0", False, False, None, None),
    ("::", False, False, None, None),
    ("10.1.2.3", False, False, None, None),
    ("serac.example.org", False, False, None, None),
    ("0.0.0.0", False, True, False, "WARNING: --insecure-no-auth"),
    ("0.0.0.0", True, True, False, "WARNING: --insecure-no-auth"),
    ("0.0.0.0", True, False, True, "auth on"),
    ("127.0.0.1", True, False, True, "auth on"),
])
def test_start_policy_refuses_an_open_non_loopback_bind(tmp_path, host, store, insecure, auth, note):
    path = tmp_path / "tokens.json"
    if store:
        TokenStore(path).create("x", "read")
    if auth is None:
        with pytest.raises(AuthRequired, match="--insecure-no-auth"):
            start_policy(host, path, insecure)
        return
    verifier, line = start_policy(host, path, insecure)
    assert (verifier is not None) == auth and note in line


def test_an_emptied_store_keeps_auth_on(tmp_path):
    store = TokenStore(tmp_path / "tokens.json")
    store.create("only", "admin")
    store.revoke("only")
    verifier, _ = start_policy("0.0.0.0", store.path)
    assert verifier is not None and len(verifier) == 0


def test_tokens_cli_creates_lists_and_revokes(tmp_path):
    runner, path = CliRunner(), tmp_path / "t" / "tokens.json"
    created = runner.invoke(cli, ["tokens", "create", "--name", "ci", "--scope", "read,write", "--tokens", str(path)])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    assert TokenVerifier(path).verify(token).scopes == {"read", "write"}
    listed = runner.invoke(cli, ["tokens", "ls", "--tokens", str(path)])
    assert listed.exit_code == 0 and "ci" in listed.stdout and "read,write" in listed.stdout
    assert token not in listed.stdout and token not in path.read_text()
    assert [t["name"] for t in json.loads(path.read_text())["tokens"]] == ["ci"]
    bad = runner.invoke(cli, ["tokens", "create", "--name", "x", "--scope", "root", "--tokens", str(path)])
    assert bad.exit_code == 2 and "expected one or more" in bad.output
    assert runner.invoke(cli, ["tokens", "revoke", "ci", "--tokens", str(path)]).exit_code == 0
    assert TokenVerifier(path).verify(token) is None
    missing = runner.invoke(cli, ["tokens", "revoke", "ci", "--tokens", str(path)])
    assert missing.exit_code == 1 and "no token named" in missing.output


def test_serve_refuses_to_start_open_on_all_interfaces(tmp_path):
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--tokens", str(tmp_path / "none.json"),
                                      "--editor", str(tmp_path / "no-editor")])
    assert result.exit_code == 2 and "refusing to serve 0.0.0.0 without authentication" in result.output
