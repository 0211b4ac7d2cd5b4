"""The states a batch of one has seen, and the steps between them (`StateMemo`).

A batch of one (the PettingZoo env, `mas run`) meets the same few states again and again
in a game with few distinct observations (an iterated matrix game: the last joint
action). A game that names its states (`Game.observe_key`) has each state's observations
and action mask computed once (`Node`), as read-only arrays shared by every later visit.

A game that also declares its step memoisable (`Game.memo_counters`) is stepped once per
state and legal joint action (`Move`): the next state's node, the executed actions, the
rewards and the game-over flag, again read-only and shared, so that a later step of the
same joint action in the same state is one dict lookup (`EpisodeEngine.step_one`). The
results are `Game.step`'s own; only its counters (e.g. rounds played) are advanced by
the engine, one per step, as the game promises.

Bounded: at most `LIMIT` states and `LIMIT` moves are kept; past that the memo starts over.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from mas.games.base import Game, State

#: the most states, and the most moves, a memo keeps before it starts over
LIMIT = 4096


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False  # shared by every visit: nobody may change it
    return array


class Node:
    """One named state: its observations [1, N, obs_dim] and mask [1, N, A] (read-only),
    whether every action is legal, each seat's (observation, mask) rows, the state's
    fields other than the counters (when the game's step is memoisable) and the moves
    seen from it by joint action."""

    __slots__ = ("mask", "obs", "all_legal", "rows", "fixed", "moves")

    def __init__(self, game: Game, state: State, counters: tuple[str, ...] | None) -> None:
        self.mask = _frozen(game.action_mask(state))
        self.obs = _frozen(game.observe(state))
        self.all_legal = bool(self.mask.all())
        self.rows = tuple(zip(self.obs[0], self.mask[0]))
        self.fixed = None if counters is None else {k: _frozen(np.array(v)) for k, v in state.items() if k not in counters}
        self.moves: dict[tuple[int, ...], Move] = {}


class Move:
    """One legal joint action from a node: the node it leads to, the executed actions
    [1, N] and rewards [1, N] (read-only arrays; the rewards also by agent id: copy to
    keep) and whether the game ended."""

    __slots__ = ("node", "actions", "rewards", "by_agent", "over")

    def __init__(self, node: Node, actions: np.ndarray, rewards: np.ndarray, over: bool, agents: Sequence[str]) -> None:
        self.node, self.actions, self.over = node, _frozen(actions), over
        self.rewards = _frozen(np.array(rewards, dtype=np.float32))
        self.by_agent: dict[str, float] = dict(zip(agents, self.rewards[0].tolist()))


class StateMemo:
    """The nodes of one game (played by `agents`, in seat order) by `observe_key`, and
    their moves; see the module docstring."""

    def __init__(self, game: Game, agents: Sequence[str]) -> None:
        self.game, self.agents = game, list(agents)
        self.counters = game.memo_counters
        self.nodes: dict[Hashable, Node] = {}
        self._moves = 0

    def __len__(self) -> int:
        return len(self.nodes)

    def node(self, state: State) -> Node | None:
        """The node of a state of a batch of one (None: the game names no states)."""
        key = self.game.observe_key(state)
        if key is None:
            return None
        node = self.nodes.get(key)
        if node is None:
            if len(self.nodes) >= LIMIT:
                self._start_over()
            node = self.nodes[key] = Node(self.game, state, self.counters)
        return node

    def move(self, node: Node, state: State, joint: tuple[Any, ...], rng: np.random.Generator) -> Move | None:
        """The move of the joint action `joint` from `node` (whose state is `state`),
        stepping the game when it is new; None when the step is not memoisable or some
        action is not a legal int (the caller's general path replaces it)."""
        num_actions = self.game.num_actions
        if node.fixed is None or not node.all_legal or not all(type(a) is int and 0 <= a < num_actions for a in joint):
            return None
        actions = np.array([joint], dtype=np.int64)
        result = self.game.step(state, actions, rng)  # draws nothing: the game's promise
        following = self.node(result.state)
        if following is None:
            return None
        if self._moves >= LIMIT:
            self._start_over()
        self._moves += 1
        move = node.moves[joint] = Move(following, actions, result.rewards, bool(result.terminated[0]), self.agents)
        return move

    def _start_over(self) -> None:
        for node in self.nodes.values():  # nodes held elsewhere keep no links into the old graph
            node.moves.clear()
        self.nodes.clear()
        self._moves = 0
