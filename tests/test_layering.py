"""Imports point down the layers of :mod:`serac.layers`: checked on every module of serac/ and flows/.

Every import counts: module level, inside functions, under ``if TYPE_CHECKING:`` and
``importlib.import_module`` with a literal name.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from serac.layers import LAYERS, allowed, layer_of, unit_of

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Violation:
    module: str
    line: int
    imported: str
    why: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.imported}: {self.why}"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_names(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, absolute dotted name) of every import in ``source``, wherever it sits in the file."""
    out: list[tuple[int, str]] = []
    package = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            # ``from serac import config`` imports serac.config, not the root package
            names = [f"{base}.{a.name}" for a in node.names] if base in ("serac", "flows") else [base]
            out += [(node.lineno, name) for name in names]
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and (getattr(node.func, "attr", None) or getattr(node.func, "id", None)) == "import_module"):
            out.append((node.lineno, node.args[0].value))
    return out


def violations(root: Path, packages: tuple[str, ...] = ("serac", "flows")) -> list[Violation]:
    """Every import under ``root/<package>`` that climbs a layer, crosses to a peer or names an unplaced unit."""
    found: list[Violation] = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            module = module_name(path, root)
            importer = unit_of(module)
            for line, name in imported_names(path.read_text(encoding="utf-8"), module, path.name == "__init__.py"):
                target = unit_of(name)
                if importer is None or target is None:
                    continue
                unplaced = [u for u in (importer, target) if not any(u in layer for layer in LAYERS)]
                if unplaced:
                    found.append(Violation(module, line, name, f"{unplaced[0]!r} is in no layer of serac/layers.py"))
                elif not allowed(importer, target):
                    where = "a peer of" if layer_of(importer) == layer_of(target) else "a higher layer than"
                    found.append(Violation(module, line, name, f"{target!r} is {where} {importer!r}"))
    return found


def test_the_tree_imports_only_downwards():
    problems = violations(ROOT)
    assert not problems, "layering violations (see serac/layers.py):\n" + "\n".join(map(str, problems))


def test_every_subpackage_and_module_of_serac_is_in_a_layer():
    units = {p.name if p.is_dir() else p.stem for p in (ROOT / "serac").iterdir()
             if (p.is_dir() and (p / "__init__.py").is_file()) or (p.suffix == ".py" and p.stem != "__init__")}
    placed = {name for layer in LAYERS for name in layer}
    assert units - placed == set()


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for package in ("serac", "serac/models", "serac/training", "serac/evaluation", "serac/data"):
        write(tmp_path, f"{package}/__init__.py", "")
    write(tmp_path, "serac/training/loop.py", "from serac.models import scope\nfrom . import helpers\n")
    return tmp_path


def test_a_clean_synthetic_tree_passes(tree):
    assert violations(tree) == []


def test_an_import_from_a_higher_layer_is_caught_wherever_it_hides(tree):
    write(tree, "serac/models/scope.py", "\n".join([
        "from typing import TYPE_CHECKING",
        "if TYPE_CHECKING:",
        "    from serac.data.schema import EditRecord",
        "def f():",
        "    from ..training import loop",
        "    import serac.evaluation.metrics",
        "    import importlib",
        "    return importlib.import_module('serac.training.loop')",
        "from serac import data",
    ]) + "\n")
    found = {(v.line, v.imported) for v in violations(tree) if v.module == "serac.models.scope"}
    assert found == {(3, "serac.data.schema"), (5, "serac.training"), (6, "serac.evaluation.metrics"),
                     (8, "serac.training.loop"), (9, "serac.data")}


def test_peers_may_not_import_each_other(tree):
    write(tree, "serac/evaluation/stage.py", "from serac.training.editor import train_editor\n")
    (problem,) = violations(tree)
    assert (problem.module, problem.imported) == ("serac.evaluation.stage", "serac.training.editor")
    assert "peer" in problem.why


def test_an_unplaced_subpackage_is_reported(tree):
    write(tree, "serac/gadgets/__init__.py", "from serac.models import scope\n")
    (problem,) = violations(tree)
    assert "'gadgets' is in no layer" in problem.why


def test_flows_sit_on_top_and_nothing_in_serac_imports_them(tree):
    write(tree, "flows/retrain.py", "from serac.training import loop\n")
    assert violations(tree) == []
    write(tree, "serac/training/flowish.py", "from flows.retrain import retrain_flow\n")
    (problem,) = violations(tree)
    assert problem.imported == "flows.retrain" and "higher layer" in problem.why
