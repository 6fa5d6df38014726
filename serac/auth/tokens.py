"""The token store (a JSON file of salted hashes, mode 0600) and verification of a presented token.

A token is ``serac_`` + 32 random bytes (``secrets.token_urlsafe``), shown once when created;
the store keeps only ``sha256(salt || token)`` with a per-token 16-byte salt. A fast hash is
enough here, unlike for passwords: a slow hash (scrypt, pbkdf2) exists to make guessing a
*low-entropy* secret expensive, and a 256-bit random token cannot be guessed at any hash
speed, while every request pays the verification cost (a slow hash per request would be
both latency and a denial-of-service lever). The salt keeps equal tokens from having equal
hashes and defeats precomputed tables. Comparison is constant time (``hmac.compare_digest``)
and runs over every stored token without stopping at a match, so timing says nothing about
which token or how much of it matched.

Scopes are independent grants: ``read`` (/predict, /health), ``write`` (add edits),
``admin`` (delete/forget edits). A token gets exactly the scopes it is created with.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import stat
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

SCOPES: tuple[str, ...] = ("read", "write", "admin")
TOKEN_PREFIX = "serac_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_FORMAT = 1


class TokenError(ValueError):
    """A bad token name or scope, or an unreadable / unsafe token store (the message names the file)."""


@dataclass(frozen=True)
class Principal:
    """Who a verified token belongs to and what it may do."""

    name: str
    scopes: frozenset[str]


@dataclass(frozen=True)
class TokenInfo:
    """One stored token, without its secret (what ``serac tokens ls`` shows)."""

    name: str
    scopes: tuple[str, ...]
    created: str


@dataclass(frozen=True)
class _Record:
    name: str
    scopes: frozenset[str]
    salt: bytes
    digest: bytes
    created: str


def parse_scopes(scopes: str | Iterable[str]) -> frozenset[str]:
    """``"read,write"`` (or an iterable) as a set of known scopes; TokenError for an unknown or empty one."""
    items = scopes.split(",") if isinstance(scopes, str) else list(scopes)
    parsed = frozenset(s.strip() for s in items if s.strip())
    unknown = sorted(parsed - set(SCOPES))
    if unknown or not parsed:
        raise TokenError(f"scopes {sorted(parsed) or '(none)'}: expected one or more of {', '.join(SCOPES)}")
    return parsed


def _digest(token: str, salt: bytes) -> bytes:
    return hashlib.sha256(salt + token.encode("utf-8", "surrogatepass")).digest()


class TokenStore:
    """The token file: create and revoke (under an ``flock``, written atomically with mode 0600), list."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def exists(self) -> bool:
        return self.path.is_file()

    def create(self, name: str, scopes: str | Iterable[str]) -> str:
        """Store a new token called ``name``; returns the token itself (it is not stored anywhere)."""
        if not _NAME.match(name):
            raise TokenError(f"token name {name!r}: use 1-64 letters, digits, '.', '_' or '-'")
        granted = parse_scopes(scopes)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        with self._locked():
            records = self._read()
            if any(r.name == name for r in records):
                raise TokenError(f"{self.path}: a token named {name!r} exists; revoke it first")
            created = datetime.now(UTC).replace(microsecond=0).isoformat()
            self._write([*records, _Record(name, granted, salt, _digest(token, salt), created)])
        return token

    def revoke(self, name: str) -> bool:
        """Remove the token called ``name``; False when there is none."""
        with self._locked():
            records = self._read()
            kept = [r for r in records if r.name != name]
            if len(kept) == len(records):
                return False
            self._write(kept)
            return True

    def list_tokens(self) -> list[TokenInfo]:
        return [TokenInfo(r.name, tuple(s for s in SCOPES if s in r.scopes), r.created) for r in self._read()]

    def _read(self) -> list[_Record]:
        return _load(self.path)

    def _write(self, records: list[_Record]) -> None:
        doc = {"format": _FORMAT, "tokens": [
            {"name": r.name, "scopes": sorted(r.scopes), "salt": r.salt.hex(), "sha256": r.digest.hex(),
             "created": r.created} for r in records]}
        _write_private(self.path, (json.dumps(doc, indent=2) + "\n").encode("utf-8"))

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # a new directory: owner only
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock


class TokenVerifier:
    """Checks presented tokens against a store; rereads the file when it changes (revocation is immediate).

    Safe to share between request threads. A store that becomes unreadable or unsafe makes every
    token fail (and the error is raised to the caller), never lets one through.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, ...] | None = None
        self._records: list[_Record] = []
        self._refresh()

    def verify(self, token: str) -> Principal | None:
        """The principal whose token this is, or None. Constant time in the token and over all records."""
        records = self._refresh()
        found: _Record | None = None
        for record in records:  # no early exit: every record costs the same
            if hmac.compare_digest(_digest(token, record.salt), record.digest):
                found = record
        return Principal(found.name, found.scopes) if found is not None else None

    def __len__(self) -> int:
        return len(self._refresh())

    def _refresh(self) -> list[_Record]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            stamp = None
        else:
            stamp = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_mode)  # ctime: chmod too
        with self._lock:
            if stamp != self._stamp:
                self._records = _load(self.path) if stamp is not None else []
                self._stamp = stamp
            return self._records


def _load(path: Path) -> list[_Record]:
    """The records in ``path`` ([] when it does not exist); TokenError if it is malformed or unsafe."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise TokenError(f"{path}: cannot open the token store ({exc.strerror})") from exc
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise TokenError(f"{path}: the token store is not a regular file")
    if st.st_mode & 0o022:
        os.close(fd)
        raise TokenError(f"{path}: the token store is writable by group or others "
                         f"(mode {stat.S_IMODE(st.st_mode):o}); run chmod 600 on it")
    with os.fdopen(fd, "rb") as handle:
        raw = handle.read()
    try:
        doc = json.loads(raw)
        if doc.get("format") != _FORMAT:
            raise ValueError(f"format {doc.get('format')!r}, expected {_FORMAT}")
        records = [
            _Record(str(t["name"]), parse_scopes(t["scopes"]), bytes.fromhex(t["salt"]), bytes.fromhex(t["sha256"]),
                    str(t.get("created", "")))
            for t in doc["tokens"]
        ]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise TokenError(f"{path}: malformed token store: {exc}") from exc
    if any(len(r.digest) != hashlib.sha256().digest_size for r in records):
        raise TokenError(f"{path}: malformed token store: a sha256 that is not 32 bytes")
    return records


def _write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically with ``data``; the file is mode 0600 from its creation on."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # mkstemp: 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
