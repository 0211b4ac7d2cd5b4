"""The LLM as reward model: a reward component a judge model computes from text.

A scenario's `reward_model` block adds, to every listed agent's reward at each action
step, `weight` x the probability the judge gives `answer` as the start of its reply to
`prompt` about a text:

- `on: message`: the text is what the agent said in the round (talk steps and the action
  step, one message a line); an agent that said nothing gets no component (0).
- `on: outcome`: the text is the round's outcome (every agent's action and payoff), the
  same for every agent (e.g. "Is this outcome fair?").

With `versus` the probability is normalised over `answer` and the alternatives (e.g.
"Yes" against "No"), which is steadier for small models than the raw likelihood.

The component is its own column of the store (`steps.reward_model`), the game's reward
stays as it was (`steps.reward`); learners (IQL, MAPPO, llm-ppo) train on their sum
(`Transition.total_rewards`). The episode engine calls `RewardModel.components` once per
action step with every copy's texts in one batched `score` call; identical texts are
judged once (a cache per process run), so a small vocabulary or action set costs a few
model calls in all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from mas.agents.llm.config import BackendConfig, LocalBackendConfig

if TYPE_CHECKING:
    from mas.agents.llm.backend import LLMBackend

#: judged texts remembered per run (a bound: a long run of free text must not grow without end)
CACHE_LIMIT = 100_000
#: the longest text a judge is shown (characters; longer ones are cut)
MAX_TEXT = 2_000
#: where the text goes in the prompt (without it, the text follows the prompt)
PLACEHOLDER = "{text}"


class RewardModelConfig(BaseModel):
    """A reward component computed by a judge model from text (see `mas.reward_model`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    prompt: str = Field(min_length=1, max_length=10_000, description="The judge's question; {text} marks where the text goes (default: after it).")
    answer: str = Field(min_length=1, max_length=64, description="The reply whose likelihood is the reward, e.g. 'Yes'.")
    versus: list[str] = Field(
        default_factory=list, max_length=16, description="Alternative replies (e.g. ['No']): the probability is normalised over answer and these."
    )
    weight: float = Field(1.0, ge=-1000, le=1000, description="Multiplies the probability (in [0, 1]) before it is added to the reward.")
    on: Literal["message", "outcome"] = Field("message", description="Judge each agent's messages of the round, or the round's outcome.")
    agents: list[str] | None = Field(None, description="The agents that get the component (default: every agent).")
    backend: BackendConfig = Field(default_factory=LocalBackendConfig, description="The judge model.")  # type: ignore[valid-type]

    @field_validator("versus")
    @classmethod
    def _distinct(cls, versus: list[str]) -> list[str]:
        if any(not v for v in versus):
            raise ValueError("versus: replies must not be empty")
        return versus

    def check_agents(self, agent_ids: Sequence[str]) -> None:
        """One-line error when `agents` names an agent that is not in the scenario."""
        unknown = [a for a in self.agents or [] if a not in agent_ids]
        if unknown:
            raise ValueError(f"reward_model.agents: {unknown} are not agents of the scenario; agents: {list(agent_ids)}")
        if self.answer in self.versus:
            raise ValueError(f"reward_model.versus: must not repeat the answer '{self.answer}'")


def judge_messages(config: RewardModelConfig, text: str) -> tuple[dict[str, str], ...]:
    """The judge's conversation about `text`."""
    text = text[:MAX_TEXT]
    content = config.prompt.replace(PLACEHOLDER, text) if PLACEHOLDER in config.prompt else f"{config.prompt}\n\n{text}"
    return ({"role": "user", "content": content},)


def outcome_text(agent_ids: Sequence[str], action_names: Sequence[Sequence[str]], actions: Sequence[int],
                 rewards: Sequence[float]) -> str:
    """One round's outcome in words: every agent's action and payoff."""
    return "; ".join(f"{a} played {names[int(i)]} and got {float(r):g}"
                     for a, names, i, r in zip(agent_ids, action_names, actions, rewards)) + "."


class RewardModel:
    """Judges texts with a backend and turns each round's texts into reward components."""

    def __init__(self, config: RewardModelConfig, agent_ids: Sequence[str], backend: "LLMBackend | None" = None) -> None:
        self.config = config
        self.agent_ids = list(agent_ids)
        chosen = set(config.agents) if config.agents is not None else set(agent_ids)
        self.paid = np.array([a in chosen for a in agent_ids], dtype=bool)
        self._backend = backend
        self._cache: dict[str, float] = {}

    @property
    def backend(self) -> "LLMBackend":
        if self._backend is None:  # loaded on first use: a scenario that is only validated loads no model
            from mas.agents.llm.factory import get_backend

            self._backend = get_backend(self.config.backend)
        return self._backend

    def probabilities(self, texts: Sequence[str]) -> list[float]:
        """The judge's probability of `answer` for each text (one `score` call for the new ones)."""
        from mas.agents.llm.backend import ScoreRequest

        new = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if new:
            candidates = (self.config.answer, *self.config.versus)
            requests = [ScoreRequest(messages=judge_messages(self.config, t), candidates=candidates) for t in new]
            replies = self.backend.score(requests)
            if len(self._cache) + len(new) > CACHE_LIMIT:
                self._cache.clear()
            for text, request, reply in zip(new, requests, replies):
                problem = reply.problem(request.candidates)
                if problem:
                    from mas.errors import MasError

                    raise MasError(f"reward_model: the judge's scores are not log-probabilities ({problem})")
                self._cache[text] = _probability(reply.logprobs, bool(self.config.versus))
        return [self._cache[t] for t in texts]

    def components(self, words: Sequence[Mapping[str, Sequence[str]]], actions: np.ndarray, rewards: np.ndarray,
                   action_names: Sequence[Sequence[str]], active: np.ndarray) -> np.ndarray:
        """The weighted component of every copy and agent, float32 [B, N], for one action step.

        Args:
            words: per copy, what each agent said this round (its messages in order).
            actions, rewards: [B, N] the executed actions and the game's rewards.
            action_names: each seat's action names.
            active: [B] copies that took part (others get 0).
        """
        batch, n = actions.shape
        out = np.zeros((batch, n), dtype=np.float32)
        slots: list[tuple[int, int]] = []
        texts: list[str] = []
        for copy in np.flatnonzero(active):
            if self.config.on == "outcome":
                text = outcome_text(self.agent_ids, action_names, actions[copy], rewards[copy])
                slots.extend((int(copy), seat) for seat in np.flatnonzero(self.paid))
                texts.extend([text] * int(self.paid.sum()))
                continue
            for seat in np.flatnonzero(self.paid):
                said = [w for w in words[copy].get(self.agent_ids[seat], ()) if w]
                if said:
                    slots.append((int(copy), int(seat)))
                    texts.append("\n".join(said))
        if texts:
            for (copy, seat), p in zip(slots, self.probabilities(texts)):
                out[copy, seat] = self.config.weight * p
        return out


def _probability(logprobs: Sequence[float], normalise: bool) -> float:
    """exp(log p(answer)), or its share among the candidates when normalised."""
    values = [min(float(v), 0.0) for v in logprobs]
    if not normalise:
        return math.exp(values[0])
    top = max(values)
    weights = [math.exp(v - top) for v in values]
    return weights[0] / sum(weights)


def make_reward_model(config: RewardModelConfig | None, agent_ids: Sequence[str]) -> RewardModel | None:
    """The scenario's reward model, or None without one."""
    return RewardModel(config, agent_ids) if config is not None else None

