"""The memory's audit trail: who changed the edit memory, when, what, why and from where.

One JSON line per committed change in ``<root>/audit.jsonl``, beside ``CURRENT``, so
``dvc add <root>`` versions the trail with the memory it describes. The writer appends
while it holds the memory's write lock (the ``flock`` on ``<root>/.lock``), with one
``O_APPEND`` write and an ``fsync``, *before* it swaps ``CURRENT``: a change never
commits without its record, and an append that fails refuses the change. A writer killed
between the append and the swap leaves a record of a version that never became current;
the next writer starts again from the same version, and :func:`committed` / :func:`verify`
tell such a record apart (the next record's ``version_before`` is lower than its
``version_after``).

Records are chained: each carries the sha256 of the one before (``prev_hash``) and its
own (``hash``), so editing or deleting a line is caught by :func:`verify`, which also
checks that versions follow each other without a change missing from the trail and that
each version still on disk has the manifest the record names.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from serac.memory import layout

AUDIT_FILE = "audit.jsonl"
FORMAT = "serac-audit/1"
ACTIONS = ("add", "remove", "compact", "reembed", "upgrade")
GENESIS = "0" * 64
"""``prev_hash`` of the first record."""

MAX_ACTOR_CHARS = 200
MAX_REASON_CHARS = 2000
MAX_SOURCE_CHARS = 500
_TAIL_CHUNK = 1 << 16


class AuditError(RuntimeError):
    """The audit trail cannot be appended to or read; names the file (and line)."""


@dataclass(frozen=True)
class AuditContext:
    """Who asks for a change, why and from where; every entry point builds one and passes it down."""

    actor: str
    """Token name (API), OS user (CLI, Python), ``prefect-flow-run:<id>`` (ingest flow)."""
    reason: str | None = None
    """Free text or a ticket id; blank means none."""
    source: str = ""
    """Where the request came from: ``api 10.0.0.5``, ``cli``, ``cli batch.jsonl``, ``python``."""

    def __post_init__(self) -> None:
        if not isinstance(self.actor, str) or not self.actor.strip():
            raise ValueError("audit actor must be a non-empty string")
        if len(self.actor) > MAX_ACTOR_CHARS:
            raise ValueError(f"audit actor of {len(self.actor)} characters; the limit is {MAX_ACTOR_CHARS}")
        if self.reason is not None:
            if not isinstance(self.reason, str):
                raise ValueError("audit reason must be a string")
            if len(self.reason) > MAX_REASON_CHARS:
                raise ValueError(f"reason of {len(self.reason)} characters; the limit is {MAX_REASON_CHARS}")
            if not self.reason.strip():
                object.__setattr__(self, "reason", None)
        if not isinstance(self.source, str) or len(self.source) > MAX_SOURCE_CHARS:
            raise ValueError(f"audit source must be a string of at most {MAX_SOURCE_CHARS} characters")

    @classmethod
    def local(cls, reason: str | None = None, source: str = "python") -> AuditContext:
        """A change made by the OS user running this process (CLI, notebooks, scripts)."""
        return cls(os_user(), reason, source)


@dataclass(frozen=True)
class AuditRecord:
    """One committed (or, after a crash, attempted) change of the memory."""

    seq: int
    """1, 2, ... in file order."""
    at: str
    """UTC time, ISO 8601."""
    actor: str
    action: str
    """One of :data:`ACTIONS`; sealing and merging of segments show in ``details``."""
    edit_ids: tuple[str, ...]
    """Edits added or removed (empty for compact / reembed / upgrade, which keep every live edit)."""
    version_before: int
    version_after: int
    manifest_sha256: str | None
    """sha256 of ``versions/v<version_after>/manifest.json``: ties the record to that exact version."""
    reason: str | None
    source: str
    edit_sources: tuple[str, ...] = ()
    """Where each added edit came from (``file#row``), aligned with ``edit_ids``; empty when unknown."""
    details: Mapping[str, Any] = field(default_factory=dict)
    prev_hash: str = GENESIS
    hash: str = ""

    def source_of(self, edit_id: str) -> str:
        """The row source of ``edit_id`` in this record ('' when not recorded)."""
        if self.edit_sources and edit_id in self.edit_ids:
            return self.edit_sources[self.edit_ids.index(edit_id)]
        return ""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["edit_ids"], data["edit_sources"] = list(self.edit_ids), list(self.edit_sources)
        data["details"] = dict(self.details)
        return {"format": FORMAT, **data}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AuditRecord:
        if data.get("format") != FORMAT:
            raise ValueError(f"unknown format {data.get('format')!r}")
        return cls(
            seq=int(data["seq"]), at=str(data["at"]), actor=str(data["actor"]), action=str(data["action"]),
            edit_ids=tuple(str(i) for i in data["edit_ids"]), version_before=int(data["version_before"]),
            version_after=int(data["version_after"]), manifest_sha256=data["manifest_sha256"],
            reason=data["reason"], source=str(data["source"]),
            edit_sources=tuple(str(s) for s in data.get("edit_sources", ())), details=dict(data.get("details", {})),
            prev_hash=str(data["prev_hash"]), hash=str(data["hash"]),
        )


@dataclass(frozen=True)
class Change:
    """What a memory mutation is about to commit, handed to the commit step for its record."""

    action: str
    context: AuditContext
    edit_ids: tuple[str, ...] = ()
    edit_sources: tuple[str, ...] = ()
    """``file#row`` of each added edit, aligned with ``edit_ids`` (may be all empty)."""

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown audit action {self.action!r}; expected one of {ACTIONS}")


def record_change(root: str | Path, change: Change, version_before: int, version_after: int,
                  details: Mapping[str, Any] | None = None) -> AuditRecord:
    """:func:`append` for ``change``; call while holding the write lock, after writing the manifest
    of ``version_after`` and before swapping ``CURRENT``."""
    return append(root, change.context, action=change.action, version_before=version_before,
                  version_after=version_after, edit_ids=change.edit_ids, edit_sources=change.edit_sources,
                  details=details)


def copy_trail(root: str | Path, dest: str | Path, upto: int) -> None:
    """Copy the records of ``root``'s trail up to version ``upto`` (a prefix: the chain stays whole) to ``dest``."""
    source = audit_path(root)
    if not source.is_file():
        return
    with open(source, "rb") as src, open(audit_path(dest), "wb") as out:
        for raw in src:
            try:
                if int(json.loads(raw)["version_after"]) > upto:
                    break
            except (ValueError, KeyError, TypeError):
                pass  # an unreadable line is copied as it is: verify reports it in the copy too
            out.write(raw)
        out.flush()
        os.fsync(out.fileno())


def with_reason(context: AuditContext | None, reason: str | None = None, source: str = "python") -> AuditContext:
    """``context`` (default :meth:`AuditContext.local` from ``source``) with ``reason`` filled in when given."""
    context = context if context is not None else AuditContext.local(source=source)
    return context if reason is None else replace(context, reason=reason)


def os_user() -> str:
    """The login name of this process's user; ``uid:<n>`` when the system cannot name it."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


def audit_path(root: str | Path) -> Path:
    return Path(root) / AUDIT_FILE


def record_hash(data: Mapping[str, Any]) -> str:
    """sha256 over the record's canonical JSON, its own ``hash`` left out."""
    body = {k: v for k, v in data.items() if k != "hash"}
    return hashlib.sha256(_canonical(body).encode("ascii")).hexdigest()


def append(
    root: str | Path,
    context: AuditContext,
    *,
    action: str,
    version_before: int,
    version_after: int,
    edit_ids: Sequence[str] = (),
    edit_sources: Sequence[str] = (),
    details: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> AuditRecord:
    """Append one record for the change ``version_before`` -> ``version_after`` and return it.

    Call only while holding the memory's write lock (the hash chain reads the last record).
    The manifest of ``version_after`` must already be written. One ``O_APPEND`` write of the
    whole line, then ``fsync``; a torn last line left by a crash is closed off first (and
    reported by :func:`verify`). Raises :class:`AuditError` when the trail cannot be written.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}; expected one of {ACTIONS}")
    if edit_sources and len(edit_sources) != len(edit_ids):
        raise ValueError(f"{len(edit_sources)} edit sources for {len(edit_ids)} edit ids")
    root = Path(root)
    path = audit_path(root)
    last, torn = _last_record(path)
    manifest = layout.version_dir(root, version_after) / layout.MANIFEST_FILE
    data: dict[str, Any] = {
        "format": FORMAT,
        "seq": (last.seq if last else 0) + 1,
        "at": (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": context.actor,
        "action": action,
        "edit_ids": list(edit_ids),
        "version_before": version_before,
        "version_after": version_after,
        "manifest_sha256": layout.sha256_file(manifest) if manifest.is_file() else None,
        "reason": context.reason,
        "source": context.source,
        "edit_sources": [s or "" for s in edit_sources] if any(edit_sources) else [],
        "details": dict(details or {}),
        "prev_hash": last.hash if last else GENESIS,
    }
    data["hash"] = record_hash(data)
    line = ("\n" if torn else "") + _canonical(data) + "\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            payload = line.encode("ascii")
            while payload:
                payload = payload[os.write(fd, payload):]
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise AuditError(f"{path}: cannot append the audit record: {exc}") from exc
    return AuditRecord.from_json(data)


def read_records(root: str | Path) -> list[AuditRecord]:
    """Every readable record, oldest first; unreadable lines are left out (:func:`verify` names them)."""
    return [record for _, record, _, _ in _scan(audit_path(root)) if record is not None]


def history(root: str | Path, edit_id: str | None = None) -> list[tuple[AuditRecord, bool]]:
    """(record, committed) pairs, oldest first; with ``edit_id`` only the records that name it."""
    records = read_records(root)
    flags = committed(records, layout.read_current(Path(root)))
    pairs = list(zip(records, flags))
    if edit_id is not None:
        pairs = [(r, ok) for r, ok in pairs if edit_id in r.edit_ids]
    return pairs


def committed(records: Sequence[AuditRecord], current: int) -> list[bool]:
    """Which records describe a change that became current.

    A record is superseded when the next one starts from a version below its
    ``version_after`` (its writer died before swapping ``CURRENT``); the last one counts
    when ``current`` has reached its ``version_after``.
    """
    flags = []
    for i, record in enumerate(records):
        if i + 1 < len(records):
            flags.append(records[i + 1].version_before >= record.version_after)
        else:
            flags.append(current >= record.version_after)
    return flags


def verify(root: str | Path) -> list[str]:
    """Problems found in the trail at ``root`` (empty: intact). Checks, line by line:

    every line parses; ``seq`` counts up by one; each ``hash`` matches the record and each
    ``prev_hash`` the record before (an edited, inserted or deleted line breaks the chain);
    committed versions follow each other with no change missing from the trail; the
    current version is covered; a version still on disk has the manifest its record names.
    """
    root = Path(root)
    path = audit_path(root)
    problems: list[str] = []
    records: list[tuple[int, AuditRecord]] = []
    prev_hash = GENESIS
    for line_no, record, raw, error in _scan(path):
        if record is None:
            problems.append(f"{path}:{line_no}: unreadable record: {error}")
            continue
        where = f"{path}:{line_no} (#{record.seq})"
        expected_seq = records[-1][1].seq + 1 if records else 1
        if record.seq != expected_seq:
            problems.append(f"{where}: seq {record.seq}, expected {expected_seq} (a record is missing or moved)")
        if record_hash(raw) != record.hash:  # the line as stored: an added key counts too
            problems.append(f"{where}: hash does not match the record (it was altered)")
        if record.prev_hash != prev_hash:
            problems.append(f"{where}: prev_hash does not match the record before (the chain is broken)")
        prev_hash = record.hash
        records.append((line_no, record))
    current = layout.read_current(root)
    flags = committed([r for _, r in records], current)
    last_after: int | None = None
    for (line_no, record), ok in zip(records, flags):
        where = f"{path}:{line_no} (#{record.seq})"
        if last_after is not None and record.version_before > last_after:
            problems.append(f"{where}: v{last_after + 1}..v{record.version_before} changed without an audit record")
        if not ok:
            continue
        last_after = record.version_after
        manifest = layout.version_dir(root, record.version_after) / layout.MANIFEST_FILE
        if manifest.is_file() and record.manifest_sha256 != layout.sha256_file(manifest):
            problems.append(f"{where}: {manifest} is not the manifest this record names")
    if last_after is not None and current > last_after:
        problems.append(f"{path}: v{last_after + 1}..v{current} changed without an audit record")
    if last_after is None and current > 0:
        problems.append(f"{path}: no committed record, yet the memory is at v{current}")
    return problems


def escape_text(text: str) -> str:
    """``text`` safe to print on a terminal: control, format (bidi, zero-width) and separator characters escaped."""
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


# ---------------------------------------------------------------- internals


def _canonical(data: Mapping[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def _scan(path: Path) -> Iterator[tuple[int, AuditRecord | None, dict[str, Any], str]]:
    """(line number, record or None, the parsed line, error) for each non-empty line of ``path``."""
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return
    except OSError as exc:
        raise AuditError(f"{path}: unreadable: {exc}") from exc
    with handle:
        for line_no, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                data = json.loads(raw)
                yield line_no, AuditRecord.from_json(data), data, ""
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                yield line_no, None, {}, f"{type(exc).__name__}: {exc}"[:200]


def _last_record(path: Path) -> tuple[AuditRecord | None, bool]:
    """(the last readable record, whether the file ends in a torn line), reading back from the end only."""
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return None, False
    except OSError as exc:
        raise AuditError(f"{path}: unreadable: {exc}") from exc
    with handle:
        pos = handle.seek(0, os.SEEK_END)
        if pos == 0:
            return None, False
        handle.seek(pos - 1)
        torn = handle.read(1) != b"\n"
        buf = b""
        tail_dropped = False
        while pos > 0:
            step = min(_TAIL_CHUNK, pos)
            pos -= step
            handle.seek(pos)
            pieces = (handle.read(step) + buf).split(b"\n")
            if not tail_dropped:
                if len(pieces) == 1 and pos > 0:
                    buf = pieces[0]
                    continue
                pieces, tail_dropped = pieces[:-1], True  # after the final newline: "" or a torn line
            if pos > 0 and pieces:
                buf, pieces = pieces[0], pieces[1:]  # its start lies in the next chunk back
            for raw in reversed(pieces):
                if raw.strip():
                    try:
                        return AuditRecord.from_json(json.loads(raw)), torn
                    except (ValueError, KeyError, TypeError, AttributeError):
                        continue
        return None, torn
