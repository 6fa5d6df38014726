"""``serac prepare``: raw dataset files -> de-duplicated, split Parquet files of edits.

Every sub-directory of ``raw_root`` is a dataset; each of its data files
(``.json``, ``.jsonl``, ``.csv``, ``.parquet``; anything else such as a README
is skipped and listed) is loaded with its detected format. The records of all
files of a dataset are pooled in file-name then row order, de-duplicated by
``edit_id`` (the first occurrence wins; the others are counted) and assigned to
a split by :func:`split_of`. Output, per dataset, replaced as a whole::

    <prepared_dir>/<dataset>/<split>.parquet   one per configured split (possibly empty)
    <prepared_dir>/<dataset>/rejected.parquet  rows that could not be converted, with reasons

plus ``<prepared_dir>/prepare_report.json`` with the counts.

Reruns are byte-identical for identical input: ``source`` is the path relative
to ``raw_root`` and every record gets the constant :data:`PREPARED_INGESTED_AT`
rather than the clock or the file's mtime (a fresh checkout changes mtimes, and
would change every output and invalidate every downstream DVC stage). The
prepared corpus is static reference data; ``ingested_at`` matters for edits
added to the live memory, which stamp their own time.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from serac.config import DataConfig
from serac.data.errors import DataFileError, LoadResult, RejectedRow
from serac.data.loaders import load_file
from serac.data.schema import EditRecord, records_to_table, table_to_records
from serac.io import atomic_dir, write_json, write_parquet

PREPARED_INGESTED_AT = datetime(1970, 1, 1, tzinfo=UTC)
"""``ingested_at`` of every prepared record (a constant, for byte-identical reruns)."""

DATA_SUFFIXES = frozenset({".json", ".jsonl", ".csv", ".parquet"})
"""Files with these suffixes are data; all others under ``raw_root`` are skipped."""

REJECTED_FILE = "rejected.parquet"
REPORT_FILE = "prepare_report.json"

REJECTED_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("row", pa.int64(), nullable=False),
        pa.field("reasons", pa.list_(pa.string()), nullable=False),
        pa.field("raw", pa.string()),
    ],
    metadata={"serac.schema": "rejected-row/1"},
)
"""Arrow layout of :class:`RejectedRow`."""


def split_of(edit_id: str, fractions: dict[str, float], salt: str) -> str:
    """The split of an edit: sha256(salt + edit_id) read as a number in [0, 1).

    Splits are laid out on [0, 1) in sorted name order (so the order of the keys
    in params.yaml does not matter), each as wide as its fraction. The same id,
    fractions and salt always give the same split; a zero fraction is never chosen.
    """
    digest = hashlib.sha256((salt + edit_id).encode("utf-8")).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64
    names = sorted(fractions)
    upper = 0.0
    for name in names:
        upper += fractions[name]
        if point < upper:
            return name
    return next(name for name in reversed(names) if fractions[name] > 0)  # rounding: sum slightly below 1


@dataclass
class DatasetReport:
    """Counts for one dataset."""

    name: str
    files: dict[str, str] = field(default_factory=dict)
    """Data file (relative to raw_root) -> detected format."""
    rows_in: int = 0
    records: int = 0
    """Unique records written to the splits."""
    duplicates: int = 0
    """Records dropped because an earlier one had the same edit_id."""
    rejected: int = 0
    splits: dict[str, int] = field(default_factory=dict)


@dataclass
class PrepareReport:
    raw_root: str
    prepared_dir: str
    datasets: list[DatasetReport] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Paths under raw_root that are not data files (e.g. README.md)."""

    def to_dict(self) -> dict:
        return asdict(self)


def prepare(cfg: DataConfig) -> PrepareReport:
    """Convert every dataset under ``cfg.raw_root`` into ``cfg.prepared_dir`` (see module doc).

    All files are read before anything is written, so an unreadable file
    (:class:`DataFileError`) leaves the previous output untouched.
    """
    root, out = Path(cfg.raw_root), Path(cfg.prepared_dir)
    if not root.is_dir():
        raise DataFileError(str(root), "raw data directory not found")
    report = PrepareReport(raw_root=cfg.raw_root, prepared_dir=cfg.prepared_dir)
    loaded: list[tuple[DatasetReport, list[LoadResult]]] = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            report.skipped.append(entry.relative_to(root).as_posix())
            continue
        files = []
        for path in sorted(entry.iterdir()):
            if path.is_file() and path.suffix.lower() in DATA_SUFFIXES and not path.name.startswith("."):
                files.append(path)
            elif not path.name.startswith("."):
                report.skipped.append(path.relative_to(root).as_posix())
        if not files:
            continue
        dataset, results = DatasetReport(entry.name), []
        for path in files:
            name = path.relative_to(root).as_posix()
            results.append(load_file(path, source_name=name, ingested_at=PREPARED_INGESTED_AT))
            dataset.files[name] = results[-1].format
        loaded.append((dataset, results))
    for dataset, results in loaded:
        _write_dataset(out / dataset.name, dataset, results, cfg)
        report.datasets.append(dataset)
    write_json(out / REPORT_FILE, report.to_dict())
    return report


def _write_dataset(target: Path, dataset: DatasetReport, results: list[LoadResult], cfg: DataConfig) -> None:
    """Pool, de-duplicate and split one dataset; replace its output directory as a whole."""
    unique: dict[str, EditRecord] = {}
    rejected: list[RejectedRow] = []
    for result in results:
        dataset.rows_in += result.rows_in
        rejected.extend(result.rejected)
        for record in result.records:
            if record.edit_id in unique:
                dataset.duplicates += 1
            else:
                unique[record.edit_id] = record
    by_split: dict[str, list[EditRecord]] = {name: [] for name in cfg.splits}
    for record in unique.values():
        by_split[split_of(record.edit_id, cfg.splits, cfg.split_salt)].append(record)
    dataset.records = len(unique)
    dataset.rejected = len(rejected)
    dataset.splits = {name: len(records) for name, records in by_split.items()}
    with atomic_dir(target) as tmp:
        for name, records in by_split.items():
            write_parquet(tmp / f"{name}.parquet", records_to_table(records))
        write_parquet(tmp / REJECTED_FILE, rejected_to_table(rejected))


def rejected_to_table(rows: list[RejectedRow]) -> pa.Table:
    return pa.Table.from_pylist(
        [{"source": r.source, "row": r.row, "reasons": list(r.reasons), "raw": r.raw} for r in rows],
        schema=REJECTED_SCHEMA,
    )


def split_path(root: str | Path, dataset: str, split: str) -> Path:
    """Where a split lives: ``<root>/<dataset>/<split>/passed.parquet`` for validated data
    (``serac validate --out <root>/<dataset>/<split>``), else ``<root>/<dataset>/<split>.parquet``
    as ``serac prepare`` writes it."""
    validated = Path(root) / dataset / split / "passed.parquet"
    return validated if validated.is_file() else Path(root) / dataset / f"{split}.parquet"


def read_split(root: str | Path, dataset: str, split: str, limit: int | None = None) -> list[EditRecord]:
    """Records of one split (first ``limit`` rows, in file order)."""
    path = split_path(root, dataset, split)
    if not path.is_file():
        raise DataFileError(
            str(path), f"missing split {split!r} of dataset {dataset!r}: run `serac prepare` (and `dvc repro validate`)"
        )
    table = pq.read_table(path)
    if limit is not None:
        table = table.slice(0, limit)
    return table_to_records(table)
