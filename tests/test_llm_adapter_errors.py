"""A damaged LoRA adapter directory is a one-line ModelLoadError, not an internal error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("peft")

from mas.agents.llm.models import LoadedModel, ModelLoadError, _merge_adapter  # noqa: E402


def tiny_model() -> LoadedModel:
    """A two-layer Llama with random weights: what an adapter is merged into, without a download."""
    config = transformers.LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                      num_attention_heads=2, num_key_value_heads=2)
    return LoadedModel("tiny", transformers.LlamaForCausalLM(config), None, torch.device("cpu"), torch.float32)


LORA = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 2, "lora_alpha": 4, "target_modules": ["q_proj"]}


@pytest.mark.parametrize(
    "files, message",
    [
        ({"adapter_config.json": "{not json"}, "Expecting property name"),
        ({"adapter_config.json": "[1, 2]"}, "cannot load"),
        ({"adapter_config.json": json.dumps(LORA), "adapter_model.safetensors": "garbage"}, "cannot load"),
    ],
)
def test_a_damaged_adapter_is_a_one_line_model_load_error(tmp_path: Path, files, message) -> None:
    for name, content in files.items():
        (tmp_path / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ModelLoadError, match="backend.adapter: cannot load") as error:
        _merge_adapter(tiny_model(), str(tmp_path))
    assert message in str(error.value) and "\n" not in str(error.value)
