"""One set of row rules for every door an edit comes in by (issue 17, item 5).

The same adversarial rows go through batch ingest (the GX suite), ``serac edit add FILE``
(the GX suite), ``serac edit add --input/--label`` (the per-row check), ``POST /edits``
and ``SeracEditor.edit`` (the per-row check); each must accept or refuse every row with
the same reasons. Before the fix the API and the Python API stored all of them, and the
batch suite let the long ground truth / subject / example label, the blank example input
and the zero-width and bidi characters through.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from ingest_fakes import build_editor
from typer.testing import CliRunner

from serac.cli.main import app
from serac.config import IngestConfig, ServeConfig, ValidationConfig
from serac.data.rules import EditRefused
from serac.data.schema import EditRecord, Example
from serac.pipeline import ingest
from serac.serve import EditService, create_app

SET, LEN, BETWEEN = ("expect_column_values_to_be_in_set", "expect_column_value_lengths_to_be_between",
                     "expect_column_values_to_be_between")


def q(question: str, label: str, **extra) -> dict:
    return {"task": "qa", "edit_input": question, "edit_label": label, **extra}


ROWS: dict[str, tuple[dict, tuple[str, ...]]] = {
    "good: plain qa": (q("Which river runs through Tollmere?", "the Wendle"), ()),
    "good: with examples": (q("Who painted The Amber Quay?", "Ines Marwood",
                              in_scope=[{"input": "The Amber Quay was painted by whom?", "label": "Ines Marwood"}],
                              ground_truth="Pol Ostrander", subject="The Amber Quay"), ()),
    "good: fc true": ({"task": "fc", "edit_input": "Tollmere lies on the Wendle.", "edit_label": "TRUE"}, ()),
    "good: implicit RLM mark": (q("Who founded the Qasr\u200f library?", "Idris Fal"), ()),
    "label == input (Paris -> paris)": (q("Paris", "paris"), (f"{SET}(label_equals_input)",)),
    "BEL in input": (q("Who founded\x07 Acme?", "Ada Brook"), (f"{SET}(has_control_chars)",)),
    "ESC sequence in label": (q("Who founded Acme?", "\x1b[31mAda Brook\x1b[0m"), (f"{SET}(has_control_chars)",)),
    "C1 (U+009B) in input": (q("Who founded\x9b Acme?", "Ada Brook"), (f"{SET}(has_control_chars)",)),
    "fc label 'maybe'": ({"task": "fc", "edit_input": "The Wendle is 40 km long.", "edit_label": "maybe"},
                         (f"{SET}(edit_label_norm)",)),
    "convsent label 'meh'": ({"task": "convsent", "edit_input": "What do you think of Tollmere?", "edit_label": "meh"},
                             (f"{SET}(edit_label)",)),
    "400-token input": (q(" ".join(["cat"] * 400), "dog"), (f"{BETWEEN}(token_len)",)),
    "50,000-char ground_truth": (q("Who founded Acme?", "Ada Brook 1", ground_truth="g" * 50_000),
                                 (f"{LEN}(ground_truth)",)),
    "2,001-char subject": (q("Who founded Acme?", "Ada Brook 2", subject="s" * 2001), (f"{LEN}(subject)",)),
    "2,001-char in_scope label": (q("Who founded Acme?", "Ada Brook 3",
                                    in_scope=[{"input": "Acme was founded by?", "label": "l" * 2001}]),
                                  (f"{BETWEEN}(example_label_max_chars)",)),
    "whitespace-only in_scope input": (q("Who founded Acme?", "Ada Brook 4", in_scope=[{"input": "   ", "label": "Ada Brook 4"}]),
                                       (f"{SET}(blank_example_input)",)),
    "zero-width U+200B in input": (q("Who found\u200bed Acme?", "Ada Brook 5"), (f"{SET}(has_zero_width)",)),
    "bidi override U+202E in label": (q("Who founded Acme?", "\u202ekoorB adA"), (f"{SET}(has_bidi_controls)",)),
}
"""name -> (the edit as the API takes it, the reasons every entry point refuses it with; () = accepted)."""

CLI_INPUT_FORM = {name for name, (row, _) in ROWS.items()
                  if set(row) <= {"task", "edit_input", "edit_label", "in_scope"}
                  and all(e.get("label") == row["edit_label"] for e in row.get("in_scope", []))}
"""Rows ``--input/--label/--rephrase`` can express (no subject, ground truth or other example label)."""

CFG = ValidationConfig(max_failure_rate=1.0)  # per-row decisions: the batch as a whole is never refused


def record(row: dict, source: str = "") -> EditRecord:
    return EditRecord(row["task"], row["edit_input"], row["edit_label"],
                      in_scope=[Example(e["input"], e.get("label")) for e in row.get("in_scope", [])],
                      subject=row.get("subject"), ground_truth=row.get("ground_truth"), source=source)


@pytest.fixture(scope="module")
def batch_file(tmp_path_factory) -> Path:
    inbox = tmp_path_factory.mktemp("parity") / "inbox"
    inbox.mkdir()
    path = inbox / "adversarial.jsonl"
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row, _ in ROWS.values()), encoding="utf-8")
    return path


def by_row(reasons_per_row: dict[int, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """{row name: reasons} from {1-based row number: reasons} (rows not named were accepted)."""
    return {name: tuple(reasons_per_row.get(i, ())) for i, name in enumerate(ROWS, start=1)}


def decisions_batch_ingest(tmp_path: Path, scope, batch_file: Path) -> dict[str, tuple[str, ...]]:
    cfg = IngestConfig(inbox=str(batch_file.parent), validated_root=str(tmp_path / "validated"),
                       ledger=str(tmp_path / "ledger.json"))
    (batch,) = ingest.discover_batches(cfg)
    report = ingest.validate_batch(batch, cfg, validation=CFG)
    report = ingest.screen_batch(build_editor(scope, tmp_path / "memory"), batch, report, cfg)
    ingest.add_to_memory(build_editor(scope, tmp_path / "memory"), report.passed)
    return by_row({row.row: row.reasons for row in report.quarantined})


def write_params(tmp_path: Path) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({
        "validation": {"max_failure_rate": 1.0},
        "memory": {"root": str(tmp_path / "m")},
        "base": {"kind": "callable", "callable": "ingest_fakes:base_answers"},  # the operator's choice
    }))
    return params


def decisions_cli_file(tmp_path: Path, editor_dir: Path, batch_file: Path) -> dict[str, tuple[str, ...]]:
    params = write_params(tmp_path)
    result = CliRunner().invoke(app, ["edit", "add", str(batch_file), "--params", str(params), "--editor",
                                      str(editor_dir), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    printed = dict(re.findall(r"^quarantined \S+#(\d+): (.*)$", result.output, flags=re.M))
    assert f"added {sum(not r for _, r in ROWS.values())} edit(s)" in result.output
    return by_row({int(row): tuple(reasons.split(", ")) for row, reasons in printed.items()})


def decisions_cli_input(tmp_path: Path, editor_dir: Path) -> dict[str, tuple[str, ...]]:
    params, runner, out = write_params(tmp_path), CliRunner(), {}
    for name in CLI_INPUT_FORM:
        row = ROWS[name][0]
        args = ["edit", "add", "--input", row["edit_input"], "--label", row["edit_label"], "--task", row["task"],
                "--params", str(params), "--editor", str(editor_dir)]
        for example in row.get("in_scope", []):
            args += ["--rephrase", example["input"]]
        result = runner.invoke(app, args)
        refused = re.search(r"^refused cli \(\w+\): (.*)$", result.output, flags=re.M)
        assert result.exit_code == (1 if refused else 0), result.output
        out[name] = tuple(refused.group(1).split(", ")) if refused else ()
    return out


def decisions_api(tmp_path: Path, scope) -> dict[str, tuple[str, ...]]:
    out = {}
    with TestClient(create_app(EditService(build_editor(scope, tmp_path / "api"), ServeConfig()), None)) as client:
        for name, (row, _) in ROWS.items():
            response = client.post("/edits", json={"edits": [row]})
            assert response.status_code in (200, 422), response.text
            detail = response.json().get("detail", "") if response.status_code == 422 else ""
            match = re.fullmatch(r"edits\[0\] \(\w+\): (.*)", detail)
            assert response.status_code == 200 or match, detail
            out[name] = tuple(match.group(1).split(", ")) if match else ()
    return out


def decisions_python(tmp_path: Path, scope) -> dict[str, tuple[str, ...]]:
    editor, out = build_editor(scope, tmp_path / "python"), {}
    for name, (row, _) in ROWS.items():
        try:
            result = editor.edit([record(row)])
        except EditRefused as exc:
            assert len(exc.refusals) == 1 and exc.refusals[0].position == 0
            out[name] = exc.refusals[0].reasons
            continue
        assert result.added == [record(row).edit_id]
        out[name] = ()
    return out


def test_every_entry_point_accepts_and_refuses_the_same_rows_for_the_same_reasons(
    tmp_path, scope, editor_dir, batch_file
):
    expected = {name: reasons for name, (_, reasons) in ROWS.items()}
    got = {
        "batch ingest": decisions_batch_ingest(tmp_path / "ingest", scope, batch_file),
        "serac edit add FILE": decisions_cli_file(tmp_path / "cli-file", editor_dir, batch_file),
        "POST /edits": decisions_api(tmp_path, scope),
        "SeracEditor.edit": decisions_python(tmp_path, scope),
    }
    for entry_point, decisions in got.items():
        assert decisions == expected, entry_point
    cli_input = decisions_cli_input(tmp_path / "cli-input", editor_dir)
    assert cli_input == {name: expected[name] for name in CLI_INPUT_FORM}
    assert len(CLI_INPUT_FORM) >= 10


def test_a_refused_edit_in_a_call_stores_nothing_of_that_call(tmp_path, scope):
    editor = build_editor(scope, tmp_path / "memory")
    good, bad = record(ROWS["good: plain qa"][0]), record(ROWS["bidi override U+202E in label"][0])
    with pytest.raises(EditRefused) as refused:
        editor.edit([good, bad])
    assert [(r.position, r.edit_id) for r in refused.value.refusals] == [(1, bad.edit_id)]
    assert len(editor.memory) == 0 and editor.memory.version == 0
