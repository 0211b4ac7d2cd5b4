"""Train mas learners on any external PettingZoo parallel env with discrete actions.

`PettingZooVectorEnv` steps a list of env copies one after the other and presents them
with the interface of `mas.vector.VectorEnv` (obs [B, L, d], mask, global state, rewards,
auto-reset), so `MAPPO` and the IQL learners train on it unchanged:

    from mpe2 import simple_spread_v3
    from mas.agents.rl.pettingzoo_adapter import PettingZooVectorEnv
    from mas.agents.rl.mappo import MAPPO
    from mas.agents.rl.config import MAPPOConfig

    env = PettingZooVectorEnv(lambda: simple_spread_v3.parallel_env(N=3), num_envs=128, seed=0)
    learner = MAPPO(MAPPOConfig(), env, torch.device("cpu"), seed=0)
    step = env.reset()
    while learner.env_steps < 1_000_000:
        step, metrics, _ = learner.collect_and_update(env, step)

Conventions: every `possible_agents` entry learns; observations are flattened and
zero-padded to the longest one; an agent's legal actions are the first `n` of its
`Discrete(n)` space (and its `action_mask`, when the observation is a dict carrying one);
the global state is `env.state()` when the env implements it, else the concatenated
observations. An agent that has left the episode sees zeros, may only take action 0 and
gets reward 0. A copy's episode ends when no agent is left: terminated if any agent
terminated, else truncated. The copies run serially in this process (measured:
`benchmarks/mappo_simple_spread.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from mas.errors import MasError
from mas.seeding import child_seed
from mas.vector import VectorStep


class PettingZooVectorEnv:
    """`num_envs` copies of a PettingZoo parallel env behind the `VectorEnv` interface."""

    def __init__(self, make_env: Callable[[], Any], num_envs: int, seed: int, device: Any = "cpu") -> None:
        self.envs = [make_env() for _ in range(num_envs)]
        first = self.envs[0]
        self.learners = list(first.possible_agents)
        self.n_learners = len(self.learners)
        self.num_envs = int(num_envs)
        self.seed = int(seed)
        self.device = torch.device(device)
        action_spaces = [first.action_space(a) for a in self.learners]
        bad = [a for a, s in zip(self.learners, action_spaces) if not isinstance(s, spaces.Discrete)]
        if bad:
            raise MasError(f"PettingZoo adapter: agents {bad} do not have Discrete action spaces; only discrete actions are supported")
        self._n_actions = [int(s.n) for s in action_spaces]
        self.num_actions = max(self._n_actions)
        self._obs_sizes = [int(np.prod(self._obs_space(first, a).shape)) for a in self.learners]
        self.obs_dim = max(self._obs_sizes)
        first.reset(seed=child_seed(seed, "probe"))
        self._has_state = _has_state(first)
        self.state_dim = int(np.asarray(first.state()).size) if self._has_state else self.obs_dim * self.n_learners
        self.game = SimpleNamespace(kind=f"pettingzoo:{first.metadata.get('name', type(first).__name__)}")
        self._episodes = np.zeros(self.num_envs, dtype=np.int64)

    @staticmethod
    def _obs_space(env: Any, agent: str) -> spaces.Space:
        space = env.observation_space(agent)
        return space["observation"] if isinstance(space, spaces.Dict) else space

    # ----- conversion -----------------------------------------------------------------
    def _encode(self, env: Any, observations: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        obs = np.zeros((self.n_learners, self.obs_dim), dtype=np.float32)
        mask = np.zeros((self.n_learners, self.num_actions), dtype=bool)
        for i, agent in enumerate(self.learners):
            value = observations.get(agent)
            if value is None:  # the agent has left the episode
                mask[i, 0] = True
                continue
            legal = np.zeros(self.num_actions, dtype=bool)
            legal[: self._n_actions[i]] = True
            if isinstance(value, dict):
                if "action_mask" in value:
                    legal[: self._n_actions[i]] &= np.asarray(value["action_mask"], dtype=bool)
                value = value["observation"]
            flat = np.asarray(value, dtype=np.float32).reshape(-1)
            obs[i, : flat.size] = flat
            mask[i] = legal if legal.any() else np.eye(self.num_actions, dtype=bool)[0]
        state = np.asarray(env.state(), dtype=np.float32).reshape(-1) if self._has_state else obs.reshape(-1)
        return obs, mask, state

    def _reset_copy(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        observations, _ = self.envs[i].reset(seed=child_seed(self.seed, "copy", i, int(self._episodes[i])))
        self._returns[i] = 0.0
        return self._encode(self.envs[i], observations)

    # ----- the VectorEnv interface ------------------------------------------------------
    def reset(self) -> VectorStep:
        self._returns = np.zeros((self.num_envs, self.n_learners))
        obs, mask, state = map(np.stack, zip(*(self._reset_copy(i) for i in range(self.num_envs))))
        zeros = np.zeros(self.num_envs, dtype=bool)
        return self._to_step(obs, mask, state, np.zeros((self.num_envs, self.n_learners), np.float32), zeros, zeros, obs, mask, state, np.zeros((0, self.n_learners)))

    def step(self, actions: Any) -> VectorStep:
        actions = actions.detach().cpu().numpy() if hasattr(actions, "detach") else np.asarray(actions)
        rewards = np.zeros((self.num_envs, self.n_learners), dtype=np.float32)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        final, fresh, finished = [], [], []
        for i, env in enumerate(self.envs):
            joint = {a: int(actions[i, k]) for k, a in enumerate(self.learners) if a in env.agents}
            observations, reward, terms, truncs, _ = env.step(joint)
            for k, agent in enumerate(self.learners):
                rewards[i, k] = float(reward.get(agent, 0.0))
            self._returns[i] += rewards[i]
            encoded = self._encode(env, observations)
            final.append(encoded)
            if not env.agents:
                terminated[i] = any(terms.values())
                truncated[i] = not terminated[i]
                finished.append(self._returns[i].copy())
                self._episodes[i] += 1
                encoded = self._reset_copy(i)
            fresh.append(encoded)
        obs, mask, state = map(np.stack, zip(*fresh))
        final_obs, final_mask, final_state = map(np.stack, zip(*final))
        done_returns = np.array(finished) if finished else np.zeros((0, self.n_learners))
        return self._to_step(obs, mask, state, rewards, terminated, truncated, final_obs, final_mask, final_state, done_returns)

    def _to_step(self, obs, mask, state, rewards, terminated, truncated, final_obs, final_mask, final_state, finished) -> VectorStep:  # noqa: ANN001
        def t(x: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(x)).to(self.device)

        return VectorStep(
            obs=t(obs), mask=t(mask), state=t(state), rewards=t(rewards), terminated=t(terminated), truncated=t(truncated),
            final_obs=t(final_obs), final_mask=t(final_mask), final_state=t(final_state), finished_returns=finished,
        )

    def close(self) -> None:
        for env in self.envs:
            env.close()


def _has_state(env: Any) -> bool:
    try:
        env.state()
    except (NotImplementedError, AttributeError):
        return False
    return True
