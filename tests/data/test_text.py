"""Escaping edit text for a terminal (serac.data.text) and `serac memory ls` printing it escaped."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from serac.cli.main import app
from serac.config import MemoryConfig
from serac.data.schema import EditRecord
from serac.data.text import BIDI_CONTROLS, CONTROL_CHARS, ZERO_WIDTH, escape_for_terminal
from serac.memory import EditMemory


@pytest.mark.parametrize(("text", "shown"), [
    ("plain text, ünïcödé, 東京, مرحبا", "plain text, ünïcödé, 東京, مرحبا"),
    ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
    ("bell\x07 and C1\x9b", "bell\\x07 and C1\\x9b"),
    ("tab\tnew\nline\r", "tab\\tnew\\nline\\r"),
    ("\u202eevil\u2066x\u2069", "\\u202eevil\\u2066x\\u2069"),
    ("zero\u200bwidth\ufeff", "zero\\u200bwidth\\ufeff"),
    ("lone \ud800 surrogate", "lone \\ud800 surrogate"),
    ("rtl mark \u200f stays", "rtl mark \u200f stays"),
])
def test_escape_for_terminal(text, shown):
    assert escape_for_terminal(text) == shown


def test_character_classes_cover_what_the_rules_refuse():
    assert all(CONTROL_CHARS.search(c) for c in "\x00\x07\x1b\x7f\x85\x9f\ufffd")
    assert not any(CONTROL_CHARS.search(c) for c in "\t\n\r a")
    assert all(BIDI_CONTROLS.search(chr(c)) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)])
    assert all(ZERO_WIDTH.search(c) for c in "\u200b\u200c\u200d\u2060\ufeff")
    assert not BIDI_CONTROLS.search("\u200e\u200f") and not ZERO_WIDTH.search("\u200e")


def test_memory_ls_prints_control_and_bidi_characters_escaped(tmp_path):
    root = tmp_path / "memory"
    memory = EditMemory.open(root, MemoryConfig(root=str(root)))
    # written straight to the memory, as an edit stored before the row rules refused it would be
    record = EditRecord("qa", "Who \x1b[2J\x1b[31mfounded Acme?", "\u202ekoorB adA [bold]x[/bold]")
    vector = np.ones((1, 8), np.float32) / np.sqrt(8)
    memory.add([record], vector, "test-encoder")
    result = CliRunner().invoke(app, ["memory", "ls", "--memory", str(root)], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\u202e" not in result.output
    assert "\\x1b[2J\\x1b[31mfounded Acme?" in result.output
    assert "\\u202ekoorB adA [bold]x[/bold]" in result.output  # rich markup shown, not applied
