"""The LLM as environment: a game master that narrates each agent's situation as a story.

The narrator turns what one agent sees (the game's exact situation text and the last
round's actions) into a short scene in a chosen setting: a fishing village for the commons,
a text adventure for the signalling game. It is flavour on the observation only: the rules,
the legal actions and the rewards stay exact in code, and the narrator is given nothing the
agent may not see (never the game's full state, which can hold hidden facts such as the
signalling target), so it cannot leak information either.

Narration is generated once per agent per round (talk steps of the same round reuse it),
in one batched call for all agents that need it, and it is stored with the agent's
decision record. It is model output, so it is placed in the prompt as untrusted text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from mas.agents.llm.backend import GenerateRequest, Generation
from mas.agents.llm.config import BackendConfig
from mas.agents.llm.prompts import untrusted

if TYPE_CHECKING:
    from mas.agents.base import AgentView

#: narrations longer than this many characters are cut (a runaway generation stays small)
MAX_NARRATION_CHARS = 800


class NarratorConfig(BaseModel):
    """A game master that retells each agent's situation in a setting of your choice."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    style: str = Field(
        "a short story", min_length=1, max_length=500,
        description="The setting the narration is told in, e.g. 'a fishing village on a cold lake'.",
    )
    backend: BackendConfig | None = Field(None, description="The model that narrates (default: the policy's own backend).")
    max_tokens: int = Field(60, ge=1, le=1024, description="Length limit of one narration, in tokens.")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0: greedy narration (cached when situations repeat).")
    replace_situation: bool = Field(
        False, description="If true the agent reads only the narration, not the game's exact situation text."
    )


class Narrator:
    """Builds the narration requests for a step and reads the replies."""

    def __init__(self, config: NarratorConfig) -> None:
        self.config = config

    def request(self, view: "AgentView", last_round: str, seed: int | None) -> GenerateRequest:
        """The generation request that narrates `view` (what one agent sees now)."""
        system = (
            f"You are the narrator of a game, told as {self.config.style}. Retell what one player sees as two or "
            "three sentences of that story, speaking to the player as 'you'. Keep every number and fact exactly as "
            "given. Do not add options, advice, rules or facts."
        )
        # the situation, not the long rules: the narration retells the moment, and stays cheap
        lines = [f"What the player sees now:\n{view.situation}"]
        if last_round:
            lines.append(f"Last round: {last_round}")
        lines.append("Narrate this for the player.")
        messages = ({"role": "system", "content": system}, {"role": "user", "content": "\n\n".join(lines)})
        return GenerateRequest(
            messages=messages, max_tokens=self.config.max_tokens, temperature=self.config.temperature,
            seed=seed if self.config.temperature > 0 else None,
        )

    @staticmethod
    def text(generation: Generation) -> str:
        """The narration as it goes into a prompt: one line, tag-safe, bounded."""
        return untrusted(generation.text)[:MAX_NARRATION_CHARS]

