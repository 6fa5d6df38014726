"""dvc.yaml cannot go stale: every serac module a stage's command can run is covered by that stage's deps.

Each stage's ``cmd`` is ``serac <command> ...``; the module defining ``<command>`` is found
through the CLI app itself, then every ``serac`` module it imports (at the top or inside a
function, with the packages whose ``__init__`` runs on the way) is collected transitively
with ``ast``. A dep covers a file when it is that file or a folder above it.
"""

from __future__ import annotations

import ast
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def module_file(name: str) -> Path | None:
    """The source file of module ``name`` in this repository (a package's ``__init__.py``), if any."""
    base = REPO.joinpath(*name.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def imported_names(path: Path, module: str) -> Iterator[str]:
    """Every name ``path`` imports, anywhere in it; ``from a import b`` gives ``a`` and ``a.b``."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            yield source
            yield from (f"{source}.{alias.name}" for alias in node.names)


def serac_closure(start: str) -> set[str]:
    """Repository-relative files of ``start`` and every serac module reachable from it by imports."""
    seen: set[str] = set()
    files: set[str] = set()
    todo = [start]
    while todo:
        parts = todo.pop().split(".")
        if parts[0] != "serac":
            continue
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__, a/b/__init__ first
            name = ".".join(parts[:i])
            path = module_file(name)
            if path is None or name in seen:
                continue
            seen.add(name)
            files.add(path.relative_to(REPO).as_posix())
            todo.extend(imported_names(path, name))
    return files


def command_module(cmd: str) -> str:
    """The module defining the ``serac`` subcommand a stage's ``cmd`` runs."""
    import typer

    from serac.cli.main import app

    words = shlex.split(cmd)
    assert words[0] == "serac", f"stage cmd {cmd!r} is not a serac command"
    return typer.main.get_command(app).commands[words[1]].callback.__module__


def stages() -> dict[str, dict]:
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    return {name: stage.get("do", stage) for name, stage in spec.items()}


def covered(path: str, deps: list[str]) -> bool:
    return any(path == dep or path.startswith(dep.rstrip("/") + "/") for dep in deps)


@pytest.mark.parametrize("name", sorted(stages()))
def test_every_module_a_stage_runs_is_one_of_its_deps(name):
    stage = stages()[name]
    deps = [d for d in stage.get("deps", []) if isinstance(d, str) and d.startswith("serac")]
    runs = serac_closure(command_module(stage["cmd"]))
    missing = sorted(path for path in runs if not covered(path, deps))
    assert not missing, f"dvc.yaml stage {name!r} runs these modules but does not list them (or a folder above): {missing}"
    absent = [dep for dep in deps if not (REPO / dep).exists()]
    assert not absent, f"dvc.yaml stage {name!r} lists deps that do not exist (dvc refuses them): {absent}"


def test_the_import_walk_sees_function_level_and_relative_imports():
    """The walk is what the coverage test relies on: it must not miss an import inside a function."""
    runs = serac_closure("serac.cli.train_cmd")
    assert {"serac/cli/train_cmd.py", "serac/config/__init__.py", "serac/config/loader.py", "serac/models/hub.py"} <= runs
    assert "serac/pipeline/retrain.py" in runs  # imported inside a function of train_cmd
    assert not any(path.startswith("serac/serve/") for path in runs)


def test_validate_and_train_stages_cover_every_dataset_of_the_training_mixture():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    validate = stages["validate"]
    assert validate["foreach"] == "${training.mixture}"  # one validate@<dataset> per dataset of the mixture
    assert all(f"${{key}}/{split}" in validate["do"]["cmd"] for split in ("train", "val", "test"))
    for stage in ("train_base", "train_scope", "train_counterfactual", "evaluate"):
        assert "${training.data_dir}" in stages[stage]["deps"], stage
