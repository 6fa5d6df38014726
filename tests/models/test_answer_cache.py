"""The base-answer cache: each query is answered once per model and settings, across processes."""

from __future__ import annotations

from serac.models.answer_cache import CachedBaseModel, model_key


class CountingBase:
    def __init__(self, suffix: str = "!", name: str = "m"):
        self.suffix = suffix
        self.name = name
        self.asked: list[str] = []

    def predict(self, queries):
        self.asked.extend(queries)
        return [q.upper() + self.suffix for q in queries]

    def describe(self):
        return {"kind": "callable", "name_or_path": self.name, "suffix": self.suffix}


def test_answers_are_computed_once_and_reused_after_a_restart(tmp_path):
    base = CountingBase()
    cached = CachedBaseModel(base, tmp_path)
    assert cached.predict(["a", "b", "a"]) == ["A!", "B!", "A!"]
    assert base.asked == ["a", "b"]  # a duplicate inside one call is asked once
    assert cached.predict(["b", "c"]) == ["B!", "C!"]
    assert base.asked == ["a", "b", "c"]
    fresh_base = CountingBase()
    reopened = CachedBaseModel(fresh_base, tmp_path)  # another process, same model and settings
    assert reopened.predict(["c", "a", "b"]) == ["C!", "A!", "B!"]
    assert fresh_base.asked == [] and len(reopened) == 3


def test_other_settings_never_read_these_answers(tmp_path):
    CachedBaseModel(CountingBase("!"), tmp_path).predict(["a"])
    other = CountingBase("?")
    assert CachedBaseModel(other, tmp_path).predict(["a"]) == ["A?"]
    assert other.asked == ["a"]
    assert model_key(CountingBase("!").describe()) != model_key(other.describe())
    assert model_key({"x": 1, "y": 2}) == model_key({"y": 2, "x": 1})


def test_describe_is_the_wrapped_models(tmp_path):
    base = CountingBase()
    assert CachedBaseModel(base, tmp_path).describe() == base.describe()
