"""The inbox is read only inside itself: links out of it and anything but regular files are refused
without being opened, with the reason in the ingest report."""

from __future__ import annotations

import builtins
import json
import os
import threading
from pathlib import Path

import pytest
from ingest_fakes import EXTRA_EDITS, make_inbox, write_params

from serac.config import IngestConfig
from serac.pipeline import ingest

OUTSIDE_JSONL = "".join(json.dumps(e) + "\n" for e in EXTRA_EDITS)


def config(tmp_path: Path, inbox: Path, **kw) -> IngestConfig:
    return IngestConfig(inbox=str(inbox), staging_dir=str(tmp_path / "staging"),
                        validated_root=str(tmp_path / "ingested"), ledger=str(tmp_path / "ingested/ledger.json"), **kw)


@pytest.fixture
def opened(monkeypatch) -> list[str]:
    """Every path opened through ``open`` / ``os.open`` while the test runs."""
    paths: list[str] = []
    real_open, real_os_open = builtins.open, os.open

    def spy_open(file, *args, **kwargs):
        if not isinstance(file, int):
            paths.append(os.path.realpath(file))
        return real_open(file, *args, **kwargs)

    def spy_os_open(path, *args, **kwargs):
        paths.append(os.path.realpath(path))
        return real_os_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(os, "open", spy_os_open)
    return paths


def within(seconds: float, fn, *args):
    """``fn(*args)``, failing the test if it has not returned after ``seconds`` (a blocked open of a FIFO)."""
    outcome: list = []

    def run() -> None:
        try:
            outcome.append((True, fn(*args)))
        except BaseException as exc:  # re-raised in the test's thread
            outcome.append((False, exc))

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=seconds)
    assert outcome, f"{fn.__name__} blocked for {seconds} s (opened a FIFO?)"
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


def test_links_out_of_the_inbox_are_refused_unopened(tmp_path, opened):
    inbox = make_inbox(tmp_path, sample=False, extra=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "batch.jsonl").write_text(OUTSIDE_JSONL)
    (elsewhere / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (inbox / "batch-0100.jsonl").symlink_to(elsewhere / "batch.jsonl")
    (inbox / "passwd.jsonl").symlink_to(elsewhere / "passwd")
    (inbox / "sub").symlink_to(elsewhere, target_is_directory=True)
    cfg = config(tmp_path, inbox, patterns=("*.jsonl", "sub/*.jsonl"))

    found = {b.source: b for b in ingest.discover_batches(cfg)}

    assert not [p for p in opened if p.startswith(str(elsewhere.resolve()))]
    refused = {Path(s).name: b.refused for s, b in found.items() if b.refused}
    assert set(refused) == {"batch-0100.jsonl", "passwd.jsonl", "batch.jsonl"}  # the last one via sub/
    assert all("outside the inbox" in reason for reason in refused.values())
    pending, done = ingest.split_pending(list(found.values()), ingest.read_ledger(cfg.ledger))
    assert [b.name for b in pending] == ["batch-0002.jsonl"] and done == []
    with pytest.raises(ValueError, match="outside the inbox"):
        ingest.validate_batch(found[str(inbox / "passwd.jsonl")], cfg)


def test_a_link_that_stays_inside_the_inbox_is_read(tmp_path):
    inbox = make_inbox(tmp_path, sample=False, extra=True)
    (inbox / "batch-0003.jsonl").symlink_to("batch-0002.jsonl")
    batches = ingest.discover_batches(config(tmp_path, inbox))
    assert [b.name for b in batches] == ["batch-0002.jsonl", "batch-0003.jsonl"]
    assert batches[0].sha256 == batches[1].sha256 and not batches[1].refused


def test_fifos_devices_and_directories_are_refused_without_blocking(tmp_path, opened):
    inbox = make_inbox(tmp_path, sample=False, extra=True)
    os.mkfifo(inbox / "pipe.jsonl")  # opening this for reading would wait for a writer forever
    (inbox / "dir.jsonl").mkdir()
    (inbox / "null.jsonl").symlink_to("/dev/null")  # a device, and outside the inbox
    refused = {b.name: b.refused for b in within(20, ingest.discover_batches, config(tmp_path, inbox)) if b.refused}
    assert set(refused) == {"pipe.jsonl", "dir.jsonl", "null.jsonl"}
    assert "FIFO" in refused["pipe.jsonl"] and "directory" in refused["dir.jsonl"]
    assert str(inbox / "pipe.jsonl") not in opened and "/dev/null" not in opened


def test_hashing_refuses_a_non_regular_file_it_is_handed(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(OSError, match="not a regular file"):
        within(20, ingest.sha256_file, tmp_path / "pipe")
    (tmp_path / "real").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(OSError):
        ingest.sha256_file(tmp_path / "link")


@pytest.mark.usefixtures("prefect_harness")
def test_the_nightly_report_lists_refused_entries(tmp_path, editor_dir):
    import flows.nightly_ingest as nightly

    inbox = make_inbox(tmp_path, sample=False, extra=True)
    (tmp_path / "elsewhere.jsonl").write_text(OUTSIDE_JSONL)
    (inbox / "batch-0100.jsonl").symlink_to(tmp_path / "elsewhere.jsonl")
    os.mkfifo(inbox / "pipe.jsonl")
    params = write_params(tmp_path, inbox)
    report = nightly.nightly_ingest(params_path=str(params), editor_dir=str(editor_dir), trigger_retrain=False)
    rows = {Path(r.file).name: r for r in report.batches}
    assert rows["batch-0002.jsonl"].status == "ingested" and rows["batch-0002.jsonl"].added == 2
    assert rows["batch-0100.jsonl"].status == "refused" and "outside the inbox" in rows["batch-0100.jsonl"].message
    assert rows["pipe.jsonl"].status == "refused" and "FIFO" in rows["pipe.jsonl"].message
    assert "outside the inbox" in report.to_markdown()
