"""The base-answer cache: each query is answered once per model and settings, across processes."""

from __future__ import annotations

from serac.models.answer_cache import CachedBaseModel, cached_base_model, model_key, weights_fingerprint


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


class FolderBase(CountingBase):
    """A Hugging Face-kind base whose weights live in ``artifact_dir``."""

    def __init__(self, folder):
        super().__init__()
        self.artifact_dir = folder

    def describe(self):
        return {"kind": "seq2seq", "name_or_path": "minilm", "artifact_dir": str(self.artifact_dir)}


def test_retrained_weights_in_the_same_folder_get_a_cache_of_their_own(tmp_path):
    weights = tmp_path / "base"
    weights.mkdir()
    (weights / "model.safetensors").write_bytes(b"v1")
    first = FolderBase(weights)
    cached_base_model(first, tmp_path / "cache").predict(["a"])
    again = FolderBase(weights)
    assert cached_base_model(again, tmp_path / "cache").predict(["a"]) == ["A!"] and again.asked == []
    before = weights_fingerprint(weights)
    (weights / "model.safetensors").write_bytes(b"v2, retrained")
    assert weights_fingerprint(weights) != before
    retrained = FolderBase(weights)
    cached_base_model(retrained, tmp_path / "cache").predict(["a"])
    assert retrained.asked == ["a"]  # the old answers are not read
    assert weights_fingerprint(tmp_path / "missing") is None


def test_only_frozen_hugging_face_bases_are_cached_on_disk(tmp_path):
    remote = CountingBase()  # kind "callable": its answers may change behind the same name
    assert cached_base_model(remote, tmp_path) is remote
    hf = FolderBase(tmp_path)
    assert cached_base_model(hf, None) is hf
    wrapped = cached_base_model(hf, tmp_path / "cache")
    assert isinstance(wrapped, CachedBaseModel) and cached_base_model(wrapped, tmp_path / "cache") is wrapped


def test_long_runs_are_written_as_they_go(tmp_path, monkeypatch):
    import serac.models.answer_cache as answer_cache

    monkeypatch.setattr(answer_cache, "CHUNK", 2)
    base = CountingBase()

    class Interrupted(Exception):
        pass

    def predict(queries):
        if "e" in queries:
            raise Interrupted
        return CountingBase.predict(base, queries)

    base.predict = predict
    cached = CachedBaseModel(base, tmp_path)
    try:
        cached.predict(["a", "b", "c", "d", "e"])
    except Interrupted:
        pass
    assert len(CachedBaseModel(CountingBase(), tmp_path)) == 4  # the chunks before the failure were kept
