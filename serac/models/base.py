"""The frozen base model: answers every query the scope classifier leaves out of scope.

The base model is referenced, never copied: the editor records ``describe()``
(kind, name/path, revision) in its config. The one exception is the offline
default (``name_or_path: minilm``), which the pipeline trains on the original
facts and saves as its own :class:`~serac.models.seq2seq.TextToText` artifact;
that artifact's directory is then passed as ``artifact_dir``.

Implementations live in :data:`BASE_MODELS`, keyed by ``BaseModelConfig.kind``.

Who chooses: a saved editor may name only a Hugging Face base (:data:`ARTIFACT_BASE_KINDS`),
whose weights load as data. A ``callable`` imports and runs code and an ``http`` base sends
every query to a URL, so those come only from the operator (:func:`operator_base_model`).
"""

from __future__ import annotations

import importlib
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

from serac.config import BaseModelConfig
from serac.models.artifacts import ArtifactError
from serac.models.causal_lm import CausalLMBase
from serac.models.device import resolve_device
from serac.models.hub import OFFLINE_DEFAULT
from serac.models.seq2seq import TextToText, text_to_text_from_config


class BaseModelError(RuntimeError):
    """The base model could not answer (bad endpoint reply, wrong answer count, ...)."""


@runtime_checkable
class BaseModel(Protocol):
    """What the editor needs from a base model."""

    def predict(self, queries: Sequence[str]) -> list[str]:
        """One answer per query, in order."""
        ...

    def describe(self) -> dict[str, Any]:
        """How to find this model again: ``kind``, ``name_or_path``, ``revision`` (+ kind-specific keys)."""
        ...


class HFBaseModel:
    """A frozen Hugging Face model (seq2seq / causal / classifier) behind :class:`TextToText`.

    ``text_to_text`` stays reachable for the pipeline, which trains the offline
    default itself (on its own unfrozen ``TextToText``) before saving it.
    A model loaded from ``artifact_dir`` is ``trained_here``: the editor saves
    it with :meth:`save`; any other is referenced by name/path + revision only.
    """

    def __init__(
        self,
        text_to_text: TextToText,
        *,
        name_or_path: str,
        revision: str | None = None,
        artifact_dir: str | Path | None = None,
        batch_size: int = 32,
        max_new_tokens: int | None = None,
    ) -> None:
        self.text_to_text = text_to_text.eval()
        self.text_to_text.requires_grad_(False)
        self.name_or_path = name_or_path
        self.revision = revision
        self.artifact_dir = Path(artifact_dir) if artifact_dir is not None else None
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens

    @classmethod
    def from_config(
        cls, cfg: BaseModelConfig, device: torch.device, artifact_dir: str | Path | None = None, batch_size: int = 32
    ) -> HFBaseModel:
        if artifact_dir is not None:
            t2t = TextToText.load(artifact_dir, device)
            if t2t.kind != cfg.kind:
                raise ArtifactError(
                    f"{Path(artifact_dir) / 'config.json'}: base model artifact of kind {t2t.kind!r}, "
                    f"but base.kind is {cfg.kind!r}"
                )
        elif cfg.name_or_path == OFFLINE_DEFAULT:
            raise ValueError(
                f"base.name_or_path {OFFLINE_DEFAULT!r} is the pipeline-trained offline default: "
                "pass the directory of its trained artifact as artifact_dir"
            )
        else:
            t2t = text_to_text_from_config(cfg).to(device)
        return cls(
            t2t,
            name_or_path=cfg.name_or_path,
            revision=cfg.revision,
            artifact_dir=artifact_dir,
            batch_size=batch_size,
            max_new_tokens=cfg.max_new_tokens,
        )

    @property
    def trained_here(self) -> bool:
        """True for the pipeline-trained default (loaded from its own artifact)."""
        return self.artifact_dir is not None

    def save(self, directory: str | Path) -> Path:
        """Write the wrapped model as a TextToText artifact (for the pipeline-trained default)."""
        return self.text_to_text.save(directory)

    def predict(self, queries: Sequence[str]) -> list[str]:
        return self.text_to_text.generate(list(queries), self.batch_size, self.max_new_tokens)

    def describe(self) -> dict[str, Any]:
        """``BaseModelConfig`` fields that rebuild this model (plus where its artifact was loaded from)."""
        t2t = self.text_to_text
        info: dict[str, Any] = {
            "kind": t2t.kind,
            "name_or_path": self.name_or_path,
            "revision": self.revision,
            "max_input_length": t2t.max_input_length,
            "max_new_tokens": self.max_new_tokens or t2t.max_new_tokens,
        }
        if t2t.kind == "classifier":
            info["labels"] = list(t2t.labels)
        if self.artifact_dir is not None:
            info["artifact_dir"] = str(self.artifact_dir)
        return info


class CallableBaseModel:
    """A Python function ``list[str] -> list[str]``, given directly or as a ``module:function`` string."""

    def __init__(self, fn: Callable[[list[str]], Sequence[str]] | str) -> None:
        if isinstance(fn, str):
            self.reference = fn
            self.fn = import_callable(fn)
        elif callable(fn):
            self.reference = f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', type(fn).__name__)}"
            self.fn = fn
        else:
            raise TypeError(f"expected a callable or a 'module:function' string, got {type(fn).__name__}")

    @classmethod
    def from_config(
        cls, cfg: BaseModelConfig, device: torch.device, artifact_dir: str | Path | None = None, batch_size: int = 32
    ) -> CallableBaseModel:
        return cls(cfg.callable)

    def predict(self, queries: Sequence[str]) -> list[str]:
        queries = list(queries)
        return _check_answers(self.fn(queries), len(queries), f"base callable {self.reference}")

    def describe(self) -> dict[str, Any]:
        return {"kind": "callable", "name_or_path": self.reference, "revision": None, "callable": self.reference}


class HTTPBaseModel:
    """A remote model: ``POST url {"queries": [...]}`` answers ``{"answers": [...]}`` (JSON, HTTP 200)."""

    def __init__(self, url: str, *, timeout_s: float = 30.0, batch_size: int = 32) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"base.url must be http(s)://..., got {url!r}")
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.url = url
        self.timeout_s = timeout_s
        self.batch_size = batch_size

    @classmethod
    def from_config(
        cls, cfg: BaseModelConfig, device: torch.device, artifact_dir: str | Path | None = None, batch_size: int = 32
    ) -> HTTPBaseModel:
        return cls(cfg.url, timeout_s=cfg.timeout_s, batch_size=batch_size)

    def predict(self, queries: Sequence[str]) -> list[str]:
        answers: list[str] = []
        queries = list(queries)
        for start in range(0, len(queries), self.batch_size):
            answers.extend(self._post(queries[start : start + self.batch_size]))
        return answers

    def _post(self, queries: list[str]) -> list[str]:
        body = json.dumps({"queries": queries}).encode("utf-8")
        request = urllib.request.Request(
            self.url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        where = f"base model endpoint {self.url}"
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:200].decode("utf-8", "replace")
            raise BaseModelError(f"{where}: HTTP {exc.code} {exc.reason}: {detail}") from exc
        except (TimeoutError, socket.timeout) as exc:
            raise BaseModelError(f"{where}: no answer within {self.timeout_s} s") from exc
        except urllib.error.URLError as exc:
            raise BaseModelError(f"{where}: unreachable: {exc.reason}") from exc
        if status != 200:
            raise BaseModelError(f"{where}: HTTP {status}, expected 200")
        try:
            payload = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BaseModelError(f"{where}: reply is not JSON: {raw[:200]!r}") from exc
        if not isinstance(payload, dict) or "answers" not in payload:
            raise BaseModelError(f"{where}: reply has no 'answers' key: {str(payload)[:200]}")
        return _check_answers(payload["answers"], len(queries), where)

    def describe(self) -> dict[str, Any]:
        return {"kind": "http", "name_or_path": self.url, "revision": None, "url": self.url}


BaseModelFactory = Callable[..., BaseModel]

def _causal_base(
    cfg: BaseModelConfig, device: torch.device, artifact_dir: str | Path | None = None, batch_size: int = 32
) -> BaseModel:
    """A pretrained causal LM by name/path; a causal model the pipeline trained itself loads from its artifact."""
    if artifact_dir is not None:
        return HFBaseModel.from_config(cfg, device, artifact_dir, batch_size)
    return CausalLMBase.from_config(cfg, device, batch_size)


BASE_MODELS: dict[str, BaseModelFactory] = {
    "seq2seq": HFBaseModel.from_config,
    "causal": _causal_base,
    "classifier": HFBaseModel.from_config,
    "callable": CallableBaseModel.from_config,
    "http": HTTPBaseModel.from_config,
}
"""``BaseModelConfig.kind`` -> factory ``(cfg, device, artifact_dir, batch_size) -> BaseModel``."""

ARTIFACT_BASE_KINDS = ("seq2seq", "causal", "classifier")
"""Kinds a saved editor may ask for; the others are the operator's choice only."""


def build_base_model(
    cfg: BaseModelConfig,
    device: str | torch.device = "cpu",
    artifact_dir: str | Path | None = None,
    *,
    batch_size: int = 32,
) -> BaseModel:
    """The base model described by ``cfg``; ``artifact_dir`` holds the pipeline-trained default."""
    if cfg.kind not in BASE_MODELS:
        raise ValueError(f"base.kind: unknown {cfg.kind!r}; expected one of {sorted(BASE_MODELS)}")
    return BASE_MODELS[cfg.kind](cfg, resolve_device(device), artifact_dir, batch_size)


def operator_base_model(
    cfg: BaseModelConfig,
    *,
    callable_ref: str | None = None,
    url: str | None = None,
    batch_size: int = 32,
) -> BaseModel | None:
    """The base model the operator chose: ``callable_ref`` (``--base-callable``) or ``url``
    (``--base-url``), else ``cfg`` (params.yaml ``base``) when its kind is not one an artifact
    may name. None: use the Hugging Face base the editor was saved with."""
    if callable_ref and url:
        raise ValueError("choose the base model with --base-callable or --base-url, not both")
    if callable_ref:
        return CallableBaseModel(callable_ref)
    if url:
        return HTTPBaseModel(url, timeout_s=cfg.timeout_s, batch_size=batch_size)
    if cfg.kind not in ARTIFACT_BASE_KINDS:
        return build_base_model(cfg, batch_size=batch_size)
    return None


def import_callable(reference: str) -> Callable[..., Any]:
    """Resolve ``package.module:function`` (dotted attributes allowed after the colon)."""
    module_name, sep, attr_path = reference.partition(":")
    if not sep or not module_name or not attr_path:
        raise ValueError(f"base.callable must look like 'module:function', got {reference!r}")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"base.callable {reference!r}: cannot import {module_name!r}: {exc}") from exc
    for attr in attr_path.split("."):
        try:
            obj = getattr(obj, attr)
        except AttributeError as exc:
            raise ValueError(f"base.callable {reference!r}: {module_name!r} has no attribute {attr_path!r}") from exc
    if not callable(obj):
        raise ValueError(f"base.callable {reference!r} is not callable")
    return obj


def _check_answers(answers: Any, expected: int, where: str) -> list[str]:
    if not isinstance(answers, (list, tuple)):
        raise BaseModelError(f"{where}: expected a list of answers, got {type(answers).__name__}")
    if len(answers) != expected:
        raise BaseModelError(f"{where}: {len(answers)} answers for {expected} queries")
    bad = [i for i, a in enumerate(answers) if not isinstance(a, str)]
    if bad:
        raise BaseModelError(f"{where}: answers at positions {bad[:5]} are not strings")
    return list(answers)
