"""An LLM backend kind `echo` (its config only: the test validates a scenario naming it)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class EchoBackendConfig(BaseModel):
    """Backend `echo`: `create()` would return the live mas.agents.llm.backend.LLMBackend."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["echo"] = "echo"
    prefix: str = ""

    def create(self):  # noqa: ANN201
        raise NotImplementedError("the demo plugin's backend only shows how a kind registers")
