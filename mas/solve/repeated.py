"""The best response to a fixed strategy in a repeated two-player game, by value iteration.

A scripted strategy that declares an `Automaton` (mas.agents.scripted.base) is in one of
a few memory states each round; against it the repeated game is a finite Markov decision
process whose state is that memory state and the round. Backward induction over the
rounds gives the exact best response and its value:

    V_T(s) = 0,
    V_t(s) = max_a  sum_b P(b | s) [ r(a, b) + w V_{t+1}(next(s, b, a)) ],

with b the strategy's move (cooperate or defect, drawn with the automaton's probability),
r the responder's stage payoff, T the number of rounds (a fixed count, or the cap of a
random length) and w the weight of the next round: 1 for a fixed count, the continuation
probability p for a random length (the game goes on after each round with probability
p, so V_0 is the expected total payoff). Ties between actions go to the lower action
index. The plan is the best responder's action in each round along the path actually
played (deterministic strategies), run-length coded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mas.agents.scripted.base import Automaton

#: the most rounds of a plan written out in full (longer paths keep their run-length form)
MAX_PLAN_RUNS = 12


@dataclass(frozen=True)
class BestResponse:
    """The exact best response to one strategy.

    Attributes:
        value: the responder's best expected total payoff over the episode.
        first_action: the best action in the first round.
        plan: the best actions along the path played, as (action, how many rounds) runs;
            empty when the strategy is random (the path is not fixed).
        values_by_state: the best value from the first round in every memory state.
    """

    value: float
    first_action: int
    plan: tuple[tuple[int, int], ...]
    values_by_state: tuple[float, ...]


def best_response(payoff: np.ndarray, automaton: Automaton, cooperate: int, defect: int, rounds: int,
                  continuation: float = 1.0) -> BestResponse:
    """The best response to `automaton` by backward induction over `rounds` rounds.

    Args:
        payoff: the responder's stage payoff [A_responder, A_strategy].
        automaton: the fixed strategy.
        cooperate, defect: the strategy's cooperate and defect action indices (its moves);
            the responder "defects" when it plays anything but `cooperate`.
        rounds: the number of rounds (or the cap of a random length).
        continuation: the probability of another round after each round (1: a fixed count).
    """
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    n_states = len(automaton.states)
    n_actions = payoff.shape[0]
    p_coop = np.asarray(automaton.cooperate, dtype=float)  # [S]
    moves = np.array([cooperate, defect])
    probs = np.stack([p_coop, 1.0 - p_coop], axis=1)  # [S, 2]: the strategy's C, D
    # expected stage payoff of each responder action in each state: [S, A]
    reward = probs @ payoff[:, moves].T
    table = np.asarray(automaton.next, dtype=np.int64)  # [S, own defected, partner defected]
    responder_defects = (np.arange(n_actions) != cooperate).astype(np.int64)
    # next state for (state, strategy move b, responder action a): [S, 2, A]
    successor = table[:, :, responder_defects]
    value = np.zeros(n_states)
    policy = np.zeros((rounds, n_states), dtype=np.int64)
    for t in range(rounds - 1, -1, -1):
        future = (probs[:, :, None] * value[successor]).sum(axis=1)  # [S, A]
        q = reward + continuation * future
        policy[t] = np.argmax(q >= q.max(axis=1, keepdims=True) - 1e-9, axis=1)  # ties: lowest index
        value = q.max(axis=1)
    start = automaton.start
    deterministic = bool(np.all((p_coop == 0.0) | (p_coop == 1.0)))
    plan = _path(policy, successor, p_coop, start, responder_defects) if deterministic else ()
    return BestResponse(float(value[start]), int(policy[0, start]), plan, tuple(float(v) for v in value))


def _path(policy: np.ndarray, successor: np.ndarray, p_coop: np.ndarray, start: int, responder_defects: np.ndarray) -> tuple[tuple[int, int], ...]:
    """The responder's actions along the path a deterministic strategy plays, run-length coded."""
    runs: list[list[int]] = []
    state = start
    for t in range(policy.shape[0]):
        action = int(policy[t, state])
        if runs and runs[-1][0] == action:
            runs[-1][1] += 1
        else:
            runs.append([action, 1])
        move = 0 if p_coop[state] == 1.0 else 1
        state = int(successor[state, move, action])
    return tuple((a, n) for a, n in runs)


def describe_plan(plan: tuple[tuple[int, int], ...], names: list[str]) -> str:
    """E.g. "C x9, D x1" (at most `MAX_PLAN_RUNS` runs, then "...")."""
    parts = [f"{names[a]} x{n}" for a, n in plan[:MAX_PLAN_RUNS]]
    return ", ".join(parts) + (", ..." if len(plan) > MAX_PLAN_RUNS else "")
