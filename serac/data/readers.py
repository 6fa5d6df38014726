"""Read a data file as numbered rows: ``.json``, ``.jsonl``, ``.csv`` and ``.parquet``.

:func:`read_rows` yields ``(row_number, row)`` pairs with 1-based row numbers:

- ``.jsonl``: the line number (blank lines are skipped but still counted, so the
  number is what an editor shows);
- ``.json``: the position of the record in its array;
- ``.csv``: the record number, header excluded (the file line is ``row + 1``
  unless a field spans lines);
- ``.parquet``: the record number.

A problem with the file as a whole raises :class:`DataFileError` naming the
file, and the line/row and byte offset where known: missing or empty file, no
records, invalid UTF-8, invalid JSON in a ``.json`` file, a record that is not
a JSON object. One unparsable line of a ``.jsonl`` file (a truncated last line
is typical) or one malformed CSV record does *not* abort the file: it is
yielded as an :class:`UnparsableRow` that the loader turns into a rejected row.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from serac.data.errors import DataFileError

_UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class UnparsableRow:
    """A row that could not be parsed; the rest of the file is still read."""

    text: str
    """The row as found in the file (decoded as UTF-8)."""
    reason: str
    """Rejection reason code: ``invalid_json`` or ``invalid_csv``."""
    detail: str = ""
    """The parser's message."""


Row = dict[str, Any] | UnparsableRow


def read_rows(path: str | Path) -> Iterator[tuple[int, Row]]:
    """Yield ``(row_number, row)`` for every record of ``path`` (see module doc)."""
    path = Path(path)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise DataFileError(
            str(path), f"unsupported file type {path.suffix!r}; expected one of {', '.join(sorted(_READERS))}"
        )
    if not path.exists():
        raise DataFileError(str(path), "no such file")
    if not path.is_file():
        raise DataFileError(str(path), "not a regular file")
    if path.stat().st_size == 0:
        raise DataFileError(str(path), "empty file (0 bytes)")
    count = 0
    for item in reader(path):
        count += 1
        yield item
    if count == 0:
        raise DataFileError(str(path), "the file holds no records")


def _decode(path: Path, data: bytes, first_line: int = 1, base_offset: int = 0, row: int | None = None) -> str:
    """Decode UTF-8; name the line and the byte offset in the file on failure.

    ``data`` starts at line ``first_line``, byte ``base_offset`` of the file.
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = base_offset + exc.start
        line = first_line + data.count(b"\n", 0, exc.start)
        bad = data[exc.start : exc.start + 1].hex()
        raise DataFileError(
            str(path),
            f"not valid UTF-8: byte 0x{bad} at line {line}, byte offset {offset} ({exc.reason}); "
            "the file is probably Latin-1/cp1252 encoded, re-save it as UTF-8",
            row=row,
        ) from None


def _read_bytes(path: Path) -> tuple[bytes, int]:
    """The file's bytes without a leading UTF-8 BOM, and the BOM's length (0 or 3)."""
    data = path.read_bytes()
    bom = len(_UTF8_BOM) if data.startswith(_UTF8_BOM) else 0
    return data[bom:], bom


def _read_jsonl(path: Path) -> Iterator[tuple[int, Row]]:
    data, bom = _read_bytes(path)
    offset = 0
    for line_no, raw in enumerate(data.split(b"\n"), start=1):
        start, offset = offset, offset + len(raw) + 1
        if not raw.strip():
            continue
        text = _decode(path, raw, first_line=line_no, base_offset=start + bom, row=line_no)
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            yield line_no, UnparsableRow(text, "invalid_json", f"column {exc.colno}: {exc.msg}")
            continue
        yield line_no, _require_object(path, line_no, value)


def _read_json(path: Path) -> Iterator[tuple[int, Row]]:
    data, bom = _read_bytes(path)
    text = _decode(path, data, base_offset=bom)
    start = _skip_ws(text, 0)
    if start == len(text):
        raise DataFileError(str(path), "empty file (whitespace only)")
    if text[start] == "[":
        yield from _iter_json_array(path, text, start)
        return
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataFileError(str(path), f"invalid JSON at {_where(exc)}: {exc.msg}") from None
    if not isinstance(value, dict):
        raise DataFileError(str(path), f"top level is a JSON {_json_type(value)}; expected an array of objects")
    lists = [key for key, item in value.items() if isinstance(item, list)]
    if len(lists) != 1:
        raise DataFileError(
            str(path),
            "a top-level JSON object must hold its records in exactly one list value; "
            f"found {len(lists)} list values ({', '.join(map(repr, lists)) or 'none'})",
        )
    for row_no, item in enumerate(value[lists[0]], start=1):
        yield row_no, _require_object(path, row_no, item, where=f"in list {lists[0]!r}")


def _iter_json_array(path: Path, text: str, start: int) -> Iterator[tuple[int, Row]]:
    """Decode a top-level array one element at a time, so an error names its record."""
    decoder = json.JSONDecoder()
    pos = _skip_ws(text, start + 1)
    row_no = 0
    if text.startswith("]", pos):
        return
    while True:
        row_no += 1
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise DataFileError(
                str(path), f"invalid JSON in record {row_no} at {_where(exc)}: {exc.msg}", row=row_no
            ) from None
        yield row_no, _require_object(path, row_no, value)
        pos = _skip_ws(text, pos)
        if text.startswith(",", pos):
            pos = _skip_ws(text, pos + 1)
            continue
        if text.startswith("]", pos):
            break
        raise DataFileError(
            str(path),
            f"invalid JSON after record {row_no} at {_where_pos(text, pos)}: expected ',' or ']'"
            + (" (the file is truncated)" if pos >= len(text) else ""),
            row=row_no,
        )
    rest = _skip_ws(text, pos + 1)
    if rest != len(text):
        raise DataFileError(str(path), f"unexpected data after the JSON array at {_where_pos(text, rest)}")


def _read_csv(path: Path) -> Iterator[tuple[int, Row]]:
    data, bom = _read_bytes(path)
    text = _decode(path, data, base_offset=bom)
    reader = csv.DictReader(io.StringIO(text, newline=""), restkey="\x00extra")
    try:
        if not reader.fieldnames:
            raise DataFileError(str(path), "empty CSV file (no header)")
        for row_no, row in enumerate(reader, start=1):
            extra = row.pop("\x00extra", None)
            if extra is not None:
                line = ",".join(str(v) for v in [*row.values(), *extra])
                yield row_no, UnparsableRow(line, "invalid_csv", f"{len(extra)} more field(s) than the header")
                continue
            yield row_no, dict(row)
    except csv.Error as exc:
        raise DataFileError(str(path), f"invalid CSV at line {reader.line_num}: {exc}") from None


def _read_parquet(path: Path) -> Iterator[tuple[int, Row]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        batches = pq.ParquetFile(path).iter_batches(batch_size=1024)
        row_no = 0
        for batch in batches:
            for row in batch.to_pylist():
                row_no += 1
                yield row_no, row
    except (pa.ArrowException, OSError) as exc:
        raise DataFileError(str(path), f"not a readable Parquet file: {exc}") from None


def _require_object(path: Path, row_no: int, value: Any, where: str = "") -> dict[str, Any]:
    if not isinstance(value, dict):
        place = f" {where}" if where else ""
        raise DataFileError(
            str(path), f"record{place} is a JSON {_json_type(value)}, expected an object", row=row_no
        )
    return value


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _where(exc: json.JSONDecodeError) -> str:
    return f"line {exc.lineno}, column {exc.colno} (char {exc.pos})"


def _where_pos(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f"line {line}, column {column} (char {pos})"


def _json_type(value: Any) -> str:
    names = {list: "array", str: "string", bool: "boolean", int: "number", float: "number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


_READERS: dict[str, Callable[[Path], Iterator[tuple[int, Row]]]] = {
    ".json": _read_json,
    ".jsonl": _read_jsonl,
    ".csv": _read_csv,
    ".parquet": _read_parquet,
}
"""File suffix -> reader."""
