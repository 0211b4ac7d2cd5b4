"""The states a batch of B copies has seen, as ids, and the steps between them (`BatchMemo`).

The batched form of `mas.state_memo` for training (`EpisodeEngine.memoise_steps`): in a
game with few distinct states whose step is memoisable (`Game.memo_counters`), every copy's
state is an id, and what the engine computes per step is read from dense tables indexed by
[id] or [id, joint action], grown on first visit:

- per id: each seat's observation [N, obs_dim], the action mask [N, A], whether every action
  is legal, the state's fields other than the counters, and the actions of the scenario's
  reactive batched policies (`BatchRule.reactive`: a function of the last joint action and
  the mask, which the id includes; decided when the id is first seen);
- per (id, joint action): the next id, the rewards [N] and the game-over flag.

An id names (the game's `observe_key`, whether a round was played, the last joint action
when one was), so a step of B copies is a few fancy-indexing operations. The values are
`Game.step`'s and the rules' own, computed on the first visit from a state of one copy;
the counters (e.g. rounds played) are kept by the engine, one per step, as the game promises.

Bounded: at most `LIMIT` ids; past that `full` is true and the engine goes back to stepping
the game (ids already handed out stay valid).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping
from typing import Any

import numpy as np

from mas.agents.batch import BatchRule, BatchState, BatchView
from mas.games.base import Game, State

#: the most ids a memo hands out
LIMIT = 4096
#: the most joint actions (A ** N) a memo tabulates
JOINTS = 4096


def memoisable(game: Game) -> bool:
    """Whether `game`'s steps can be tabulated by id and joint action."""
    return game.memo_counters is not None and game.num_actions ** game.n_agents <= JOINTS


class BatchMemo:
    """Ids of the states of one game and dense tables over them; see the module docstring.

    Args:
        game: the game (memoisable).
        rules: the reactive batched rules (`BatchRule.reactive`), each with the seats it
            plays in every copy (the same in each); their actions are tabulated per id.
    """

    def __init__(self, game: Game, rules: list[tuple[BatchRule, np.ndarray]]) -> None:
        self.game = game
        n, a = game.n_agents, game.num_actions
        self.counters = tuple(game.memo_counters or ())
        self.radix = a ** np.arange(n, dtype=np.int64)  # joint action index: sum of action * radix
        self.joints = a ** n
        self.decode = np.arange(self.joints)[:, None] // self.radix % a  # [J, N] the joint action of an index
        self.rules = rules
        self.ids: dict[Hashable, int] = {}
        self.fields: dict[str, np.ndarray] = {}  # name -> [cap, ...] each id's non-counter field
        cap = 16
        self.obs = np.zeros((cap, n, game.obs_dim), dtype=np.float32)
        self.mask = np.zeros((cap, n, a), dtype=np.int8)
        self.all_legal = np.zeros(cap, dtype=bool)
        self.every_legal = True  # every action legal in every id so far
        self.ever_over = False  # some step ended the game
        self.next = np.full((cap, self.joints), -1, dtype=np.int64)
        self.rewards = np.zeros((cap, self.joints, n), dtype=np.float32)
        self.over = np.zeros((cap, self.joints), dtype=bool)
        self.rule_index = np.zeros(cap, dtype=np.int64)  # per id: the rules' part of the joint action index

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def full(self) -> bool:
        return len(self.ids) >= LIMIT

    # ----- ids ----------------------------------------------------------------------------
    def id_of(self, state: State, played: bool, last: np.ndarray) -> int:
        """The id of a state of one copy (fields with a leading axis of 1), after a round
        (`played`, with the joint action `last` [N]) or not."""
        key = (self.game.observe_key(state), bool(played), last.tobytes() if played else None)
        found = self.ids.get(key)
        if found is None:
            found = self.ids[key] = self._add(state, played, last)
        return found

    def ids_of(self, state: State, played: np.ndarray | None = None, last: np.ndarray | None = None) -> np.ndarray:
        """[B] the id of each copy's state of a batch, after a round (`played`, with the joint
        actions `last`) or not (None: a fresh episode in every copy); one key when every copy
        is alike."""
        b = len(next(iter(state.values())))
        if played is None:
            played, last = np.zeros(b, dtype=bool), np.zeros((b, self.game.n_agents), dtype=np.int64)
            same = True
        else:
            same = bool((played == played[0]).all() and (last == last[:1]).all())
        if same and all((v == v[:1]).all() for v in state.values()):
            return np.full(b, self.id_of({k: v[:1] for k, v in state.items()}, bool(played[0]), last[0]), dtype=np.int64)
        return np.array([self.id_of({k: v[c:c + 1] for k, v in state.items()}, bool(played[c]), last[c]) for c in range(b)],
                        dtype=np.int64)

    def _add(self, state: State, played: bool, last: np.ndarray) -> int:
        at = len(self.ids)
        if at == len(self.obs):
            self._grow()
        self.obs[at] = self.game.observe(state)[0]
        self.mask[at] = self.game.action_mask(state)[0]
        self.all_legal[at] = bool(self.mask[at].all())
        self.every_legal &= bool(self.all_legal[at])
        if self.rules:  # what the rules play here, as a one-copy batch would have them decide
            game = self.game
            now = BatchState(np.zeros(1, dtype=np.int64), np.array([played]), last[None].astype(np.int64),
                             self.mask[at:at + 1], False, bool(self.all_legal[at]),
                             lambda copy, seat: game.visible(game.summary(state, 0), seat))
            for rule, seats in self.rules:
                k = len(seats)
                actions = rule.act(BatchView(np.arange(k), np.zeros(k, dtype=np.int64), seats, now))
                self.rule_index[at] += int(np.sum(np.asarray(actions, dtype=np.int64) * self.radix[seats]))
        for name, value in state.items():
            if name in self.counters:
                continue
            table = self.fields.get(name)
            if table is None:
                table = self.fields[name] = np.zeros((len(self.obs),) + value.shape[1:], dtype=value.dtype)
            table[at] = value[0]
        return at

    def _grow(self) -> None:
        def double(x: np.ndarray, fill: Any = 0) -> np.ndarray:
            return np.concatenate([x, np.full_like(x, fill)])

        self.obs, self.mask, self.all_legal = double(self.obs), double(self.mask), double(self.all_legal)
        self.next, self.rewards, self.over = double(self.next, -1), double(self.rewards), double(self.over)
        self.fields = {k: double(v) for k, v in self.fields.items()}
        self.rule_index = double(self.rule_index)

    def state(self, ids: np.ndarray, counters: Mapping[str, np.ndarray]) -> State:
        """The batch state of copies at `ids` with their `counters`."""
        return {**{k: v[ids] for k, v in self.fields.items()}, **counters}

    # ----- steps ---------------------------------------------------------------------------
    def learn(self, ids: np.ndarray, counters: Mapping[str, np.ndarray], joint: np.ndarray, flat: np.ndarray,
              rng: np.random.Generator) -> None:
        """Step the game once per distinct unknown (id, joint action) among the copies
        (their `counters` now; `flat`: each copy's joint action index) and fill the tables."""
        unknown = np.flatnonzero(self.next[ids, flat] < 0)
        seen: set[tuple[int, int]] = set()
        for c in unknown.tolist():
            at, j = int(ids[c]), int(flat[c])
            if (at, j) in seen:
                continue
            seen.add((at, j))
            state = self.state(np.array([at]), {name: counters[name][c:c + 1] for name in self.counters})
            actions = joint[c:c + 1].copy()
            result = self.game.step(state, actions, rng)  # draws nothing: the game's promise
            following = self.id_of(result.state, True, actions[0])
            self.next[at, j] = following
            self.rewards[at, j] = result.rewards[0]
            self.over[at, j] = bool(result.terminated[0])
            self.ever_over |= bool(result.terminated[0])


class LazyState(Mapping):
    """A batch state made from ids when first read (most steps nobody reads it)."""

    def __init__(self, memo: BatchMemo, ids: np.ndarray, offsets: Mapping[str, np.ndarray], rounds: np.ndarray) -> None:
        # the counters are `offsets` plus `rounds` (neither changed in place afterwards)
        self._memo, self.ids, self._offsets, self._rounds, self._state = memo, ids, offsets, rounds, None

    @property
    def counters(self) -> dict[str, np.ndarray]:
        return {name: offset + self._rounds for name, offset in self._offsets.items()}

    def _made(self) -> State:
        if self._state is None:
            self._state = self._memo.state(self.ids, self.counters)
        return self._state

    def __getitem__(self, key: str) -> np.ndarray:
        return self._made()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._made())

    def __len__(self) -> int:
        return len(self._made())
