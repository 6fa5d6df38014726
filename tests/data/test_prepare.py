"""split_of and prepare: deterministic splits, pooled de-duplication, rejected rows, byte-identical reruns."""

import json
import shutil
from collections import Counter
from pathlib import Path

import click.testing
import pyarrow.parquet as pq
import pytest
import typer

from serac.config import DataConfig
from serac.data.errors import DataFileError
from serac.data.prepare import PREPARED_INGESTED_AT, prepare, split_of
from serac.data.schema import EDIT_SCHEMA, table_to_records

FIXTURES = Path(__file__).parents[1] / "fixtures" / "formats"
FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}


def test_split_of_is_deterministic_and_close_to_the_fractions():
    ids = [f"edit-{i:05d}" for i in range(2000)]
    splits = [split_of(i, FRACTIONS, "salt-a") for i in ids]
    assert splits == [split_of(i, FRACTIONS, "salt-a") for i in ids]
    counts = Counter(splits)
    assert set(counts) == set(FRACTIONS)
    for name, fraction in FRACTIONS.items():
        assert abs(counts[name] / len(ids) - fraction) < 0.03, counts


def test_split_of_depends_on_salt_not_on_key_order():
    ids = [f"edit-{i}" for i in range(500)]
    reordered = {"test": 0.1, "val": 0.1, "train": 0.8}
    assert [split_of(i, FRACTIONS, "s") for i in ids] == [split_of(i, reordered, "s") for i in ids]
    changed = sum(split_of(i, FRACTIONS, "s") != split_of(i, FRACTIONS, "other") for i in ids)
    assert changed > 50


def test_split_of_never_picks_an_empty_split():
    ids = [f"x{i}" for i in range(1000)]
    assert {split_of(i, {"train": 1.0, "test": 0.0}, "s") for i in ids} == {"train"}


def make_raw(root: Path) -> Path:
    """zsre: two files sharing one edit, one bad row; convsent: one file; a README to skip."""
    (root / "zsre").mkdir(parents=True)
    (root / "convsent").mkdir()
    (root / "empty").mkdir()
    (root / "README.md").write_text("# raw data\n", encoding="utf-8")
    (root / "zsre" / "NOTES.md").write_text("notes\n", encoding="utf-8")
    zsre_lines = (FIXTURES / "zsre_mend.jsonl").read_text(encoding="utf-8").splitlines()
    bad_lines = (FIXTURES / "zsre_mend_bad_rows.jsonl").read_text(encoding="utf-8").splitlines()
    (root / "zsre" / "train.jsonl").write_text("\n".join(zsre_lines) + "\n", encoding="utf-8")
    (root / "zsre" / "val.jsonl").write_text("\n".join([zsre_lines[0], *bad_lines]) + "\n", encoding="utf-8")
    shutil.copy(FIXTURES / "convsent.jsonl", root / "convsent" / "train.jsonl")
    return root


def run_prepare(tmp_path):
    cfg = DataConfig(raw_root=str(tmp_path / "raw"), prepared_dir=str(tmp_path / "out"), splits=FRACTIONS)
    return prepare(cfg), tmp_path / "out"


def test_prepare_writes_splits_rejected_and_report(tmp_path):
    make_raw(tmp_path / "raw")
    report, out = run_prepare(tmp_path)
    names = {d.name: d for d in report.datasets}
    assert set(names) == {"zsre", "convsent"}
    assert sorted(report.skipped) == ["README.md", "zsre/NOTES.md"]

    zsre = names["zsre"]
    assert zsre.files == {"zsre/train.jsonl": "zsre_mend", "zsre/val.jsonl": "zsre_mend"}
    assert zsre.rows_in == 3 + 6
    assert zsre.duplicates == 1  # val.jsonl repeats the first train edit
    assert zsre.rejected == 4
    assert zsre.records == 4
    assert sum(zsre.splits.values()) == 4
    assert names["convsent"].records == 3 and names["convsent"].duplicates == 1

    for split in FRACTIONS:
        table = pq.read_table(out / "zsre" / f"{split}.parquet")
        assert table.schema.names == EDIT_SCHEMA.names  # Parquet keeps timestamp[s] as [ms]: cast back
        assert table.cast(EDIT_SCHEMA).schema.equals(EDIT_SCHEMA)
        assert table.num_rows == zsre.splits[split]
    records = [r for s in FRACTIONS for r in table_to_records(pq.read_table(out / "zsre" / f"{s}.parquet"))]
    assert len({r.edit_id for r in records}) == 4
    assert all(r.ingested_at == PREPARED_INGESTED_AT for r in records)
    assert {r.source for r in records} >= {"zsre/train.jsonl#1", "zsre/val.jsonl#2"}
    for record in records:
        split = split_of(record.edit_id, FRACTIONS, DataConfig().split_salt)
        assert record in table_to_records(pq.read_table(out / "zsre" / f"{split}.parquet"))

    rejected = pq.read_table(out / "zsre" / "rejected.parquet").to_pylist()
    assert [r["source"] for r in rejected] == [f"zsre/val.jsonl#{n}" for n in (3, 4, 5, 6)]
    assert rejected[0]["reasons"] == ["empty_field:alt"] and rejected[-1]["reasons"] == ["invalid_json"]
    assert pq.read_table(out / "convsent" / "rejected.parquet").num_rows == 0
    assert not (out / "empty").exists()

    saved = json.loads((out / "prepare_report.json").read_text(encoding="utf-8"))
    assert saved["datasets"][1]["name"] == "zsre" and saved["datasets"][1]["duplicates"] == 1


def test_prepare_rerun_is_byte_identical(tmp_path):
    make_raw(tmp_path / "raw")
    _, out = run_prepare(tmp_path)
    first = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    # touching the inputs (a fresh checkout) must not change the output either
    for path in (tmp_path / "raw").rglob("*.jsonl"):
        path.touch()
    _, out = run_prepare(tmp_path)
    second = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    assert len(first) == 9 and first == second


def test_prepare_removes_stale_split_files(tmp_path):
    make_raw(tmp_path / "raw")
    _, out = run_prepare(tmp_path)
    assert (out / "zsre" / "test.parquet").exists()
    cfg = DataConfig(raw_root=str(tmp_path / "raw"), prepared_dir=str(out), splits={"train": 0.9, "val": 0.1})
    prepare(cfg)
    assert sorted(p.name for p in (out / "zsre").iterdir()) == ["rejected.parquet", "train.parquet", "val.parquet"]


def test_prepare_unreadable_file_writes_nothing(tmp_path):
    raw = make_raw(tmp_path / "raw")
    (raw / "convsent" / "val.json").write_text('[{"ent": "A", "pos": [], "neg": []}, {"ent": ', encoding="utf-8")
    with pytest.raises(DataFileError, match="val.json"):
        run_prepare(tmp_path)
    assert not (tmp_path / "out").exists()


def test_prepare_missing_root(tmp_path):
    with pytest.raises(DataFileError, match="not found"):
        prepare(DataConfig(raw_root=str(tmp_path / "nope"), prepared_dir=str(tmp_path / "out")))


def test_cli_prepare_prints_counts(tmp_path):
    from serac.cli.main import app

    make_raw(tmp_path / "raw")
    params = tmp_path / "params.yaml"
    params.write_text("data:\n  splits: {train: 0.5, val: 0.5}\n", encoding="utf-8")
    # get_group: call `prepare` as a sub-command however many commands are registered
    runner = click.testing.CliRunner()
    args = ["prepare", "--params", str(params), "--root", str(tmp_path / "raw"), "--out", str(tmp_path / "out")]
    result = runner.invoke(typer.main.get_group(app), args, terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "zsre" in result.output and "convsent" in result.output and "total" in result.output
    assert sorted(p.name for p in (tmp_path / "out" / "zsre").iterdir()) == [
        "rejected.parquet", "train.parquet", "val.parquet"]
    args = ["prepare", "--params", str(params), "--root", str(tmp_path / "x")]
    bad = runner.invoke(typer.main.get_group(app), args)
    assert bad.exit_code == 1 and "not found" in bad.output
