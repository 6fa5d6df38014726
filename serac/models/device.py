"""Pick the torch device from a config string: the one device helper every model uses."""

from __future__ import annotations

import torch


def resolve_device(preference: str | torch.device = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; another string is passed to ``torch.device``.

    A ``torch.device`` is returned as it is (callers accept either form).
    """
    if isinstance(preference, torch.device):
        return preference
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(preference)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {preference!r} requested but CUDA is not available")
    return device
