"""Guess two-thirds of the average (Keynes's beauty contest; Nagel 1995; GAMA-Bench 2025).

Every round all N agents choose at once a number on the grid 0, `grid`, 2 x `grid`, ...,
`maximum`. The target is `fraction` (default 2/3) times the mean of the choices; the
agents whose choice is closest to the target share `prize`. Iterated elimination of
dominated choices leads to everyone choosing 0, the only Nash equilibrium (with
fraction < 1); people start near 35 and move toward 0 over repeated rounds.

Actions (the same for every seat): action k chooses the number k x `grid`.
Rewards: prize / (number of winners) to each winner, 0 to everyone else.
Observation (per agent), numbers scaled by `maximum`: [own last choice, last mean, last
  target, won last round, first-round flag (1 until a round is played)]; zeros (and the
  flag) before the first round.
State (global): every agent's last choice (scaled), the last target, the first-round flag.
Capabilities: symmetric, competitive (one winner takes the prize), no cooperate/defect
  action and no cooperation measure. `constants` hold `maximum`, `grid` and `fraction`.
Summary (stored each step): `mean` and `target` of the round just played (None before
  the first round), so the choices over rounds can be read from the store.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from mas.games.base import MAX_ACTIONS, Capabilities, Game, GameConfigBase, State, StepResult


class GuessTwoThirdsConfig(GameConfigBase):
    """Scenario parameters of a guess-a-fraction-of-the-average game."""

    kind: Literal["guess_two_thirds"] = "guess_two_thirds"
    maximum: int = Field(100, ge=1, description="The largest number an agent may choose (the smallest is 0).")
    grid: int = Field(1, ge=1, description="Spacing of the numbers that may be chosen (0, grid, 2 x grid, ..., maximum).")
    fraction: float = Field(2 / 3, gt=0, lt=1, description="The target is this fraction of the mean choice.")
    prize: float = Field(1.0, gt=0, description="Shared equally by the agents closest to the target.")

    @model_validator(mode="after")
    def _check(self) -> "GuessTwoThirdsConfig":
        if self.maximum % self.grid:
            raise ValueError(f"grid: {self.grid} must divide maximum={self.maximum}")
        if self.maximum // self.grid + 1 > MAX_ACTIONS:
            raise ValueError(f"grid: {self.maximum // self.grid + 1} numbers to choose from; at most {MAX_ACTIONS} (use a coarser grid)")
        return self


class GuessTwoThirdsGame(Game):
    """See the module docstring."""

    kind = "guess_two_thirds"

    def __init__(self, config: GuessTwoThirdsConfig, n_agents: int) -> None:
        if int(n_agents) < 2:
            raise ValueError(f"n_agents: guess two-thirds needs at least 2 players, got {n_agents}")
        super().__init__(n_agents)
        self.config = config
        self.values = np.arange(0, config.maximum + 1, config.grid, dtype=np.float64)

    @property
    def num_actions(self) -> int:
        return len(self.values)

    @property
    def obs_dim(self) -> int:
        return 5

    @property
    def state_dim(self) -> int:
        return self.n_agents + 2

    def action_names(self, agent: int) -> list[str]:
        return [f"{v:g}" for v in self.values]

    # ----- dynamics -----------------------------------------------------------------
    def reset(self, batch_size: int, rng: np.random.Generator) -> State:
        n = self.n_agents
        return {
            "choice": np.zeros((batch_size, n)), "won": np.zeros((batch_size, n), dtype=bool),
            "target": np.zeros(batch_size), "played": np.zeros(batch_size, dtype=np.int64),
        }

    def step(self, state: State, actions: np.ndarray, rng: np.random.Generator) -> StepResult:
        choice = self.values[actions]  # [B, N]
        target = self.config.fraction * choice.mean(axis=1)
        distance = np.abs(choice - target[:, None])
        won = np.isclose(distance, distance.min(axis=1, keepdims=True), rtol=0.0, atol=1e-9)
        rewards = (self.config.prize * won / won.sum(axis=1, keepdims=True)).astype(np.float32)
        new_state = {"choice": choice, "won": won, "target": target, "played": state["played"] + 1}
        return StepResult(new_state, rewards, np.zeros(actions.shape[0], dtype=bool))

    def observe(self, state: State) -> np.ndarray:
        scale = float(self.config.maximum)
        n = self.n_agents
        own = state["choice"] / scale
        mean = np.repeat(own.mean(axis=1, keepdims=True), n, axis=1)
        target = np.repeat((state["target"] / scale)[:, None], n, axis=1)
        first = np.repeat((state["played"] == 0).astype(np.float64)[:, None], n, axis=1)
        return np.stack([own, mean, target, state["won"].astype(np.float64), first], axis=-1).astype(np.float32)

    def global_state(self, state: State) -> np.ndarray:
        scale = float(self.config.maximum)
        first = (state["played"] == 0).astype(np.float64)[:, None]
        return np.concatenate([state["choice"] / scale, (state["target"] / scale)[:, None], first], axis=-1).astype(np.float32)

    # ----- meaning, for metrics and text ---------------------------------------------
    @functools.cached_property
    def capabilities(self) -> Capabilities:
        return Capabilities(symmetric=True, competitive=True)

    def constants(self) -> dict[str, Any]:
        c = self.config
        return {"maximum": c.maximum, "grid": c.grid, "fraction": float(c.fraction)}

    def task_text(self) -> str:
        return f"Choose a number from 0 to {self.config.maximum}."

    def summary(self, state: State, index: int) -> dict[str, Any]:
        if int(state["played"][index]) == 0:
            return {"mean": None, "target": None}
        return {"mean": float(state["choice"][index].mean()), "target": float(state["target"][index])}

    def rules_text(self, agent: int) -> str:
        c = self.config
        step = f" in steps of {c.grid}" if c.grid > 1 else ""
        return (
            f"You are player {agent + 1} of {self.n_agents}. Every round each player chooses a number from 0 to "
            f"{c.maximum}{step}, all at the same time. The target is {c.fraction:.3g} times the average of all the "
            f"numbers chosen. The player(s) closest to the target share a prize of {c.prize:g}; everyone else gets 0."
        )

    def situation_text(self, state: State, index: int, agent: int) -> str:
        played = int(state["played"][index])
        if played == 0:
            return "No rounds have been played yet."
        mine = float(state["choice"][index, agent])
        mean = float(state["choice"][index].mean())
        result = "you won" if bool(state["won"][index, agent]) else "you did not win"
        return (f"Rounds played: {played}. Last round you chose {mine:g}; the average was {mean:.4g} and the target "
                f"{float(state['target'][index]):.4g}; {result}.")
