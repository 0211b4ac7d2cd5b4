"""Unanimity: everyone gets 2 when all say yes; saying no is a safe 1; a lone yes gets 0."""

from __future__ import annotations

from typing import Literal

import numpy as np
from mas.games.base import Game, GameConfigBase, State, StepResult

YES, NO = 0, 1


class UnanimityConfig(GameConfigBase):
    """Scenario parameters (none but the kind)."""

    kind: Literal["unanimity"] = "unanimity"


class UnanimityGame(Game):
    """The unanimity game: yes pays 2 when all say yes, else 0; no pays 1."""

    kind = "unanimity"
    config_model = UnanimityConfig  # the registry finds the config model here

    def __init__(self, config: UnanimityConfig, n_agents: int) -> None:
        super().__init__(n_agents)
        self.config = config

    @property
    def num_actions(self) -> int:
        return 2

    @property
    def obs_dim(self) -> int:
        return 1

    @property
    def state_dim(self) -> int:
        return 1

    def action_names(self, agent: int) -> list[str]:
        return ["yes", "no"]

    def reset(self, batch_size: int, rng: np.random.Generator) -> State:
        return {"all_yes": np.zeros(batch_size, dtype=np.float32)}

    def step(self, state: State, actions: np.ndarray, rng: np.random.Generator) -> StepResult:
        all_yes = (actions == YES).all(axis=1)
        rewards = np.where(actions == NO, 1.0, np.where(all_yes[:, None], 2.0, 0.0)).astype(np.float32)
        return StepResult({"all_yes": all_yes.astype(np.float32)}, rewards, np.zeros(len(actions), dtype=bool))

    def observe(self, state: State) -> np.ndarray:
        return np.repeat(state["all_yes"][:, None, None], self.n_agents, axis=1)

    def global_state(self, state: State) -> np.ndarray:
        return state["all_yes"][:, None]

    def rules_text(self, agent: int) -> str:
        return "Say yes or no. If everyone says yes, everyone gets 2; no gets 1; a yes among noes gets 0."

    def situation_text(self, state: State, index: int, agent: int) -> str:
        return "Last round everyone said yes." if state["all_yes"][index] else "Not everyone said yes last round."
