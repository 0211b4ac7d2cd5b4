"""The `llm` policy's scenario block: `LLMSpec` (the model, score or generate mode, talk,
history, template overrides, narrator, world model, training hyperparameters) and
`TemplateSpec`. Validated when the scenario loads; `mas.agents.llm.policy` plays it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from mas.agents.base import PolicySpec
from mas.agents.llm.config import BackendConfig, LocalBackendConfig
from mas.agents.llm.narrator import NarratorConfig
from mas.agents.llm.prompts import SYSTEM_VARIABLES, USER_VARIABLES, check_template
from mas.agents.llm.world_model import WorldModelSpec, coerce
from mas.agents.rl.config import LLMTrainSpec

if TYPE_CHECKING:
    from mas.games.base import GameInfo


class TemplateSpec(BaseModel):
    """Prompt template overrides (Jinja2, sandboxed); None keeps the game's default."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    system: str | None = Field(None, description="System turn template: rules, persona, agent, json.")
    user: str | None = Field(
        None, description="User turn template; may start with {% extends \"user\" %} to override one block of the default."
    )

    @field_validator("system", "user")
    @classmethod
    def _check_template(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            check_template(value, SYSTEM_VARIABLES if info.field_name == "system" else USER_VARIABLES, info.field_name)
        return value


class LLMSpec(PolicySpec):
    """An agent played by a language model (a local transformers model or an OpenAI-compatible server)."""

    type: Literal["llm"] = "llm"
    backend: BackendConfig = Field(default_factory=LocalBackendConfig, description="The model: kind local, openai or replay.")
    mode: Literal["score", "generate"] = Field("score", description="score: rank the legal actions by likelihood; generate: parse free text.")
    temperature: float = Field(1.0, ge=0.0, le=100.0, description="score mode: softmax temperature of the action distribution (0: one-hot).")
    choice: Literal["sample", "argmax"] = Field("sample", description="score mode: draw the action from the distribution, or take its mode.")
    debias: bool = Field(
        False, description="score: average over every cyclic order of the listed options; generate: list them in a random order."
    )
    json_reply: bool = Field(False, description="generate mode: ask for a JSON object {\"action\": ...} and read it first.")
    max_tokens: int = Field(16, ge=1, le=4096, description="generate mode: token limit of an action reply.")
    generate_temperature: float = Field(0.0, ge=0.0, le=2.0, description="generate mode: sampling temperature (0: greedy).")
    retries: int = Field(2, ge=0, le=10, description="generate mode: corrections after an invalid reply before falling back.")
    fallback_action: str | None = Field(None, description="Action played after the last invalid reply (default: the first legal action).")
    talk: bool = Field(True, description="Write messages in talk steps (when the scenario's comms are on).")
    talk_on_action_steps: bool = Field(False, description="Also write a message with every action (for scenarios without talk steps).")
    max_message_tokens: int = Field(40, ge=1, le=1024, description="Token limit of a generated message (then cut to comms.max_length).")
    message_temperature: float = Field(0.7, ge=0.0, le=2.0, description="Sampling temperature of messages (0: greedy).")
    history_rounds: int = Field(5, ge=0, le=1000, description="How many past rounds the prompt lists.")
    template: TemplateSpec = Field(default_factory=TemplateSpec, description="Prompt template overrides.")
    narrator: NarratorConfig | None = Field(None, description="A game master that retells each situation as a story.")
    train: LLMTrainSpec | None = Field(  # type: ignore[valid-type]
        None, description="Hyperparameters of `mas train --algo llm-ppo | llm-mappo` for this agent (default: the documented defaults)."
    )
    world_model: WorldModelSpec | None = Field(
        None, description="Predict the others' next actions (and the outcome) before acting, scored afterwards; "
        "plan: true plays the best expected payoff under them (true: predict actions). See mas.agents.llm.world_model."
    )

    @field_validator("world_model", mode="before")
    @classmethod
    def _world_model_flag(cls, value: Any) -> Any:
        return coerce(value)

    def check_game(self, game: "GameInfo") -> None:
        if self.world_model is not None:
            self.world_model.check_game(game)
        if self.fallback_action is None:
            return
        # every name an action goes by in any state (e.g. a public goods phase's names)
        names = {name for seat in game.aliases for name in seat}
        if self.fallback_action not in names:
            raise ValueError(f"fallback_action '{self.fallback_action}' is not an action of this game; actions: {sorted(names)}")
