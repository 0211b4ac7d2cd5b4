"""The volunteer's dilemma (Diekmann 1985): one volunteer is enough, and volunteering costs.

Every round all N agents choose at once to volunteer or abstain. If at least one agent
volunteers, everyone gets the benefit `benefit`, and each volunteer also pays `cost`
(0 <= cost < benefit); if nobody volunteers, everyone gets `nobody` (default 0). Each
agent would rather someone else volunteered, yet volunteering beats nobody doing it.

Actions (the same for every seat): 0 = volunteer, 1 = abstain.
Rewards: benefit - cost x [volunteered] when somebody volunteered, else `nobody`, per agent.
Observation (per agent): [volunteered last round, fraction of the others who volunteered
  last round, somebody volunteered last round, first-round flag (1 until a round is
  played)]; zeros (and the flag) before the first round.
State (global): [every agent's last action as a volunteered flag, in seat order,
  somebody volunteered last round, first-round flag].
Cooperation: 1 when the agent volunteers, else 0.
Capabilities: cooperate = volunteer, defect = abstain (so the prisoner's-dilemma
  strategies play it: tit-for-tat volunteers until somebody else abstains); symmetric;
  not competitive; social optimum max(N x benefit - cost, N x nobody) per round (one
  volunteer). `constants` hold `benefit`, `cost` and `nobody`.
Summary (stored each step): `volunteers`, the number who volunteered in the round just
  played (None before the first round).
"""

from __future__ import annotations

import functools
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mas.games.base import Capabilities, Game, State, StepResult

VOLUNTEER, ABSTAIN = 0, 1


class VolunteerConfig(BaseModel):
    """Scenario parameters of a volunteer's dilemma."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["volunteers_dilemma"] = "volunteers_dilemma"
    benefit: float = Field(3.0, gt=0, description="What every agent gets when at least one agent volunteers.")
    cost: float = Field(1.0, ge=0, description="What volunteering costs the volunteer (less than the benefit).")
    nobody: float = Field(0.0, description="What every agent gets when nobody volunteers.")

    @model_validator(mode="after")
    def _check(self) -> "VolunteerConfig":
        if self.cost >= self.benefit:
            raise ValueError(f"cost must be below benefit={self.benefit:g}, got {self.cost:g}")
        if self.nobody >= self.benefit - self.cost:
            raise ValueError(f"nobody must be below benefit - cost = {self.benefit - self.cost:g} (else nobody needs a volunteer), got {self.nobody:g}")
        return self


class VolunteerGame(Game):
    """See the module docstring."""

    kind = "volunteers_dilemma"

    def __init__(self, config: VolunteerConfig, n_agents: int) -> None:
        if int(n_agents) < 2:
            raise ValueError(f"n_agents: the volunteer's dilemma needs at least 2 players, got {n_agents}")
        super().__init__(n_agents)
        self.config = config
        n = self.n_agents
        self._others = (np.ones((n, n)) - np.eye(n)) / (n - 1)  # row i averages over j != i

    # ----- sizes --------------------------------------------------------------------
    @property
    def num_actions(self) -> int:
        return 2

    @property
    def obs_dim(self) -> int:
        return 4

    @property
    def state_dim(self) -> int:
        return self.n_agents + 2

    def action_names(self, agent: int) -> list[str]:
        return ["volunteer", "abstain"]

    # ----- dynamics -----------------------------------------------------------------
    def reset(self, batch_size: int, rng: np.random.Generator) -> State:
        return {
            "volunteered": np.zeros((batch_size, self.n_agents), dtype=bool),
            "played": np.zeros(batch_size, dtype=np.int64),
        }

    def step(self, state: State, actions: np.ndarray, rng: np.random.Generator) -> StepResult:
        c = self.config
        volunteered = actions == VOLUNTEER  # [B, N]
        somebody = volunteered.any(axis=1, keepdims=True)
        rewards = np.where(somebody, c.benefit - c.cost * volunteered, c.nobody).astype(np.float32)
        new_state = {"volunteered": volunteered, "played": state["played"] + 1}
        return StepResult(new_state, rewards, np.zeros(actions.shape[0], dtype=bool))

    def observe(self, state: State) -> np.ndarray:
        own = state["volunteered"].astype(np.float32)  # [B, N]
        others = own @ self._others.T.astype(np.float32)
        somebody = np.repeat(own.max(axis=1, keepdims=True), self.n_agents, axis=1)
        first = np.repeat((state["played"] == 0).astype(np.float32)[:, None], self.n_agents, axis=1)
        return np.stack([own, others, somebody, first], axis=-1)

    def global_state(self, state: State) -> np.ndarray:
        own = state["volunteered"].astype(np.float32)
        first = (state["played"] == 0).astype(np.float32)[:, None]
        return np.concatenate([own, own.max(axis=1, keepdims=True), first], axis=-1)

    # ----- meaning, for metrics and text ---------------------------------------------
    @functools.cached_property
    def capabilities(self) -> Capabilities:
        return Capabilities(cooperate=VOLUNTEER, defect=ABSTAIN, symmetric=True, cooperation_measure=True,
                            social_optimum=True, competitive=False)

    def constants(self) -> dict[str, Any]:
        c = self.config
        return {"benefit": float(c.benefit), "cost": float(c.cost), "nobody": float(c.nobody)}

    def social_optimum(self) -> float | None:
        c = self.config
        return max(self.n_agents * c.benefit - c.cost, self.n_agents * c.nobody)

    def stage_payoffs(self) -> np.ndarray | None:
        if self.n_agents > 12:  # 2^N x N numbers: enumerating equilibria stays small
            return None
        joint = np.array(list(np.ndindex(*(2,) * self.n_agents)), dtype=np.int64)  # every joint action
        rewards = self.step(self.reset(len(joint), np.random.default_rng(0)), joint, np.random.default_rng(0)).rewards
        return rewards.astype(float).reshape((2,) * self.n_agents + (self.n_agents,))

    def task_text(self) -> str:
        return "Choose whether to volunteer this round."

    def cooperation(self, state: State, actions: np.ndarray) -> np.ndarray | None:
        return (actions == VOLUNTEER).astype(np.float32)

    def summary(self, state: State, index: int) -> dict[str, Any]:
        played = int(state["played"][index])
        return {"volunteers": int(state["volunteered"][index].sum()) if played else None}

    def rules_text(self, agent: int) -> str:
        c = self.config
        n = self.n_agents
        return "\n".join([
            f"You are player {agent + 1} of {n} in a repeated volunteer's dilemma. Every round all players "
            "choose at the same time to volunteer or to abstain.",
            f"If at least one player volunteers, every player gets {c.benefit:g} points and each volunteer pays "
            f"{c.cost:g} of them (a volunteer gets {c.benefit - c.cost:g}, everyone else {c.benefit:g}). "
            f"If nobody volunteers, every player gets {c.nobody:g}.",
            "One volunteer is enough: you gain most if someone else volunteers, but if everyone waits for the others, nobody gains.",
            "Actions: volunteer, abstain.",
        ])

    def situation_text(self, state: State, index: int, agent: int) -> str:
        played = int(state["played"][index])
        if played == 0:
            return "No rounds have been played yet."
        last = state["volunteered"][index]
        mine = "volunteered" if last[agent] else "abstained"
        others = ", ".join(f"player {j + 1} {'volunteered' if last[j] else 'abstained'}" for j in range(self.n_agents) if j != agent)
        return f"Rounds played: {played}. Last round you {mine}; {others}. {int(last.sum())} player(s) volunteered."
