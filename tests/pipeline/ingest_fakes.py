"""Helpers of the pipeline tests: a base model function (``ingest_fakes:base_answers``), a tiny editor,
params.yaml files and inbox batches in tmp directories."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
SAMPLE_BATCH = REPO / "data" / "sample" / "inbox" / "batch-0001.jsonl"
SAMPLE_BAD_ROWS = {11, 22, 23, 34}
"""Source rows of the sample batch that an inbox ingest quarantines: empty label, label == input,
a control character, a repeated edit (row 35 has no in-scope example: fine outside training)."""

EXTRA_EDITS = [
    {"task": "qa", "edit_input": "Which river runs through Tollmere?", "edit_label": "the Wendle",
     "in_scope": [{"input": "Tollmere sits on which river?", "label": "the Wendle"}]},
    {"task": "qa", "edit_input": "Who painted The Amber Quay?", "edit_label": "Ines Marwood",
     "in_scope": [{"input": "The Amber Quay was painted by whom?", "label": "Ines Marwood"}]},
]


def base_answers(queries: list[str]) -> list[str]:
    return ["base:" + q for q in queries]


def build_editor(scope: Any, memory_root: str | Path) -> Any:
    from tiny import tiny_counterfactual

    from serac.config import EditorConfig, MemoryConfig
    from serac.editor import SeracEditor
    from serac.memory import EditMemory
    from serac.models.base import CallableBaseModel

    memory = EditMemory.open(memory_root, MemoryConfig(root=str(memory_root)))
    return SeracEditor(scope, tiny_counterfactual(), CallableBaseModel("ingest_fakes:base_answers"), memory,
                       EditorConfig(device="cpu"))


def make_inbox(root: Path, *, sample: bool = True, extra: bool = False, bad: bool = False) -> Path:
    """``inbox/`` with the sample batch, two clean edits (``extra``), and with ``bad``: a batch
    with half its rows bad (refused as a whole) and a file that is not JSON at all."""
    inbox = root / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    if sample:
        shutil.copy(SAMPLE_BATCH, inbox / SAMPLE_BATCH.name)
    if extra:
        (inbox / "batch-0002.jsonl").write_text("".join(json.dumps(e) + "\n" for e in EXTRA_EDITS))
    if bad:
        half_bad = [{**EXTRA_EDITS[0], "edit_label": "the Orrin"}, {**EXTRA_EDITS[1], "edit_label": " "}]
        (inbox / "batch-0003.jsonl").write_text("".join(json.dumps(e) + "\n" for e in half_bad))
        (inbox / "broken.json").write_text("{not json")
    (inbox / "notes.txt").write_text("not a batch\n")
    return inbox


def write_params(root: Path, inbox: str | Path, **ingest: Any) -> Path:
    """A params.yaml whose memory, inbox, outputs and ledger all live under ``root``."""
    params = {
        "base": {"kind": "callable", "callable": "ingest_fakes:base_answers"},  # the operator's choice
        "memory": {"root": str(root / "memory")},
        "editor": {"artifact_dir": str(root / "no-editor-here")},
        "ingest": {
            "inbox": str(inbox),
            "staging_dir": str(root / "staging"),
            "validated_root": str(root / "ingested"),
            "ledger": str(root / "ingested" / "ledger.json"),
            "dvc_track_memory": False,
            "register_memory": False,  # no MLflow store here; the registry side: tests/registry/test_serving.py
            **ingest,
        },
    }
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def init_dvc_repo(root: Path) -> bool:
    """``git init`` + ``dvc init`` in ``root`` (memory git-ignored, as in the project); False when git or dvc is missing."""
    from serac.pipeline import dvc

    if shutil.which("git") is None:
        return False
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / ".gitignore").write_text("/data/memory/\n/memory/\n")
    try:
        dvc.run_dvc(["init", "-q"], cwd=root)
    except dvc.DvcError:
        return False
    return True
