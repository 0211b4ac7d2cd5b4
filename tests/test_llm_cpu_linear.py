"""oneDNN prepacked linear layers: same results as `F.linear`, same parameters, safe to train and copy."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from mas.agents.llm import cpu_linear
from mas.agents.llm.cpu_linear import PrepackedLinear

pytestmark = pytest.mark.skipif(not cpu_linear.available(), reason="this torch build has no oneDNN prepacked linear")


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(40, 64), nn.SiLU(), nn.Linear(64, 24, bias=False))


def plain_forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The model computed with `F.linear` only, whatever its layers' classes."""
    for layer in model:
        x = nn.functional.linear(x, layer.weight, layer.bias) if isinstance(layer, nn.Linear) else layer(x)
    return x


def test_install_keeps_the_parameters_and_computes_what_f_linear_computes() -> None:
    model = small_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert cpu_linear.install(model)
    assert [type(m) for m in model] == [PrepackedLinear, nn.SiLU, PrepackedLinear]
    assert model.state_dict().keys() == before.keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
    x = torch.randn(3, 7, 40)
    with torch.inference_mode():
        fast = model(x)
    expected = plain_forward(model, x)
    assert torch.allclose(fast, expected, rtol=1e-5, atol=1e-5)
    assert model[0] in cpu_linear._PACKED and model[2] in cpu_linear._PACKED  # the prepacked path ran


def test_gradients_and_single_rows_take_the_plain_path() -> None:
    model = small_model()
    cpu_linear.install(model)
    x = torch.randn(5, 40, requires_grad=True)
    out = model(x)
    assert torch.equal(out, plain_forward(model, x))
    assert model[0] not in cpu_linear._PACKED
    out.sum().backward()
    assert x.grad is not None and model[0].weight.grad is not None
    row = torch.randn(1, 40)
    with torch.no_grad():
        assert torch.equal(model(row), plain_forward(model, row))


def test_a_weight_changed_in_place_is_prepacked_again() -> None:
    model = small_model()
    cpu_linear.install(model)
    x = torch.randn(4, 40)
    with torch.no_grad():
        first = model(x)
        model[2].weight.mul_(-2.0)
        second = model(x)
    assert torch.allclose(second, -2.0 * first, rtol=1e-4, atol=1e-5)
    model[2].weight.data.mul_(0.5)  # through .data torch counts no change: forget() is the way
    cpu_linear.forget(model)
    with torch.no_grad():
        assert torch.allclose(model(x), -first, rtol=1e-4, atol=1e-5)


def test_a_deep_copy_computes_alone_and_its_changes_do_not_reach_the_original() -> None:
    model = small_model()
    cpu_linear.install(model)
    x = torch.randn(4, 40)
    with torch.no_grad():
        original = model(x)
        twin = copy.deepcopy(model)
        assert torch.allclose(twin(x), original, rtol=1e-5, atol=1e-6)
        twin[0].weight.zero_()
        assert torch.allclose(model(x), original, rtol=1e-5, atol=1e-6)
        assert not torch.allclose(twin(x), original, atol=1e-3)


def test_install_leaves_models_it_does_not_apply_to_alone(monkeypatch) -> None:
    half = small_model().to(torch.bfloat16)
    assert not cpu_linear.install(half)
    assert all(type(m) is not PrepackedLinear for m in half)
    monkeypatch.setattr(cpu_linear, "MAX_WEIGHT_BYTES", 1000)
    big = small_model()
    assert not cpu_linear.install(big)
    assert all(type(m) is not PrepackedLinear for m in big)


def test_the_embedded_model_on_the_cpu_uses_it_and_scores_as_plain_transformers_would(loaded) -> None:
    if loaded.device.type != "cpu":
        pytest.skip("the embedded model is not on the CPU here")
    layers = [m for m in loaded.model.modules() if isinstance(m, nn.Linear)]
    assert layers and all(type(m) is PrepackedLinear for m in layers)
    ids = loaded.tokenizer("Round 3. You cooperated, they defected. Your move:", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        fast = torch.log_softmax(loaded.model(input_ids=ids).logits[0], dim=-1)
    with torch.enable_grad():  # gradient mode takes the plain F.linear path
        plain = torch.log_softmax(loaded.model(input_ids=ids).logits[0], dim=-1).detach()
    assert torch.allclose(fast, plain, atol=1e-3)
    assert torch.equal(fast.argmax(-1), plain.argmax(-1))
