import pytest

from serac.config import ConfigError, ProjectConfig, load_config


def test_missing_params_give_defaults(tmp_path):
    assert load_config(tmp_path / "none.yaml") == ProjectConfig()


def test_overlay_deep_merges(tmp_path):
    base = tmp_path / "params.yaml"
    base.write_text("training:\n  dataset: zsre\n  scope:\n    max_steps: 600\n    lr: 5.0e-5\n")
    overlay = tmp_path / "demo.yaml"
    overlay.write_text("training:\n  scope:\n    max_steps: 50\n")
    cfg = load_config(base, overlay)
    assert cfg.training.dataset == "zsre"
    assert cfg.training.scope.max_steps == 50 and cfg.training.scope.lr == 5e-5
    with pytest.raises(ConfigError, match="overlay file does not exist"):
        load_config(base, tmp_path / "missing.yaml")


def test_unknown_keys_and_bad_values_are_named(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("editor:\n  treshold: 0.5\n")
    with pytest.raises(ConfigError, match="treshold"):
        load_config(path)
    path.write_text("editor:\n  threshold: 1.5\n")
    with pytest.raises(ConfigError, match="threshold"):
        load_config(path)
    path.write_text("editor:\n  batch_size: many\n")
    with pytest.raises(ConfigError, match="batch_size"):
        load_config(path)


def test_repository_params_load():
    from pathlib import Path

    cfg = load_config(Path(__file__).parents[2] / "params.yaml")
    assert cfg.training.dataset and cfg.editor.threshold == 0.5


def test_every_name_the_tree_imports_from_serac_config_is_exported():
    """The package keeps ``from serac.config import X`` working for each X used anywhere in the repository."""
    import ast
    import dataclasses
    from pathlib import Path

    import serac.config

    repo = Path(__file__).parents[2]
    wanted: set[str] = set()
    for folder in ("serac", "tests", "flows", "benchmarks", "scripts"):
        for path in (repo / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.module == "serac.config":
                    wanted.update(alias.name for alias in node.names)
    assert {"MemoryConfig", "ProjectConfig", "load_config"} <= wanted
    assert wanted <= set(serac.config.__all__)
    assert all(hasattr(serac.config, name) for name in serac.config.__all__)
    sections = {f.type for f in dataclasses.fields(ProjectConfig)}
    assert sections <= set(serac.config.__all__)  # every section is importable from the package
