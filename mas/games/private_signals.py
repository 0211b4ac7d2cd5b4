"""Private signals: every agent privately sees what its partner needs to know.

Each round every agent draws a signal from `signals` (uniformly, with the rng given to
reset/step) that only it sees. Every agent then picks one of the signals; agent i is
right when its pick is the signal of its partner, agent (i + 1) mod N (with two agents:
the other one). Nobody can see its partner's signal, so without communication the best
is chance (1/K); with a channel, an agent that says its signal lets its neighbour be
right every time. This is the smallest test of learned communication: the payoff is
high only if each agent acts on information that only another agent holds.

Actions: k = "pick <signals[k]>", all legal every round (simultaneous).
Observation (per agent): one-hot of its own signal (K).
State (global, for centralised critics): one-hot of every agent's signal (N * K).
Rewards: a team reward shared by every agent, `reward` times the fraction of agents who
were right. The game never terminates itself.
Summary: `signal_<seat>` (each private to that seat), `last_success`.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from mas.games.base import Capabilities, Game, State, StepResult, one_hot


class PrivateSignalsConfig(BaseModel):
    """Scenario parameters of the private-signals coordination game."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["private_signals"] = "private_signals"
    signals: list[str] = Field(default_factory=lambda: ["left", "right"], min_length=2, max_length=64,
                               description="The values a private signal takes (and the actions' names).")
    reward: float = Field(1.0, allow_inf_nan=False, description="Team reward when every agent picks its partner's signal.")

    @field_validator("signals")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"signals must be distinct, got {value}")
        return value


class PrivateSignalsGame(Game):
    """See the module docstring."""

    kind = "private_signals"

    def __init__(self, config: PrivateSignalsConfig, n_agents: int) -> None:
        if int(n_agents) < 2:
            raise ValueError(f"n_agents: private_signals needs at least 2 agents, got {n_agents}")
        super().__init__(n_agents)
        self.config = config
        self.signals = list(config.signals)
        self.partner = (np.arange(self.n_agents) + 1) % self.n_agents

    @property
    def num_actions(self) -> int:
        return len(self.signals)

    @property
    def obs_dim(self) -> int:
        return len(self.signals)

    @property
    def state_dim(self) -> int:
        return self.n_agents * len(self.signals)

    def action_names(self, agent: int) -> list[str]:
        return [f"pick {s}" for s in self.signals]

    # ----- dynamics -----------------------------------------------------------------
    def reset(self, batch_size: int, rng: np.random.Generator) -> State:
        return {
            "signal": rng.integers(0, len(self.signals), size=(batch_size, self.n_agents), dtype=np.int64),
            "last_success": np.full(batch_size, np.nan, dtype=np.float32),
        }

    def step(self, state: State, actions: np.ndarray, rng: np.random.Generator) -> StepResult:
        batch = actions.shape[0]
        right = actions == state["signal"][:, self.partner]
        success = right.mean(axis=1).astype(np.float32)
        rewards = np.repeat((np.float32(self.config.reward) * success)[:, None], self.n_agents, axis=1)
        fresh = rng.integers(0, len(self.signals), size=(batch, self.n_agents), dtype=np.int64)
        return StepResult({"signal": fresh, "last_success": success}, rewards.astype(np.float32), np.zeros(batch, dtype=bool))

    def observe(self, state: State) -> np.ndarray:
        return one_hot(state["signal"], len(self.signals))

    def global_state(self, state: State) -> np.ndarray:
        batch = state["signal"].shape[0]
        return one_hot(state["signal"], len(self.signals)).reshape(batch, -1)

    # ----- meaning, for metrics and text ---------------------------------------------
    @property
    def capabilities(self) -> Capabilities:
        private = {f"signal_{seat}": frozenset({seat}) for seat in range(self.n_agents)}
        return Capabilities(symmetric=True, private=private, hidden_information=True)

    def constants(self) -> dict[str, Any]:
        return {"signals": tuple(self.signals), "partner": tuple(int(p) for p in self.partner)}

    def summary(self, state: State, index: int) -> dict[str, Any]:
        last = float(state["last_success"][index])
        out: dict[str, Any] = {f"signal_{seat}": self.signals[int(s)] for seat, s in enumerate(state["signal"][index])}
        out["last_success"] = None if np.isnan(last) else last
        return out

    def rules_text(self, agent: int) -> str:
        partner = int(self.partner[agent]) + 1
        return (
            f"You are player {agent + 1} of {self.n_agents}. Every round each player privately sees a signal, one of: "
            f"{', '.join(self.signals)}. You must pick the signal that player {partner} sees, which only they know. "
            f"Everyone shares the reward: {self.config.reward:g} times the fraction of players who pick right."
        )

    def situation_text(self, state: State, index: int, agent: int) -> str:
        own = self.signals[int(state["signal"][index, agent])]
        last = float(state["last_success"][index])
        before = "" if np.isnan(last) else f"Last round {last:.0%} of the players picked right. "
        return f"{before}Your signal is {own}. Which signal does player {int(self.partner[agent]) + 1} see?"
