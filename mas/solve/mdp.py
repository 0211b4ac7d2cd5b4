"""Value iteration for a finite, deterministic single-agent MDP (e.g. a one-agent maze).

A game that is such an MDP says so through `Game.tabular_mdp()`. Values are the
discounted return of acting optimally, V(s) = max_a [r(s, a) + gamma V(s') (1 - end(s, a))],
the fixed point a tabular Q-learner with the same discount converges to; a step that
ends the episode (reaching a goal) has no future value.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

#: value iteration stops when no value moves by more than this
TOL = 1e-10
#: and after at most this many sweeps (a discount of 1 with a cycle never converges)
MAX_SWEEPS = 100_000


@dataclass(frozen=True)
class TabularMDP:
    """A finite deterministic MDP.

    Attributes:
        next_state: int [S, A], the state after action a in state s.
        reward: float [S, A], the reward of that step.
        ends: bool [S, A], whether that step ends the episode.
        start: the initial state.
        labels: a name per state (e.g. "row 2, col 3"), for display.
        actions: a name per action.
    """

    next_state: np.ndarray
    reward: np.ndarray
    ends: np.ndarray
    start: int
    labels: tuple[str, ...]
    actions: tuple[str, ...]


@dataclass(frozen=True)
class Solution:
    """Optimal values and policy of a `TabularMDP`.

    Attributes:
        values: float [S], V(s).
        q: float [S, A], the optimal action values.
        policy: int [S], a best action per state (ties: the lowest index).
        sweeps: value-iteration sweeps until convergence.
        steps_to_end: per state, the fewest steps to any episode end (-1: unreachable).
    """

    values: np.ndarray
    q: np.ndarray
    policy: np.ndarray
    sweeps: int
    steps_to_end: np.ndarray


def value_iteration(mdp: TabularMDP, gamma: float) -> Solution:
    """Solve `mdp` with discount `gamma` (in [0, 1]); see the module docstring."""
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    values = np.zeros(mdp.next_state.shape[0])
    keep = (~mdp.ends).astype(float)
    sweeps = 0
    for sweeps in range(1, MAX_SWEEPS + 1):
        q = mdp.reward + gamma * keep * values[mdp.next_state]
        new = q.max(axis=1)
        delta = float(np.max(np.abs(new - values))) if len(new) else 0.0
        values = new
        if delta < TOL:
            break
    q = mdp.reward + gamma * keep * values[mdp.next_state]
    policy = np.argmax(q >= q.max(axis=1, keepdims=True) - 1e-9, axis=1)
    return Solution(values, q, policy, sweeps, steps_to_end(mdp))


def steps_to_end(mdp: TabularMDP) -> np.ndarray:
    """The fewest steps from each state to a step that ends the episode (-1: never), by a
    breadth-first search backwards from the ending steps."""
    n = mdp.next_state.shape[0]
    dist = np.full(n, -1, dtype=np.int64)
    predecessors: list[list[int]] = [[] for _ in range(n)]
    for s, a in zip(*np.nonzero(~mdp.ends)):
        predecessors[int(mdp.next_state[s, a])].append(int(s))
    queue: deque[int] = deque()
    for s in np.flatnonzero(mdp.ends.any(axis=1)):
        dist[s] = 1
        queue.append(int(s))
    while queue:
        s = queue.popleft()
        for p in predecessors[s]:
            if dist[p] < 0:
                dist[p] = dist[s] + 1
                queue.append(p)
    return dist


def greedy_path(mdp: TabularMDP, policy: np.ndarray, limit: int = 10_000) -> list[int]:
    """The actions `policy` takes from the start until the episode ends (at most `limit`)."""
    state, actions = mdp.start, []
    for _ in range(limit):
        action = int(policy[state])
        actions.append(action)
        if mdp.ends[state, action]:
            break
        state = int(mdp.next_state[state, action])
    return actions


def path_return(mdp: TabularMDP, actions: list[int]) -> float:
    """The undiscounted return of taking `actions` from the start (what an episode scores)."""
    state, total = mdp.start, 0.0
    for action in actions:
        total += float(mdp.reward[state, action])
        if mdp.ends[state, action]:
            break
        state = int(mdp.next_state[state, action])
    return total
