"""Device names from scenario files and the command line -> torch devices.

One rule for every part of mas that runs torch (LLM backends, RL learners): `auto` picks
CUDA when present and the CPU otherwise; asking for CUDA where there is none is an error
that names the setting, not a crash deep inside torch.
"""

from __future__ import annotations

from typing import Any

from mas.errors import MasError


def resolve_device(name: str, setting: str = "--device", error: type[MasError] = MasError) -> Any:
    """The torch device for `name` ('auto', 'cpu', 'cuda', 'cuda:1'); `setting` names where
    the value came from in the error message."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise error(f"{setting}: unknown device '{name}'; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise error(f"{setting} is '{name}' but CUDA is not available on this machine; use auto or cpu")
    return device
