"""A Gymnasium single-agent env: one seat of a scenario learns, the others play their
scenario policies.

It drives the episode engine (a batch of one with `external=[agent]`), so rounds, talk
steps, termination and the opponents' policies are those of every other way to play
the scenario. For any single-agent trainer (Stable-Baselines3, CleanRL, a tabular loop):

- observation: a flat float32 `Box`: the game's observation vector of the seat and,
  when the scenario declares a `comms.vocabulary`, the learners' encoding of what the
  seat heard (`mas.vocabulary.LearnerChannel`: talking flag, one-hot word per other agent).
- action: `Discrete(A)`, or with a vocabulary `Discrete(A + 1 + V)` (game actions, then
  silence, then one token per word). With a vocabulary each talk step is a step of this
  env in which only tokens are legal; without one, the talk steps are played inside
  `step` with the seat silent (the other agents still talk).
- legal actions: `info["action_mask"]` (int8) and `action_masks()` (bool, the method
  sb3-contrib's MaskablePPO calls). An illegal action is replaced by the first legal one
  (a game action in a talk step: silence) and flagged in `info["illegal_action"]`.
- reward: the seat's reward of the step (0 in talk steps).

Seeding: `reset(seed=s)` seeds the game's chances and the opponents' policies (episode
ids count from 0 again); a later `reset()` continues the stream with the next episode id.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from mas.episode import EpisodeEngine
from mas.scenario import Scenario
from mas.vocabulary import LearnerChannel


class MasGymEnv(gymnasium.Env):
    """One seat of a scenario as a Gymnasium env; see the module docstring."""

    metadata = {"render_modes": []}

    def __init__(self, scenario: Scenario, agent: str) -> None:
        if agent not in scenario.agent_ids:
            raise ValueError(f"agent '{agent}' is not in scenario '{scenario.name}'; agents: {', '.join(scenario.agent_ids)}")
        self.scenario = scenario
        self.agent = agent
        self.seat = scenario.agent_ids.index(agent)
        self.engine = EpisodeEngine(scenario, batch_size=1, external=[agent], seed=scenario.seed)
        self.game = self.engine.game
        self.channel = LearnerChannel.from_scenario(scenario, self.game.num_actions)
        extra = self.channel.extra_obs if self.channel is not None else 0
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(self.game.obs_dim + extra,), dtype=np.float32)
        num_actions = self.channel.num_actions if self.channel is not None else self.game.num_actions
        self.action_space = spaces.Discrete(num_actions)
        self._episode = -1
        self._illegal = False

    # ----- episodes ----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            self.engine.seed = int(seed)
            self._episode = -1
        self._episode += 1
        self.engine.reset(self.np_random, episodes=[self._episode])
        self._illegal = False
        self._play_talk()
        return self._observation(), self._info()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self.engine.active[0]:
            raise RuntimeError("step() called on a finished episode; call reset() first")
        chosen = int(action)
        legal = bool(self.action_masks()[chosen]) if 0 <= chosen < self.action_space.n else False
        self._illegal = not legal
        if self.channel is not None and self.engine.talking:
            word = self.channel.word(chosen) if legal else ""
            moved = self.engine.step(None, [{self.agent: word}])
        else:
            # with a vocabulary, a token in an action step is illegal (-1: the engine replaces it)
            moved = self.engine.step(np.array([[chosen if chosen < self.game.num_actions else -1]]))
            self._illegal = bool(moved.illegal[0, self.seat])
        terminated, truncated = bool(moved.terminated[0]), bool(moved.truncated[0])
        if not (terminated or truncated):
            self._play_talk()
        reward = float(moved.rewards[0, self.seat])
        return self._observation(), reward, terminated, truncated, self._info()

    def _play_talk(self) -> None:
        """Without a vocabulary: play the talk steps before the next action step (the seat
        stays silent)."""
        while self.channel is None and self.engine.talking:
            self.engine.step()

    # ----- what the seat sees --------------------------------------------------------------
    def _observation(self) -> np.ndarray:
        vector = np.array(self.engine.observations[0, self.seat], dtype=np.float32)  # a copy: the engine's is shared
        if self.channel is None:
            return vector
        heard = self.channel.encode(self.agent, self.engine.inboxes[0][self.agent], self.engine.talking)
        return np.concatenate([vector, heard]).astype(np.float32)

    def action_masks(self) -> np.ndarray:
        """The legal actions now, bool [n]."""
        game_mask = self.engine.mask[0, self.seat] > 0
        return game_mask if self.channel is None else self.channel.mask(game_mask, self.engine.talking)

    def _info(self) -> dict[str, Any]:
        return {
            "action_mask": self.action_masks().astype(np.int8), "talking": self.engine.talking,
            "round": int(self.engine.rounds[0]), "illegal_action": self._illegal,
        }


def make_gym_env(scenario: Scenario | str, agent: str) -> MasGymEnv:
    """A Gymnasium env for seat `agent` of a scenario (object, file path or built-in name);
    the other seats play their scenario policies."""
    from mas.scenario import load_scenario

    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    return MasGymEnv(scenario, agent)
