"""Faster fp32 linear layers on x86 CPUs: oneDNN's prepacked kernels instead of MKL's.

torch runs an fp32 `nn.Linear` on the CPU through MKL, which on AMD processors takes its
AVX2 code path: ~105 GFLOP/s per core on the AVX-512 EPYC this project is measured on.
oneDNN's kernels (those torch.compile's CPU backend uses after prepacking weights) compute
the same fp32 product with AVX-512 at ~245 GFLOP/s, as exactly: fp32 throughout, the
results differ from MKL's only in rounding order (~4e-7 relative, the same size as MKL's
own error against float64). The linear layers are ~85% of a scoring pass, so the pass
gets ~1.8x faster. On a CPU where MKL is already at its best the two are about equal.

`install(model)` turns every `nn.Linear` of a model into a `PrepackedLinear`: same class
otherwise, same parameters and state dict, so saving, deep copies and LoRA wrapping work as
before. It computes with a prepacked copy of its weight (made on first use, one more copy of
the weights in memory) when no gradient is needed and the input has several rows, and
with plain `F.linear` otherwise: training, and single-row decoding, where MKL is as fast.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import torch
from torch import nn

#: above this many bytes of linear weights the prepacked copies cost too much memory
MAX_WEIGHT_BYTES = 2 << 30

_PACKED: weakref.WeakKeyDictionary[nn.Module, tuple[int, int, Any]] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()
_AVAILABLE: bool | None = None


class PrepackedLinear(nn.Linear):
    """An `nn.Linear` that runs inference through oneDNN with a prepacked weight."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() or x.dim() < 2 or x.numel() < 2 * x.shape[-1] or x.dtype != torch.float32 \
                or x.device.type != "cpu":
            return super().forward(x)
        return torch.ops.mkldnn._linear_pointwise(x, _packed(self), self.bias, "none", [], "")


def _packed(layer: nn.Linear) -> Any:
    """The layer's prepacked weight, remade if the weight was replaced or changed in place."""
    weight = layer.weight
    key = (weight.data_ptr(), weight._version)
    entry = _PACKED.get(layer)
    if entry is None or entry[:2] != key:
        packed = torch.ops.mkldnn._reorder_linear_weight(weight.detach(), None)
        with _LOCK:
            _PACKED[layer] = (*key, packed)
        return packed
    return entry[2]


def available() -> bool:
    """Whether this torch build has oneDNN's prepacked linear and it agrees with `F.linear`."""
    global _AVAILABLE
    if _AVAILABLE is None:
        try:
            generator = torch.Generator().manual_seed(0)
            weight = torch.randn(48, 40, generator=generator)
            bias = torch.randn(48, generator=generator)
            x = torch.randn(2, 5, 40, generator=generator)
            packed = torch.ops.mkldnn._reorder_linear_weight(weight, None)
            with torch.no_grad():
                got = torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")
            expected = torch.nn.functional.linear(x, weight, bias)
            _AVAILABLE = bool(torch.backends.mkldnn.is_available()) and got.shape == expected.shape and \
                torch.allclose(got, expected, rtol=1e-5, atol=1e-5)
        except (AttributeError, RuntimeError, NotImplementedError):
            _AVAILABLE = False
    return _AVAILABLE


def install(model: nn.Module) -> bool:
    """Make `model`'s fp32 CPU linear layers `PrepackedLinear` (see the module docstring).

    Returns False, and changes nothing, where it does not apply: a model off the CPU or not
    in float32, a torch without oneDNN's prepacked linear, or weights over `MAX_WEIGHT_BYTES`.
    """
    layers = [m for m in model.modules() if type(m) is nn.Linear]
    if not layers or any(m.weight.device.type != "cpu" or m.weight.dtype != torch.float32 for m in layers):
        return False
    if sum(m.weight.numel() for m in layers) * 4 > MAX_WEIGHT_BYTES or not available():
        return False
    for layer in layers:
        layer.__class__ = PrepackedLinear
    return True


def forget(model: nn.Module) -> None:
    """Drop the prepacked copies of `model`'s layers (they are remade on next use); only
    needed after changing weights through `.data`, which torch does not count as a change."""
    with _LOCK:
        for module in model.modules():
            _PACKED.pop(module, None)
