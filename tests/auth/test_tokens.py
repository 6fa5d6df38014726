"""The token store: only salted hashes on disk, mode 0600, create/revoke/list, constant-time verification."""

import json
import os
import stat
import threading

import pytest

from serac.auth import TokenError, TokenStore, TokenVerifier, parse_scopes


def test_created_token_verifies_with_its_scopes_and_is_not_stored(tmp_path):
    store = TokenStore(tmp_path / "secrets" / "tokens.json")
    token = store.create("ci-bot", "read,write")
    assert token.startswith("serac_") and len(token) > 40
    raw = store.path.read_text()
    assert token not in raw and token[6:] not in raw  # neither the token nor its secret part
    entry = json.loads(raw)["tokens"][0]
    assert set(entry) == {"name", "scopes", "salt", "sha256", "created"}
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    who = TokenVerifier(store.path).verify(token)
    assert who is not None and who.name == "ci-bot" and who.scopes == {"read", "write"}


def test_equal_scopes_do_not_give_equal_hashes_and_wrong_tokens_fail(tmp_path):
    store = TokenStore(tmp_path / "tokens.json")
    a, b = store.create("a", "read"), store.create("b", "read")
    entries = json.loads(store.path.read_text())["tokens"]
    assert entries[0]["salt"] != entries[1]["salt"] and entries[0]["sha256"] != entries[1]["sha256"]
    verifier = TokenVerifier(store.path)
    assert verifier.verify(a).name == "a" and verifier.verify(b).name == "b"
    for wrong in ("", a[:-1], a + "x", a.upper(), "serac_" + "A" * 43, "\ud800"):
        assert verifier.verify(wrong) is None


def test_revocation_reaches_a_running_verifier_at_once(tmp_path):
    store = TokenStore(tmp_path / "tokens.json")
    token = store.create("alice", "admin")
    verifier = TokenVerifier(store.path)
    assert verifier.verify(token) is not None
    assert store.revoke("alice") is True and store.revoke("alice") is False
    assert verifier.verify(token) is None and len(verifier) == 0
    again = store.create("alice", "read")  # the name is free again; the old token stays dead
    assert verifier.verify(token) is None and verifier.verify(again).scopes == {"read"}


def test_listing_shows_names_and_scopes_only(tmp_path):
    store = TokenStore(tmp_path / "tokens.json")
    store.create("ops", "admin,read,write")
    store.create("reader", "read")
    infos = store.list_tokens()
    assert [(i.name, i.scopes) for i in infos] == [("ops", ("read", "write", "admin")), ("reader", ("read",))]
    assert all(i.created for i in infos)


@pytest.mark.parametrize(("name", "scopes", "reason"), [
    ("ok", "read,delete", "expected one or more"),
    ("ok", "", "expected one or more"),
    ("bad name", "read", "token name"),
    ("x\x1b[31m", "read", "token name"),
    ("", "read", "token name"),
])
def test_bad_names_and_scopes_are_refused(tmp_path, name, scopes, reason):
    with pytest.raises(TokenError, match=reason):
        TokenStore(tmp_path / "tokens.json").create(name, scopes)
    assert not (tmp_path / "tokens.json").exists()


def test_duplicate_names_are_refused(tmp_path):
    store = TokenStore(tmp_path / "tokens.json")
    store.create("a", "read")
    with pytest.raises(TokenError, match="exists"):
        store.create("a", "write")


def test_concurrent_creates_lose_nothing(tmp_path):
    store = TokenStore(tmp_path / "tokens.json")
    tokens: dict[str, str] = {}
    threads = [threading.Thread(target=lambda i=i: tokens.__setitem__(f"t{i}", store.create(f"t{i}", "read")))
               for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    verifier = TokenVerifier(store.path)
    assert len(verifier) == 12 and all(verifier.verify(tok).name == name for name, tok in tokens.items())


def test_unsafe_or_malformed_stores_are_refused(tmp_path):
    path = tmp_path / "tokens.json"
    TokenStore(path).create("a", "read")
    os.chmod(path, 0o666)
    with pytest.raises(TokenError, match="writable by group or others"):
        TokenVerifier(path)
    path.write_text('{"format": 1, "tokens": [{"name": "a"}]}')
    os.chmod(path, 0o600)
    with pytest.raises(TokenError, match="malformed"):
        TokenVerifier(path)
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(TokenError, match="not a regular file"):
        TokenVerifier(tmp_path / "dir.json")


def test_parse_scopes():
    assert parse_scopes(" read , admin") == {"read", "admin"}
    assert parse_scopes(["write"]) == {"write"}
