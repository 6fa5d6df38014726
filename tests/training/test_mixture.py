"""The training mixture: counts by repeat factor, determinism, proportions of a capped prefix."""

from __future__ import annotations

from collections import Counter

import pytest

from serac.config import ConfigError, TrainingConfig
from serac.training.mixture import mix, mixture_counts, repeat_draw


def _data():
    return {"big": [f"b{i}" for i in range(100)], "small": [f"s{i}" for i in range(10)]}


def test_repeat_factors_set_each_datasets_count():
    out = mix(_data(), {"big": 1.0, "small": 3.0}, seed=0)
    counts = Counter(x[0] for x in out)
    assert counts == {"b": 100, "s": 30}
    assert Counter(out)["s3"] == 3 and Counter(out)["b7"] == 1  # whole passes: every small item three times
    assert mixture_counts({"big": 100, "small": 10}, {"big": 1.0, "small": 3.0}) == {"big": 100, "small": 30}


def test_a_fraction_keeps_a_seeded_subset_and_a_dataset_left_out_is_absent():
    out = mix(_data(), {"big": 0.5}, seed=1)
    assert len(out) == 50 and len(set(out)) == 50 and all(x.startswith("b") for x in out)
    assert mix(_data(), {"big": 0.5}, seed=1) == out
    assert set(mix(_data(), {"big": 0.5}, seed=2)) != set(out)


def test_the_mixture_is_deterministic_and_a_prefix_keeps_the_proportions():
    a = mix(_data(), {"big": 1.0, "small": 3.0}, seed=7)
    assert a == mix(_data(), {"small": 3.0, "big": 1.0}, seed=7)  # factor order does not matter
    prefix = Counter(x[0] for x in a[:44])
    assert 4 <= prefix["s"] <= 20  # ~30/130 of 44 = 10: shuffled, not one dataset after the other


def test_repeat_draw_passes_are_permutations():
    items = list(range(7))
    drawn = repeat_draw(items, 17, seed=0, name="x")
    assert sorted(drawn[:7]) == items and sorted(drawn[7:14]) == items and len(drawn) == 17
    assert repeat_draw([], 5, 0, "x") == []


def test_bad_mixtures_are_errors():
    with pytest.raises(ValueError, match="not given"):
        mix(_data(), {"huge": 1.0}, seed=0)
    with pytest.raises(ValueError, match="> 0"):
        mix(_data(), {"big": 0.0}, seed=0)
    with pytest.raises(ConfigError, match="repeat factor"):
        TrainingConfig(mixture={"counterfact": -1.0})
    with pytest.raises(ConfigError, match="primary dataset"):
        TrainingConfig(dataset="convsent", mixture={"counterfact": 1.0, "zsre": 1.0})
    assert TrainingConfig(mixture=None).datasets() == ("counterfact",)
    assert TrainingConfig(mixture={"zsre": 2.0, "counterfact": 1.0}).datasets() == ("counterfact", "zsre")


def test_training_data_of_a_mixture_reads_every_dataset(tmp_path):
    from serac.config import ProjectConfig
    from serac.data.schema import records_to_table
    from serac.data.synthetic import synthetic_edits
    from serac.io import write_parquet
    from serac.training.editor import load_training_data

    sizes = {"one": (12, 4, 4), "two": (6, 2, 2)}
    for seed, (name, (n_train, n_val, n_test)) in enumerate(sizes.items()):
        records = synthetic_edits(n_train + n_val + n_test, seed=seed)
        parts = {"train": records[:n_train], "val": records[n_train:n_train + n_val],
                 "test": records[n_train + n_val:]}
        for split, part in parts.items():
            write_parquet(tmp_path / name / f"{split}.parquet", records_to_table(part))
    training = TrainingConfig(dataset="one", mixture={"one": 1.0, "two": 2.0}, data_dir=str(tmp_path),
                              max_val_edits=5)
    data = load_training_data(ProjectConfig(training=training))
    assert len(data.train) == 12 + 12 and len(data.val) == 5 and len(data.world) == 20 + 10
    again = load_training_data(ProjectConfig(training=training))
    assert [r.edit_id for r in again.train] == [r.edit_id for r in data.train]
    alone = load_training_data(ProjectConfig(training=TrainingConfig(dataset="two", data_dir=str(tmp_path))))
    assert (len(alone.train), len(alone.val), len(alone.world)) == (6, 2, 10)
