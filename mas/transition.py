"""What one step of the episode engine did, over its batch of copies (`Transition`).

The engine (`mas.episode`) returns one per step; the runner turns them into typed records
for the store (`mas.records`), the training view into tensors, callbacks (`on_step`) read
them. An immutable tuple: cheap to make on every step of a batch of one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from mas.agents.base import Decision
from mas.comms import Message
from mas.games.base import State


class Transition(NamedTuple):
    """What one engine step did, over the batch (arrays have a leading copy axis B).

    Attributes:
        talking: the step was a talk-only step.
        active: [B] copies that took part (False: finished earlier, left untouched).
        episodes, rounds, steps: [B] each copy's episode id, round and step index of the
            step just taken.
        actions: [B, N] the executed (legal) actions; None in talk steps.
        illegal: [B, N] where an action was illegal and replaced; None in talk steps.
        rewards: [B, N] float32 (zeros in talk steps).
        cooperation: [B, N] how cooperative each executed action was (NaN: not
            applicable); None in talk steps or when the game defines no cooperation.
        terminated, truncated: [B] the episode of that copy ended with this step.
        messages: per copy, every message sent in this step (delivered or not).
        decisions: per copy, the scenario policies' decisions by agent id.
        summaries: per copy, the game's full summary after an action step (kept only
            when the engine records summaries; private parts included: for the store).
        final_state: the game state right after the step, before any automatic reset.
        model_rewards: [B, N] float32 the scenario's reward-model component of this step
            (`mas.reward_model`; not part of `rewards`), or None without a reward model.
    """

    talking: bool
    active: np.ndarray
    episodes: np.ndarray
    rounds: np.ndarray
    steps: np.ndarray
    actions: np.ndarray | None
    illegal: np.ndarray | None
    rewards: np.ndarray
    cooperation: np.ndarray | None
    terminated: np.ndarray
    truncated: np.ndarray
    messages: tuple[tuple[Message, ...], ...]
    decisions: tuple[Mapping[str, Decision], ...]
    summaries: tuple[dict[str, Any], ...] | None
    final_state: State
    model_rewards: np.ndarray | None = None

    @property
    def total_rewards(self) -> np.ndarray:
        """[B, N] what learners train on: the game's rewards plus the reward-model component."""
        return self.rewards if self.model_rewards is None else self.rewards + self.model_rewards

    @property
    def done(self) -> np.ndarray:
        """[B] the copy's episode ended with this step."""
        return self.terminated | self.truncated
