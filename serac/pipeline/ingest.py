"""Nightly ingestion: inbox batches -> validation -> edit memory, with a ledger that makes it idempotent.

The steps, each a plain function the flow in ``flows/nightly_ingest.py`` wraps in one task:

1. :func:`discover_batches` lists the inbox (a directory or an fsspec URL; remote files
   are staged locally) and hashes every file. A link whose target lies outside a local
   inbox, and anything not a regular file (FIFO, device, directory), is refused unopened,
   with the reason in the report (:func:`inbox_entry`).
2. :func:`split_pending` drops batches whose sha256 is already in the **ledger**
   (``ingest.ledger``, a JSON file written atomically): the same bytes are never ingested
   twice, so a re-run changes nothing, not even the memory version.
3. :func:`validate_batch` runs the GX suite (:func:`serac.data.validation.validate_file`,
   ``training=False``: inbox edits need no in-scope example) and writes the batch's
   outputs to ``<validated_root>/<stem>-<sha8>/``.
4. :func:`add_to_memory` adds the passed rows (the memory write is atomic, and adding is
   idempotent by content-hash ``edit_id``); :func:`record_batch` writes the ledger entry and
   :func:`verify_batch` re-reads both from disk. The flow runs these three in one
   transaction whose rollback puts the previous ledger entry back (:func:`restore_entry`).
5. :func:`scope_recall` measures how well the scope classifier routes the new edits'
   queries; :func:`should_retrain` decides whether the editor needs retraining.
6. :func:`track_memory` versions the memory with ``dvc add``.

:class:`~serac.pipeline.ingest_report.IngestReport` (re-exported here) collects one
:class:`BatchRow` per batch and renders the run as Markdown for a Prefect artifact.

A refused batch (more than ``validation.max_failure_rate`` of its rows quarantined, or a
file that cannot be read) is *not* recorded in the ledger: it is looked at again every
night (its validation is cached, so that costs nothing) and shows up in every report until
someone fixes it. A fixed file has other bytes, hence another sha256: a new batch.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from serac.config import BaseModelConfig, GuardConfig, IngestConfig, MemoryConfig, ValidationConfig
from serac.data.schema import EditRecord
from serac.io import atomic_path, write_json
from serac.pipeline import dvc
from serac.pipeline.ingest_report import FAILED, INGESTED, REFUSED, BatchRow, IngestReport

if TYPE_CHECKING:
    from serac.data.validation import ValidationReport
    from serac.editor import SeracEditor
    from serac.memory.audit import AuditContext, AuditRecord
    from serac.memory.store import AddResult

log = logging.getLogger(__name__)

LEDGER_FORMAT = "serac-ingest-ledger/1"
_HASH_CHUNK = 1 << 20


class LedgerError(ValueError):
    """The ledger file is unreadable or not a serac ingest ledger."""


class IngestVerificationError(RuntimeError):
    """After a batch was added, the memory or the ledger on disk does not show it."""


# ---------------------------------------------------------------- discovering batches


@dataclass(frozen=True)
class Batch:
    """One inbox file: a local path to read, the sha256 of its bytes, and where it came from."""

    path: Path
    sha256: str
    source: str = ""
    """The file as found in the inbox (a path or URL); ``path`` is a local staged copy for remote inboxes."""
    refused: str = ""
    """Why the inbox entry is not read at all (a link out of the inbox, not a regular file); ``sha256`` is empty."""

    @property
    def name(self) -> str:
        return PurePosixPath(self.source).name if self.source else self.path.name

    @property
    def sha8(self) -> str:
        return self.sha256[:8]

    def out_dir(self, cfg: IngestConfig) -> Path:
        """``<validated_root>/<stem>-<sha8>/``: one directory per distinct content of a file name."""
        return Path(cfg.validated_root) / f"{PurePosixPath(self.name).stem}-{self.sha8}"


def sha256_file(path: str | Path) -> str:
    """The sha256 of a regular file's bytes; the last path component may not be a link, nor anything but a
    regular file (checked on the opened descriptor, so a FIFO or device never blocks or is read)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with open(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path}: not a regular file")
        digest = hashlib.sha256()
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


_FILE_TYPES = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))  # fmt: skip


def inbox_entry(path: Path, inbox: Path) -> Batch:
    """One entry of a local inbox, judged by ``lstat``/``readlink`` alone: a regular file inside the inbox
    (possibly through a link that stays inside it) becomes a batch with its sha256; anything else a refused
    entry with the reason. A refused entry is never opened."""
    real_inbox = inbox.resolve()
    target = path.resolve()
    if not target.is_relative_to(real_inbox):
        return Batch(path, "", str(path), refused=f"a symbolic link to {target}, outside the inbox: not read")
    try:
        mode = os.stat(target).st_mode
    except OSError as exc:
        return Batch(path, "", str(path), refused=f"cannot stat: {exc.strerror}")
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _FILE_TYPES if test(mode)), "not a regular file")
        return Batch(path, "", str(path), refused=f"{kind}, not a regular file: not read")
    return Batch(target, sha256_file(target), str(path))


def discover_batches(cfg: IngestConfig) -> list[Batch]:
    """Every file in ``cfg.inbox`` matching one of ``cfg.patterns``, sorted by name, with its sha256.

    A local inbox is read in place; a missing one raises ``FileNotFoundError`` (a typo in
    ``ingest.inbox`` should not look like a quiet night). For any other fsspec URL the files
    are copied into ``cfg.staging_dir`` (keeping their modification time where the
    filesystem reports one, so validation stamps the same ``ingested_at`` on every run).
    """
    import fsspec
    from fsspec.implementations.local import LocalFileSystem

    fs, root = fsspec.core.url_to_fs(cfg.inbox)
    if isinstance(fs, LocalFileSystem):
        inbox = Path(root)
        if not inbox.is_dir():
            raise FileNotFoundError(f"ingest.inbox {cfg.inbox!r}: no such directory")
        found = {p for pattern in cfg.patterns for p in inbox.glob(pattern)}
        ordered = sorted(found, key=lambda p: (p.name, str(p)))
        return [inbox_entry(p, inbox) for p in ordered]

    base = root.rstrip("/")
    remote = {p for pattern in cfg.patterns for p in fs.glob(f"{base}/{pattern}") if fs.isfile(p)}
    staging = Path(cfg.staging_dir)
    batches = []
    for path in sorted(remote, key=lambda p: (PurePosixPath(p).name, p)):
        local = staging / PurePosixPath(path).name
        _stage(fs, path, local)
        batches.append(Batch(local, sha256_file(local), fs.unstrip_protocol(path)))
    return batches


def _stage(fs: Any, remote_path: str, local: Path) -> None:
    """Copy one remote file to ``local`` atomically, keeping its modification time when known."""
    with atomic_path(local) as tmp:
        fs.get_file(remote_path, str(tmp))
        try:
            modified = fs.modified(remote_path)
        except (NotImplementedError, OSError, AttributeError, KeyError, ValueError):
            modified = None
        if modified is not None:
            stamp = (modified if modified.tzinfo else modified.replace(tzinfo=UTC)).timestamp()
            os.utime(tmp, (stamp, stamp))


# ---------------------------------------------------------------- the ledger


def empty_ledger() -> dict[str, Any]:
    return {"format": LEDGER_FORMAT, "batches": {}, "last_training": None}


def read_ledger(path: str | Path) -> dict[str, Any]:
    """The ledger at ``path``; an empty one when the file does not exist yet.

    ``{"format", "batches": {sha256: entry}, "last_training": {"at", "memory_version"} | None}``;
    an entry is ``{file, ingested_at, added, skipped, quarantined, memory_version}``.
    """
    import json

    path = Path(path)
    if not path.exists():
        return empty_ledger()
    try:
        ledger = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LedgerError(f"{path}: unreadable ledger: {exc}") from exc
    if not isinstance(ledger, dict) or ledger.get("format") != LEDGER_FORMAT or not isinstance(
        ledger.get("batches"), dict
    ):
        raise LedgerError(f"{path}: not a serac ingest ledger (expected format {LEDGER_FORMAT!r})")
    ledger.setdefault("last_training", None)
    return ledger


def split_pending(batches: Sequence[Batch], ledger: dict[str, Any]) -> tuple[list[Batch], list[Batch]]:
    """(batches to ingest, batches already in the ledger). A file seen twice in one run is ingested once;
    refused inbox entries are in neither (the report lists them: :meth:`BatchRow.refused_entry`)."""
    pending: list[Batch] = []
    done: list[Batch] = []
    seen: set[str] = set()
    for batch in batches:
        if batch.refused:
            continue
        if batch.sha256 in ledger["batches"] or batch.sha256 in seen:
            done.append(batch)
        else:
            seen.add(batch.sha256)
            pending.append(batch)
    return pending, done


def ledger_entry(batch: Batch, report: "ValidationReport", result: "AddResult") -> dict[str, Any]:
    return {
        "file": batch.source or str(batch.path),
        "ingested_at": _now(),
        "added": len(result.added),
        "skipped": len(result.skipped),
        "quarantined": len(report.quarantined),
        "memory_version": result.version,
    }


def record_batch(path: str | Path, sha256: str, entry: dict[str, Any]) -> dict[str, Any] | None:
    """Write ``entry`` for ``sha256`` into the ledger (atomically); returns the entry it replaced, if any."""
    ledger = read_ledger(path)
    previous = ledger["batches"].get(sha256)
    ledger["batches"][sha256] = entry
    write_json(path, ledger)
    return previous


def restore_entry(path: str | Path, sha256: str, previous: dict[str, Any] | None) -> None:
    """Undo :func:`record_batch`: put ``previous`` back, or drop the entry when there was none."""
    ledger = read_ledger(path)
    if previous is None:
        if ledger["batches"].pop(sha256, None) is None:
            return
    else:
        ledger["batches"][sha256] = previous
    write_json(path, ledger)


def mark_trained(path: str | Path, memory_version: int) -> None:
    """Record that the editor was (re)trained now, on the memory at ``memory_version``.

    :func:`new_edits_since_training` counts from here; the retraining flow calls this
    (the nightly flow does it after a retraining it triggered has finished).
    """
    ledger = read_ledger(path)
    ledger["last_training"] = {"at": _now(), "memory_version": memory_version}
    write_json(path, ledger)


def new_edits_since_training(ledger: dict[str, Any]) -> int:
    """Edits added by batches ingested after the last :func:`mark_trained` (all of them if never)."""
    last = (ledger.get("last_training") or {}).get("at")
    return sum(int(e.get("added", 0)) for e in ledger["batches"].values() if last is None or e["ingested_at"] > last)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


# ---------------------------------------------------------------- validation and the memory


def validate_batch(
    batch: Batch,
    cfg: IngestConfig,
    existing_ids: Iterable[str] = frozenset(),
    *,
    validation: ValidationConfig = ValidationConfig(),
) -> "ValidationReport":
    """Validate one batch and write its outputs to :meth:`Batch.out_dir`.

    ``existing_ids`` are the edits already in the memory (rows repeating one are
    quarantined as ``...in_set(in_memory)``). ``training=False``: an inbox edit needs no
    in-scope example. Raises :class:`~serac.data.errors.DataFileError` for a file that
    cannot be read as a batch at all.
    """
    from serac.data.errors import DataFileError
    from serac.data.validation import validate_file

    if batch.refused:
        raise DataFileError(batch.source, batch.refused)
    return validate_file(batch.path, batch.out_dir(cfg), validation, existing_ids=existing_ids, training=False)


def memory_state(memory: MemoryConfig) -> tuple[int, frozenset[str]]:
    """(version, live edit ids) of the memory at ``memory.root``, from one open (no models needed)."""
    from serac.memory import EditMemory

    mem = EditMemory.open(memory.root, memory)
    return mem.version, frozenset(mem.ids())


def load_editor(
    editor_dir: str | Path,
    memory: MemoryConfig,
    base: BaseModelConfig | None = None,
    *,
    validation: ValidationConfig = ValidationConfig(),
    guard: GuardConfig = GuardConfig(),
) -> "SeracEditor":
    """The packaged editor at ``editor_dir``, working on the live memory at ``memory.root``.

    ``base`` is the operator's params.yaml section: a ``callable``/``http`` base comes only from there.
    """
    from serac.editor import SeracEditor
    from serac.models.base import operator_base_model

    chosen = operator_base_model(base) if base is not None else None
    return SeracEditor.load(
        editor_dir, memory_root=memory.root, memory_config=memory, base=chosen, validation=validation, guard=guard
    )


def screen_batch(editor: "SeracEditor", batch: Batch, report: "ValidationReport", cfg: IngestConfig) -> "ValidationReport":
    """Quarantine the passed rows the editor refuses (the blast-radius guard), rewriting the batch's outputs.

    The row rules already passed in the suite; the guard reason gives the capture rate and
    up to ``guard.examples`` captured canaries. Unchanged ``report`` when nothing is refused.
    """
    from serac.data import quarantine as q
    from serac.data.validation import requarantine

    refused = {r.position: r.reasons for r in editor.screen(report.passed)}
    if not refused:
        return report
    screened = requarantine(report, refused)
    out = batch.out_dir(cfg)
    previous = read_json_or_empty(out / "summary.json")
    q.write_outputs(out, screened, path=str(batch.path), format=str(previous.get("format", "")), training=False)
    log.warning("%s: %d edit(s) quarantined by the blast-radius guard", batch.name, len(refused))
    return screened


def read_json_or_empty(path: Path) -> dict[str, Any]:
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def add_to_memory(
    editor: "SeracEditor", records: Sequence[EditRecord], audit: "AuditContext | None" = None
) -> "AddResult":
    """Add ``records`` to the editor's memory: one new memory version, or none when nothing is new.

    The memory commits by atomically replacing its ``CURRENT`` pointer, and an edit already
    live is skipped (ids are content hashes), so repeating this call is harmless. The change
    goes into the memory's audit trail as made by ``audit`` (:func:`audit_context`).
    """
    return editor.edit(records, audit=audit)


def flow_actor(flow_run_id: str | None) -> str:
    """The audit trail's name for a Prefect flow run."""
    return f"prefect-flow-run:{flow_run_id or 'unknown'}"


def audit_context(flow_run_id: str | None, batch: Batch, reason: str | None = None) -> "AuditContext":
    """Who (the Prefect flow run), why (the flow's ``reason`` parameter) and from where (the batch file)."""
    from serac.memory.audit import AuditContext

    return AuditContext(actor=flow_actor(flow_run_id), reason=reason, source=f"ingest {batch.source or batch.path}")


def run_audit(memory_root: str | Path, flow_run_id: str | None) -> tuple[str, list["AuditRecord"]]:
    """(the memory's audit trail, the records flow run ``flow_run_id`` appended to it)."""
    from serac.memory import audit

    actor = flow_actor(flow_run_id)
    return str(audit.audit_path(memory_root)), [r for r in audit.read_records(memory_root) if r.actor == actor]


def verify_batch(
    memory: MemoryConfig, ledger_path: str | Path, batch: Batch, records: Sequence[EditRecord], result: "AddResult"
) -> None:
    """Re-read memory and ledger from disk: every passed edit live, the ledger entry present and matching.

    Raises :class:`IngestVerificationError` naming what is missing.
    """
    from serac.memory import EditMemory

    mem = EditMemory.open(memory.root, memory)
    missing = [r.edit_id for r in records if not mem.contains(r.edit_id)]
    if missing:
        raise IngestVerificationError(
            f"{memory.root}: {len(missing)} edit(s) of {batch.name} not live in version {mem.version}: {missing[:3]}"
        )
    if mem.version < result.version:
        raise IngestVerificationError(f"{memory.root}: at version {mem.version}, older than {result.version}")
    entry = read_ledger(ledger_path)["batches"].get(batch.sha256)
    if entry is None or entry.get("memory_version") != result.version:
        raise IngestVerificationError(f"{ledger_path}: no entry for {batch.name} at memory version {result.version}")


def scope_recall(editor: "SeracEditor", records: Sequence[EditRecord]) -> float | None:
    """Fraction of the edits' inputs and in-scope queries the scope classifier routes to that very edit.

    A query counts when :meth:`SeracEditor.classify` puts it in scope *and* picks its own
    edit. None when there is nothing to ask (no records).
    """
    queries: list[str] = []
    targets: list[str] = []
    for record in records:
        for query in (record.edit_input, *(e.input for e in record.in_scope)):
            queries.append(query)
            targets.append(record.edit_id)
    if not queries:
        return None
    decisions = editor.classify(queries)
    hits = sum(d.in_scope and d.edit_id == target for d, target in zip(decisions, targets))
    return hits / len(queries)


def should_retrain(cfg: IngestConfig, new_edits_since_last_training: int, recall: float | None) -> tuple[bool, str]:
    """Whether the editor should be retrained, and why (or why not).

    Low scope recall on the new edits is the urgent signal (the classifier misses edits it
    holds); otherwise retrain once enough new edits have accumulated.
    """
    if recall is not None and recall < cfg.retrain_min_recall:
        return True, f"scope recall {recall:.3f} on the new edits is below {cfg.retrain_min_recall:.3f}"
    if new_edits_since_last_training >= cfg.retrain_min_new_edits:
        return True, (f"{new_edits_since_last_training} edits added since the last training "
                      f"(threshold {cfg.retrain_min_new_edits})")
    recall_note = "no new edits to measure scope recall on" if recall is None else (
        f"scope recall {recall:.3f} >= {cfg.retrain_min_recall:.3f}")
    return False, (f"{new_edits_since_last_training} edits added since the last training "
                   f"(< {cfg.retrain_min_new_edits}); {recall_note}")


def track_memory(memory_root: str | Path) -> str | None:
    """``dvc add <memory_root>`` in the DVC repository that contains it; the md5 in the new ``.dvc`` file.

    That md5 is the memory's DVC version. None when ``memory_root`` is in no DVC repository
    or does not exist yet (an empty memory). Raises :class:`~serac.pipeline.dvc.DvcError`.
    """
    root = Path(memory_root)
    if not root.is_dir():
        return None
    added = dvc.add(root)
    return None if added is None else added[1]


def tracked_memory_md5(memory_root: str | Path) -> str | None:
    """The md5 of the memory's existing ``.dvc`` file, if there is one (no DVC call)."""
    dvc_file = dvc.dvc_file_for(Path(memory_root).resolve())
    return dvc.read_dvc_md5(dvc_file) if dvc_file.is_file() else None


__all__ = [
    "FAILED", "INGESTED", "REFUSED", "Batch", "BatchRow", "IngestReport", "IngestVerificationError", "LedgerError",
    "add_to_memory", "audit_context", "discover_batches", "empty_ledger", "flow_actor", "ledger_entry", "load_editor",
    "mark_trained", "memory_state", "new_edits_since_training", "read_ledger", "record_batch", "restore_entry",
    "run_audit", "scope_recall", "screen_batch", "sha256_file", "should_retrain", "split_pending", "track_memory",
    "tracked_memory_md5", "validate_batch", "verify_batch",
]
