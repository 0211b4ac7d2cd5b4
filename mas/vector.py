"""The batched environment for training: B copies of a scenario's game at once.

It calls the same `Game` code as the PettingZoo env (rules are never written twice),
keeps the game state in numpy and converts once per step to torch tensors on the
learners' device. What it adds for training:

- Learners and opponents: the learning agents' actions come in from outside; every other
  agent keeps its scenario policy and acts inside the env through the normal `Policy`
  interface. Scripted opponents keep per-agent memory keyed by agent id, so each copy
  has its own policy instances and is stepped copy by copy (measured in
  `benchmarks/train_speed.py`).
- Rounds and auto-reset: fixed rounds end by truncation; a continuation draw ends by
  termination, like the PettingZoo env. A finished copy starts a new episode at once;
  the step reports the final observation/state of the old one for bootstrapping.
- No talk steps: training runs the action steps only. The free-text talk channel is for
  LLM and scripted agents; RL agents communicate through a game's discrete actions (e.g.
  the signalling game's "say <word>"), which transcripts show as words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mas import registry
from mas.agents.base import AgentSetup, AgentView, Policy
from mas.games.base import State, sanitize_actions
from mas.scenario import ContinuationRounds, Scenario
from mas.seeding import child_seed, rng


@dataclass
class VectorStep:
    """What the learners see after a reset or a step; tensors have a leading copy axis B
    and a learner axis L in seat order of `VectorEnv.learners`.

    obs [B, L, obs_dim], mask [B, L, A] (bool), state [B, state_dim]: the current step
    (after auto-reset). rewards [B, L], terminated [B], truncated [B]: the step just taken.
    final_obs/final_mask/final_state: like obs/mask/state but before auto-reset (equal to
    them where no episode ended). finished_returns: numpy [k, L] returns of the k episodes
    that ended in this step. cooperation: numpy [B, L] (NaN where undefined) or None.
    """

    obs: Any
    mask: Any
    state: Any
    rewards: Any
    terminated: Any
    truncated: Any
    final_obs: Any
    final_mask: Any
    final_state: Any
    finished_returns: np.ndarray
    cooperation: np.ndarray | None = None


class VectorEnv:
    """B copies of a scenario's game for the learners `learners`; see the module docstring."""

    def __init__(self, scenario: Scenario, learners: Sequence[str], num_envs: int, seed: int, device: Any = "cpu") -> None:
        import torch

        ids = scenario.agent_ids
        unknown = [a for a in learners if a not in ids]
        if unknown or not learners:
            raise ValueError(f"learners {list(learners)} must be a non-empty subset of the agents {ids}")
        self.scenario = scenario
        self.agent_ids = list(ids)
        self.learners = list(learners)
        self.num_envs = int(num_envs)
        self.seed = int(seed)
        self.device = torch.device(device)
        self.game = registry.make_game(scenario.game, len(ids))
        self.learner_seats = np.array([ids.index(a) for a in learners])
        self.opponent_seats = [s for s in range(len(ids)) if ids[s] not in self.learners]
        self.n_learners = len(self.learners)
        self.obs_dim = self.game.obs_dim
        self.state_dim = self.game.state_dim
        self.num_actions = self.game.num_actions
        self._rng = rng(seed, "vector", "game")
        self._groups = self._build_opponents()
        self._needs_text = any(p.needs_text for copy in self._groups for p, _ in copy)
        self._action_names = [tuple(self.game.action_names(s)) for s in range(len(ids))]
        self._episodes = np.zeros(self.num_envs, dtype=np.int64)

    # ----- opponents -------------------------------------------------------------------
    def _build_opponents(self) -> list[list[tuple[Policy, list[int]]]]:
        """Per copy: (policy instance, seats) for each group of equal opponent specs."""
        by_spec: dict[str, list[int]] = {}
        for seat in self.opponent_seats:
            by_spec.setdefault(self.scenario.agents[seat].policy.model_dump_json(), []).append(seat)
        copies = []
        for _ in range(self.num_envs):
            groups = []
            for seats in by_spec.values():
                spec = self.scenario.agents[seats[0]].policy
                setups = [AgentSetup(self.agent_ids[s], s, self.scenario.agents[s].persona) for s in seats]
                groups.append((registry.policy_class(spec.type)(spec, self.game.info(), setups, self.agent_ids), seats))
            copies.append(groups)
        return copies

    def _reset_opponents(self, copies: np.ndarray) -> None:
        for i in copies:
            for policy, seats in self._groups[i]:
                policy.reset(child_seed(self.seed, "opponent", self.agent_ids[seats[0]], int(i), int(self._episodes[i])))

    def _opponent_actions(self, actions: np.ndarray) -> None:
        """Fill the opponents' columns of the joint actions [B, N], copy by copy."""
        if not self.opponent_seats:
            return
        obs = self.game.observe(self._state)
        mask = self.game.action_mask(self._state)
        for i in range(self.num_envs):
            last_actions = last_rewards = None
            if self._round[i] > 0:
                last_actions = dict(zip(self.agent_ids, self._last_actions[i].tolist()))
                last_rewards = dict(zip(self.agent_ids, self._last_rewards[i].tolist()))
            for policy, seats in self._groups[i]:
                views = [
                    AgentView(
                        agent=self.agent_ids[s], seat=s, observation=obs[i, s], action_mask=mask[i, s],
                        action_names=self._action_names[s], round=int(self._round[i]),
                        last_actions=last_actions, last_rewards=last_rewards, summary=self.game.view_summary(self._state, i, s),
                        rules=self.game.rules_text(s) if self._needs_text else "",
                        situation=self.game.situation_text(self._state, i, s) if self._needs_text else "",
                        persona=self.scenario.agents[s].persona,
                    )
                    for s in seats
                ]
                for s, decision in zip(seats, policy.act(views)):
                    actions[i, s] = decision.action

    # ----- episodes --------------------------------------------------------------------
    def reset(self) -> VectorStep:
        """Start fresh episodes in every copy."""
        n = len(self.agent_ids)
        self._state = self.game.reset(self.num_envs, self._rng)
        self._round = np.zeros(self.num_envs, dtype=np.int64)
        self._returns = np.zeros((self.num_envs, self.n_learners))
        self._last_actions = np.zeros((self.num_envs, n), dtype=np.int64)
        self._last_rewards = np.zeros((self.num_envs, n), dtype=np.float32)
        self._reset_opponents(np.arange(self.num_envs))
        obs, mask, state = self._views(self._state)
        zeros = np.zeros(self.num_envs, dtype=bool)
        rewards = np.zeros((self.num_envs, self.n_learners), dtype=np.float32)
        return self._to_step(obs, mask, state, rewards, zeros, zeros, obs, mask, state, np.zeros((0, self.n_learners)), None)

    def _views(self, state: State) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        obs = self.game.observe(state)[:, self.learner_seats]
        mask = self.game.action_mask(state)[:, self.learner_seats] > 0
        return obs, mask, self.game.global_state(state)

    def step(self, learner_actions: Any) -> VectorStep:
        """Step every copy with the learners' actions (int [B, L], tensor or array)."""
        actions = np.zeros((self.num_envs, len(self.agent_ids)), dtype=np.int64)
        actions[:, self.learner_seats] = _as_numpy(learner_actions)
        self._opponent_actions(actions)
        legal, _ = sanitize_actions(actions, self.game.action_mask(self._state))
        cooperation = self.game.cooperation(self._state, legal)
        result = self.game.step(self._state, legal, self._rng)
        self._round += 1
        terminated, truncated = self._episode_end(result.terminated)
        rewards = result.rewards[:, self.learner_seats]
        self._returns += rewards
        self._last_actions, self._last_rewards = legal, result.rewards
        final_obs, final_mask, final_state = self._views(result.state)
        done = terminated | truncated
        finished = self._returns[done].copy()
        self._state = result.state
        obs, mask, state = final_obs, final_mask, final_state
        if done.any():
            obs, mask, state = self._auto_reset(done, final_obs, final_mask, final_state)
        if cooperation is not None:
            cooperation = cooperation[:, self.learner_seats]
        return self._to_step(obs, mask, state, rewards, terminated, truncated, final_obs, final_mask, final_state, finished, cooperation)

    def _episode_end(self, game_over: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rounds = self.scenario.rounds
        terminated = np.asarray(game_over, dtype=bool).copy()
        if isinstance(rounds, ContinuationRounds):
            terminated |= self._rng.random(self.num_envs) >= rounds.continuation
            limit = rounds.max
        else:
            limit = rounds
        truncated = ~terminated & (self._round >= limit)
        return terminated, truncated

    def _auto_reset(self, done: np.ndarray, obs: np.ndarray, mask: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, ...]:
        copies = np.flatnonzero(done)
        fresh = self.game.reset(len(copies), self._rng)
        merged = {}
        for key, value in self._state.items():
            value = np.array(value, copy=True)
            value[copies] = fresh[key]
            merged[key] = value
        self._state = merged
        self._round[copies] = 0
        self._returns[copies] = 0.0
        self._episodes[copies] += 1
        self._reset_opponents(copies)
        fresh_obs, fresh_mask, fresh_state = self._views(fresh)
        obs, mask, state = obs.copy(), mask.copy(), state.copy()
        obs[copies], mask[copies], state[copies] = fresh_obs, fresh_mask, fresh_state
        return obs, mask, state

    def _to_step(self, obs, mask, state, rewards, terminated, truncated, final_obs, final_mask, final_state, finished, cooperation) -> VectorStep:  # noqa: ANN001
        import torch

        def t(x: np.ndarray) -> Any:
            return torch.from_numpy(np.ascontiguousarray(x)).to(self.device)

        return VectorStep(
            obs=t(obs.astype(np.float32)), mask=t(mask), state=t(state.astype(np.float32)),
            rewards=t(rewards.astype(np.float32)), terminated=t(terminated), truncated=t(truncated),
            final_obs=t(final_obs.astype(np.float32)), final_mask=t(final_mask), final_state=t(final_state.astype(np.float32)),
            finished_returns=finished, cooperation=cooperation,
        )

    @property
    def raw_state(self) -> State:
        """The numpy game state of every copy (for game-specific evaluation metrics)."""
        return self._state


def _as_numpy(actions: Any) -> np.ndarray:
    if hasattr(actions, "detach"):
        return actions.detach().cpu().numpy()
    return np.asarray(actions)
