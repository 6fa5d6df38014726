"""resolve_device: the one device helper the scope, counterfactual, base and text-to-text models use."""

import pytest
import torch

from serac.models.device import resolve_device


def test_strings_and_devices_resolve_to_a_torch_device():
    given = torch.device("cpu")
    assert resolve_device(given) is given
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in {"cuda", "mps", "cpu"}


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_cuda_without_cuda_is_a_clear_error():
    with pytest.raises(RuntimeError, match="'cuda:0' requested but CUDA is not available"):
        resolve_device("cuda:0")
    assert resolve_device("auto") != torch.device("cuda")

