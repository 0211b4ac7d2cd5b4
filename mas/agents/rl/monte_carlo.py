"""Returns of whole episodes for tabular Monte Carlo control (`IQLConfig.update: monte_carlo`).

Every copy of the vector env plays its own episode; `EpisodeTraces` keeps, per vector
step, each learner's (state row, action) key and reward, and when a copy's episode ends
gives the discounted return from each of its steps:

    G_t = r_t + gamma r_{t+1} + ... + gamma^(T-1-t) r_{T-1} + gamma^(T-t) tail,

with `tail` 0 when the episode terminated and the learner's value of its final observation
(max_a Q) when it was cut by a round limit the agent cannot see (as Q-learning bootstraps
there). With `first_visit`, only the first step of each (state, action) pair in an episode
counts (Sutton & Barto, ch. 5); otherwise every visit does. The learner then moves
Q(s, a) toward these returns with its constant step size (constant-alpha Monte Carlo),
acting epsilon-greedily as Q-learning does (on-policy control of an epsilon-soft policy).
Memory holds the steps of the running episodes only (trimmed as the oldest one ends).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np


class EpisodeTraces:
    """The running episodes of B copies for L learners; see the module docstring."""

    def __init__(self, gamma: float, first_visit: bool) -> None:
        self.gamma, self.first_visit = gamma, first_visit
        self.keys: list[np.ndarray] = []  # per vector step: int64 [B, L], row * A + action
        self.rewards: list[np.ndarray] = []  # per vector step: float [B, L]
        self.base = 0  # the vector-step index of keys[0]
        self.time = 0  # vector steps recorded
        self.start: np.ndarray | None = None  # per copy: the vector step its episode began at

    def record(self, keys: np.ndarray, rewards: np.ndarray, done: np.ndarray, tail: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Add one vector step (keys and rewards [B, L], done [B], tail [B, L]: the value
        after the last step of a copy that ends now). Returns (learner, key, return) of
        every counted step of the episodes that ended, as three flat arrays."""
        if self.start is None:
            self.start = np.zeros(len(done), dtype=np.int64)
        self.keys.append(keys)
        self.rewards.append(rewards)
        self.time += 1
        learners: list[np.ndarray] = []
        found_keys: list[np.ndarray] = []
        returns: list[np.ndarray] = []
        groups: dict[int, list[int]] = defaultdict(list)  # copies that started together finish as a block
        for copy in np.flatnonzero(done):
            groups[int(self.start[copy])].append(int(copy))
        for begin, copies in groups.items():
            k, g = self._returns(begin, np.asarray(copies), tail[copies])
            counted = self._first_visits(k) if self.first_visit else np.ones(k.shape, dtype=bool)
            learners.append(np.nonzero(counted)[2])
            found_keys.append(k[counted])
            returns.append(g[counted])
        self.start[done] = self.time
        self._trim()
        if not learners:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, np.zeros(0)
        return np.concatenate(learners), np.concatenate(found_keys), np.concatenate(returns)

    def _returns(self, begin: int, copies: np.ndarray, tail: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Keys and returns [n, k, L] of the episodes of `copies`, which began at `begin`."""
        span = slice(begin - self.base, self.time - self.base)
        keys = np.stack([step[copies] for step in self.keys[span]])
        rewards = np.stack([step[copies] for step in self.rewards[span]])
        returns = np.empty_like(rewards, dtype=np.float64)
        running = tail.astype(np.float64)
        for t in range(len(rewards) - 1, -1, -1):
            running = rewards[t] + self.gamma * running
            returns[t] = running
        return keys, returns

    @staticmethod
    def _first_visits(keys: np.ndarray) -> np.ndarray:
        """bool [n, k, L]: whether each step is the first of its key in its episode."""
        n, k, l = keys.shape
        columns = keys.reshape(n, k * l)
        first = np.zeros((n, k * l), dtype=bool)
        for j in range(k * l):
            _, at = np.unique(columns[:, j], return_index=True)
            first[at, j] = True
        return first.reshape(n, k, l)

    def _trim(self) -> None:
        oldest = int(self.start.min())
        if oldest > self.base:
            del self.keys[: oldest - self.base]
            del self.rewards[: oldest - self.base]
            self.base = oldest
