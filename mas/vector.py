"""The training view of the episode engine: B copies of a scenario's game as tensors.

It drives `mas.episode.EpisodeEngine` (rules, rounds, termination and the scenario's
policies are never written twice) with the learners' seats played from outside and
automatic reset, and converts once per step to torch tensors on the learners' device.

- Learners and opponents: the learning agents' actions come in from outside; every other
  agent keeps its scenario policy and acts inside the engine (one set of policy
  instances per copy: scripted strategies keep per-agent memory).
- Rounds and auto-reset: fixed rounds end by truncation; a continuation draw ends by
  termination, like the PettingZoo env. A finished copy starts a new episode at once;
  the step reports the final observation/state of the old one for bootstrapping.
- Talk steps: when the scenario declares a `comms.vocabulary`, learners talk and listen
  (`mas.vocabulary.LearnerChannel`): a talk step is a step of this env in which only
  message tokens are legal, the observation ends with a talking flag and the word heard
  from each other agent, and the global state with every learner's such block. Without a
  vocabulary, the talk steps are played inside a step with the learners silent (the
  opponents still talk to each other).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mas.episode import EpisodeEngine
from mas.games.base import State
from mas.scenario import Scenario
from mas.seeding import rng
from mas.vocabulary import LearnerChannel


@dataclass
class VectorStep:
    """What the learners see after a reset or a step; tensors (numpy arrays for a tabular
    learner: `VectorEnv.use_tabular_steps`) have a leading copy axis B and a learner axis L in seat order of
    `VectorEnv.learners`.

    obs [B, L, obs_dim], mask [B, L, A] (bool), state [B, state_dim]: the current step
    (after auto-reset). rewards [B, L], terminated [B], truncated [B]: the step just taken.
    final_obs/final_mask/final_state: like obs/mask/state but before auto-reset (equal to
    them where no episode ended). finished_returns: numpy [k, L] returns of the k episodes
    that ended in this step. cooperation: numpy [B, L] (NaN where undefined) or None.
    ids/final_ids: [B] the state ids of obs/final_obs in `VectorEnv.memo` while the engine
    memoises steps (tabular steps; the same id: the same observations), else None.
    all_legal: mask and final_mask are known to be all true (else they may or may not be).
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
    ids: np.ndarray | None = None
    final_ids: np.ndarray | None = None
    all_legal: bool = False


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
        # scripted opponents decide for all copies at once (the same decisions: mas.policy_batch)
        self.engine = EpisodeEngine(scenario, self.num_envs, external=self.learners, seed=self.seed, auto_reset=True,
                                    batch_policies=True)
        self.game = self.engine.game
        self.learner_seats = np.array([ids.index(a) for a in learners])
        self.n_learners = len(self.learners)
        self.channel = LearnerChannel.from_scenario(scenario, self.game.num_actions)
        extra = self.channel.extra_obs if self.channel is not None else 0
        self.obs_dim = self.game.obs_dim + extra
        self.state_dim = self.game.state_dim + self.n_learners * extra
        self.num_actions = self.channel.num_actions if self.channel is not None else self.game.num_actions
        self._rng = rng(seed, "vector", "game")
        self.tabular = False  # see `use_tabular_steps`
        self._in_seat_order = list(self.learner_seats) == list(self.engine.external_seats)
        seats = self.learner_seats.tolist()  # adjacent seats in order: columns by a slice (a view, no copy)
        self._learner_cols = slice(seats[0], seats[-1] + 1) if seats == list(range(seats[0], seats[0] + len(seats))) else self.learner_seats
        self._none_finished = np.zeros((0, self.n_learners))
        self._none_finished.flags.writeable = False
        self._memo_seen = -1  # the memo's size when `_memo_views` took its tables

    def use_tabular_steps(self) -> None:
        """Until the next `reset`, `step` gives what a tabular learner reads: numpy arrays
        end to end (no tensors, no device) and no global state (`state`, `final_state`
        None), and the engine memoises its steps where it can (`EpisodeEngine.memoise_steps`:
        then the steps carry state ids). Tabular IQL asks for it: its tables live in numpy
        on the CPU."""
        self.tabular = True
        self.engine.memoise_steps()

    @property
    def memo(self) -> Any:
        """The engine's `mas.batch_memo.BatchMemo` while its steps are memoised, else None."""
        return self.engine.memo if self.engine.state_ids is not None else None

    # ----- episodes --------------------------------------------------------------------
    def reset(self) -> VectorStep:
        """Start fresh episodes in every copy."""
        self.engine.memoise_steps(False)
        self.engine.reset(self._rng)
        self.tabular = False  # whoever steps next decides
        self._returns = np.zeros((self.num_envs, self.n_learners))
        self._talk()
        obs, mask, state = self._views(self.engine.state)
        zeros = np.zeros(self.num_envs, dtype=bool)
        rewards = np.zeros((self.num_envs, self.n_learners), dtype=np.float32)
        return self._to_step(obs, mask, state, rewards, zeros, zeros, obs, mask, state, np.zeros((0, self.n_learners)), None)

    def _talk(self) -> None:
        """Without a learner channel: play the talk steps before the next action step
        (the learners stay silent)."""
        while self.channel is None and self.engine.talking:
            self.engine.step()

    def _views(self, state: State, with_state: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        if state is self.engine.state:  # the engine's own (computed once per state, mask already there)
            obs, mask = self.engine.observations, self.engine.mask
        else:
            obs, mask = self.game.observe(state), self.game.action_mask(state)
        obs, mask = obs[:, self.learner_seats], mask[:, self.learner_seats] > 0
        global_state = self.game.global_state(state) if with_state else None
        if self.channel is None:
            return obs, mask, global_state
        talking = self.engine.talking
        heard = self.channel.encode_batch(self.engine.inboxes, self.learners, talking)
        obs = np.concatenate([obs, heard], axis=-1)
        if global_state is not None:
            global_state = np.concatenate([global_state, heard.reshape(self.num_envs, -1)], axis=-1)
        return obs, self.channel.mask(mask, talking), global_state

    def step(self, learner_actions: Any) -> VectorStep:
        """Step every copy with the learners' actions (int [B, L], tensor or array): game
        actions in an action step, message tokens in a talk step."""
        chosen = np.asarray(_as_numpy(learner_actions), dtype=np.int64).reshape(self.num_envs, self.n_learners)
        if self.channel is not None and self.engine.talking:
            words = self.channel.word
            said = [{a: words(chosen[copy, i]) for i, a in enumerate(self.learners)} for copy in range(self.num_envs)]
            moved = self.engine.step(None, said)
        else:
            if self.channel is not None:  # a message token in an action step is illegal
                chosen = np.where(chosen < self.game.num_actions, chosen, -1)
            if self._in_seat_order:  # the engine takes the external seats' columns as they are
                moved = self.engine.step(chosen)
            else:
                actions = np.zeros((self.num_envs, len(self.agent_ids)), dtype=np.int64)
                actions[:, self.learner_seats] = chosen
                moved = self.engine.step(actions)
        cols = self._learner_cols if self.tabular else self.learner_seats  # tabular learners only read them
        rewards = moved.total_rewards[:, cols]  # the reward model's component included
        self._returns += rewards
        done = moved.done
        ended = bool(np.logical_or.reduce(done))
        if ended:
            finished = self._returns[done].copy()
            self._returns[done] = 0.0
        else:  # most steps: nothing ended
            finished = self._none_finished
        cooperation = moved.cooperation[:, cols] if moved.cooperation is not None else None
        final_ids = getattr(moved.final_state, "ids", None) if self.tabular else None
        if final_ids is not None:  # memoised: the views are rows of the memo's tables
            ids = self.engine.state_ids
            final_obs, final_mask = self._memo_views(final_ids)
            obs, mask = self._memo_views(ids) if ended else (final_obs, final_mask)
            return VectorStep(obs, mask, None, rewards, moved.terminated, moved.truncated, final_obs, final_mask, None,
                              finished, cooperation, ids, final_ids, self.engine.memo.every_legal)
        final_obs, final_mask, final_state = self._views(moved.final_state, not self.tabular)
        self._talk()
        obs, mask, state = final_obs, final_mask, final_state
        if ended or self.engine.talk_rounds:
            obs, mask, state = self._views(self.engine.state, not self.tabular)
        return self._to_step(obs, mask, state, rewards, moved.terminated, moved.truncated, final_obs, final_mask,
                             final_state, finished, cooperation)

    def _memo_views(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The learners' observations and masks at state `ids`, from the memo's tables (the
        learners' columns, taken again when the memo has grown)."""
        memo = self.engine.memo
        if self._memo_seen != len(memo.ids):
            self._memo_obs, self._memo_mask = memo.obs[:, self.learner_seats], memo.mask[:, self.learner_seats] > 0
            self._memo_seen = len(memo.ids)
        return self._memo_obs[ids], self._memo_mask[ids]

    def _to_step(self, obs, mask, state, rewards, terminated, truncated, final_obs, final_mask, final_state, finished, cooperation) -> VectorStep:  # noqa: ANN001
        if self.tabular:
            f32 = np.float32
            return VectorStep(obs.astype(f32, copy=False), mask, None, rewards.astype(f32, copy=False), terminated,
                              truncated, final_obs.astype(f32, copy=False), final_mask, None, finished, cooperation)
        import torch

        def t(x: np.ndarray) -> Any:
            return torch.from_numpy(np.ascontiguousarray(x)).to(self.device)

        return VectorStep(
            obs=t(obs.astype(np.float32, copy=False)), mask=t(mask), state=t(state.astype(np.float32, copy=False)),
            rewards=t(rewards.astype(np.float32, copy=False)), terminated=t(terminated), truncated=t(truncated),
            final_obs=t(final_obs.astype(np.float32, copy=False)), final_mask=t(final_mask), final_state=t(final_state.astype(np.float32, copy=False)),
            finished_returns=finished, cooperation=cooperation,
        )

    @property
    def raw_state(self) -> State:
        """The numpy game state of every copy (for game-specific evaluation metrics)."""
        return self.engine.state


def _as_numpy(actions: Any) -> np.ndarray:
    if type(actions) is np.ndarray:
        return actions
    if hasattr(actions, "detach"):
        return actions.detach().cpu().numpy()
    return np.asarray(actions)
