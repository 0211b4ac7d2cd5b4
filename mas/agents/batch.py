"""The optional batched interface of a policy: one rule deciding for many copies at once.

A policy class that offers it (`Policy.batch_rule`) is asked by the episode engine, when
the engine's caller allows it (`EpisodeEngine(batch_policies=True)`: tournaments), for a
`BatchRule` covering every seat its spec plays in every copy. The rule keeps its state as
arrays over those rows and decides from arrays (`BatchView`), with no per-copy Python.
It must decide exactly as the per-copy policy instances would (a property test checks
every scripted strategy), including randomness:

- A *stream* is what one per-copy policy instance is: the rows of one copy that the same
  spec plays share it, and it is seeded as the instance would be (`reset`).
- Draws come from one numpy Generator per stream, pre-drawn in chunks (`Generator.random(n)`
  gives the same numbers as n calls of `random()`), and handed out in the order the
  per-copy instance would draw them: by row order within a stream (seat order).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from mas.games.base import GameInfo

#: uniforms pre-drawn per stream at a time
CHUNK = 64


@dataclass
class BatchState:
    """What every copy shows at one step (arrays over the whole batch), shared by the
    views of all rules in that step.

    Attributes:
        round: [B] each copy's round.
        played: [B] an action step happened in the copy's episode (`last_actions` is meaningful).
        last_actions: [B, N] last round's actions of every seat.
        mask: [B, N, A] legal actions.
        talking: the step is talk-only.
        all_legal: every action of every seat of every copy is legal now.
        summary: (copy, seat) -> the game summary that seat may see (computed on demand).
    """

    round: np.ndarray
    played: np.ndarray
    last_actions: np.ndarray
    mask: np.ndarray
    talking: bool
    all_legal: bool
    summary: Callable[[int, int], dict[str, Any]]
    cache: dict[Any, Any] = field(default_factory=dict)


class BatchView:
    """What the rows being decided may know now: arrays over those rows, in order, each
    gathered from the step's `BatchState` on first use.

    Attributes:
        rows: indices into the rule's rows (only copies still playing are asked).
        copies, seats: [K] each row's copy and seat.
        state: the step's `BatchState` (whole-batch arrays).
    """

    def __init__(self, rows: np.ndarray, copies: np.ndarray, seats: np.ndarray, state: BatchState) -> None:
        self.rows, self.copies, self.seats, self.state = rows, copies, seats, state

    @property
    def talking(self) -> bool:
        return self.state.talking

    @property
    def all_legal(self) -> bool:
        return self.state.all_legal

    @functools.cached_property
    def round(self) -> np.ndarray:
        """[K] the copy's round."""
        return self.state.round[self.copies]

    @functools.cached_property
    def played(self) -> np.ndarray:
        """[K] `last_actions` is meaningful (not the first round)."""
        return self.state.played[self.copies]

    @functools.cached_property
    def last_actions(self) -> np.ndarray:
        """[K, N] last round's actions of every seat of the row's copy."""
        return self.state.last_actions[self.copies]

    @functools.cached_property
    def own_last(self) -> np.ndarray:
        """[K] the row's own last action."""
        return self.state.last_actions[self.copies, self.seats]

    @functools.cached_property
    def mask(self) -> np.ndarray:
        """[K, A] the row's legal actions."""
        if self.state.all_legal:
            return np.ones((len(self.rows), self.state.mask.shape[2]), dtype=np.int8)
        return self.state.mask[self.copies, self.seats]

    def summaries(self) -> list[dict[str, Any]]:
        """Each row's visible game summary (per copy: costly)."""
        return [self.state.summary(c, s) for c, s in zip(self.copies.tolist(), self.seats.tolist())]

    def shared(self, key: Any, make: Callable[[BatchState], Any]) -> Any:
        """`make(state)` computed once per step for every rule asking with `key`."""
        cache = self.state.cache
        if key not in cache:
            cache[key] = make(self.state)
        return cache[key]


class BatchRule(ABC):
    """One policy spec over many (copy, seat) rows; see the module docstring.

    `reactive`: each row's action is a function of its copy's `played`, `last_actions` (read
    only where played) and `mask` alone (no memory, no draws, no round, no summary), so the
    engine may tabulate it per state (`mas.batch_memo`).

    Args:
        spec, info, agent_ids: as a per-copy policy gets them.
        seats: [R] each row's seat.
        streams: [R] each row's stream (rows of one stream are in seat order).
    """

    reactive = False

    def __init__(self, spec: Any, info: "GameInfo", agent_ids: Sequence[str], seats: np.ndarray, streams: np.ndarray,
                 params: Mapping[str, np.ndarray] | None = None) -> None:
        self.spec = spec
        self.params = {name: np.asarray(values) for name, values in (params or {}).items()}
        self.info = info
        self.agent_ids = list(agent_ids)
        self.seats = np.asarray(seats, dtype=np.int64)
        self.streams = np.asarray(streams, dtype=np.int64)
        self.n_streams = int(self.streams.max()) + 1 if len(self.streams) else 0
        # a row's place among its stream's rows: draws are handed out in that order
        order = np.argsort(self.streams, kind="stable")
        ordered = self.streams[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if len(ordered) else np.zeros(0, dtype=np.int64)
        self.place = np.zeros(len(self.seats), dtype=np.int64)
        self.place[order] = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
        self.max_place = int(self.place.max()) if len(self.place) else 0
        self._aranges: dict[int, np.ndarray] = {}
        self._gens: list[np.random.Generator | None] = [None] * self.n_streams
        self._seeds: Callable[[np.ndarray], np.ndarray] = _unseeded
        self._buf = np.zeros((self.n_streams, CHUNK))
        self._ptr = np.zeros(self.n_streams, dtype=np.int64)
        self._draw = np.zeros(len(self.seats))
        self._draw_round = np.full(len(self.seats), -1, dtype=np.int64)

    def reset(self, streams: np.ndarray, seeds: Callable[[np.ndarray], np.ndarray]) -> None:
        """Start new episodes for `streams`; `seeds(some streams)` gives their per-copy
        instances' seeds (asked, and generators made, only when the streams first draw: all
        that draw first in one step together)."""
        self._seeds = seeds
        streams = np.asarray(streams, dtype=np.int64)
        for stream in streams.tolist():
            self._gens[stream] = None
        self._ptr[streams] = CHUNK  # empty: the first draw makes the generator
        restarted = np.zeros(self.n_streams, dtype=bool)
        restarted[streams] = True
        rows = np.flatnonzero(restarted[self.streams])
        self._draw_round[rows] = -1
        self.reset_rows(rows)

    def reset_rows(self, rows: np.ndarray) -> None:
        """Clear the rule's memory of `rows` (subclasses with memory override)."""

    @abstractmethod
    def act(self, view: BatchView) -> np.ndarray:
        """[K] legal actions of `view.rows`."""

    # ----- helpers ---------------------------------------------------------------------------
    def param(self, name: str, view: BatchView) -> np.ndarray:
        """[K] the value of the spec field `name` for each row of `view`: rows of specs that
        differ only in the policy's `batch_params` share one rule, each with its own value."""
        values = self.params.get(name)
        if values is None:
            return np.full(len(view.rows), getattr(self.spec, name))
        return values[view.rows]

    def uniform(self, view: BatchView, need: np.ndarray) -> np.ndarray:
        """[K] each row's uniform draw of this round where `need` (NaN elsewhere): drawn on
        first use in the round, in row order within a stream, reused by later steps."""
        rows = view.rows
        fresh = need & (self._draw_round[rows] != view.round)
        if fresh.any():
            fresh_rows = rows[fresh]
            for place in range(self.max_place + 1):
                take = fresh_rows if self.max_place == 0 else fresh_rows[self.place[fresh_rows] == place]
                if not len(take):
                    continue
                streams = self.streams[take]
                ptr = self._ptr[streams]
                if ptr.max() >= CHUNK:
                    self._refill(np.unique(streams[ptr >= CHUNK]))
                    ptr = self._ptr[streams]
                self._draw[take] = self._buf[streams, ptr]
                self._ptr[streams] = ptr + 1
            self._draw_round[fresh_rows] = view.round[fresh]
        return np.where(need, self._draw[rows], np.nan)

    def index(self, k: int) -> np.ndarray:
        """`np.arange(k)`, cached (row positions for fancy indexing)."""
        out = self._aranges.get(k)
        if out is None:
            out = self._aranges[k] = np.arange(k)
        return out

    def _refill(self, streams: np.ndarray) -> None:
        """New draws for `streams` (each stream's generator made on its first draw)."""
        new = [s for s in streams.tolist() if self._gens[s] is None]
        if new:
            for stream, seed in zip(new, self._seeds(np.array(new, dtype=np.int64)).tolist()):
                self._gens[stream] = np.random.default_rng(seed)
        for stream in streams.tolist():
            gen = self._gens[stream]
            assert gen is not None
            self._buf[stream] = gen.random(CHUNK)
        self._ptr[streams] = 0


def legal_or_first(view: BatchView, actions: np.ndarray) -> np.ndarray:
    """[K] `actions` where legal for the view's rows, else each row's first legal action (0 when none)."""
    actions = np.asarray(actions, dtype=np.int64)
    width = view.state.mask.shape[2]
    inside = (actions >= 0) & (actions < width)
    if view.all_legal:  # every action in range is legal, and 0 is the first legal one
        return actions if inside.all() else np.where(inside, actions, 0)
    mask, k = view.mask, len(actions)
    legal = inside & (mask[np.arange(k), np.where(inside, actions, 0)] != 0)
    if legal.all():
        return actions
    return np.where(legal, actions, np.argmax(mask != 0, axis=1))


def _unseeded(streams: np.ndarray) -> np.ndarray:
    raise RuntimeError("reset the rule before it acts")
