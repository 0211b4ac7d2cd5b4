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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from mas.games.base import GameInfo

#: uniforms pre-drawn per stream at a time
CHUNK = 64


@dataclass(frozen=True)
class BatchView:
    """What the rows being decided may know now (arrays over those rows, in order).

    Attributes:
        rows: indices into the rule's rows (only copies still playing are asked).
        round: [K] the copy's round.
        played: [K] an action step happened in the episode (`last_actions` is meaningful).
        last_actions: [K, N] last round's actions of every seat of the row's copy.
        mask: [K, A] the row's legal actions.
        talking: the step is talk-only.
        summaries: () -> each row's visible game summary (computed on demand: per copy).
    """

    rows: np.ndarray
    round: np.ndarray
    played: np.ndarray
    last_actions: np.ndarray
    mask: np.ndarray
    talking: bool
    summaries: Callable[[], list[dict[str, Any]]]


class BatchRule(ABC):
    """One policy spec over many (copy, seat) rows; see the module docstring.

    Args:
        spec, info, agent_ids: as a per-copy policy gets them.
        seats: [R] each row's seat.
        streams: [R] each row's stream (rows of one stream are in seat order).
    """

    def __init__(self, spec: Any, info: "GameInfo", agent_ids: Sequence[str], seats: np.ndarray, streams: np.ndarray) -> None:
        self.spec = spec
        self.info = info
        self.agent_ids = list(agent_ids)
        self.seats = np.asarray(seats, dtype=np.int64)
        self.streams = np.asarray(streams, dtype=np.int64)
        self.n_streams = int(self.streams.max()) + 1 if len(self.streams) else 0
        # a row's place among its stream's rows: draws are handed out in that order
        self.place = np.zeros(len(self.seats), dtype=np.int64)
        for stream in np.unique(self.streams):
            at = np.flatnonzero(self.streams == stream)
            self.place[at] = np.arange(len(at))
        self._gens: list[np.random.Generator | None] = [None] * self.n_streams
        self._buf = np.zeros((self.n_streams, CHUNK))
        self._ptr = np.zeros(self.n_streams, dtype=np.int64)
        self._draw = np.zeros(len(self.seats))
        self._draw_round = np.full(len(self.seats), -1, dtype=np.int64)

    def reset(self, streams: np.ndarray, seeds: Sequence[int]) -> None:
        """Start new episodes for `streams`, each seeded like its per-copy instance."""
        for stream, seed in zip(np.asarray(streams).tolist(), seeds):
            gen = np.random.default_rng(seed)
            self._gens[stream] = gen
            self._buf[stream] = gen.random(CHUNK)
            self._ptr[stream] = 0
        rows = np.flatnonzero(np.isin(self.streams, streams))
        self._draw_round[rows] = -1
        self.reset_rows(rows)

    def reset_rows(self, rows: np.ndarray) -> None:
        """Clear the rule's memory of `rows` (subclasses with memory override)."""

    @abstractmethod
    def act(self, view: BatchView) -> np.ndarray:
        """[K] legal actions of `view.rows`."""

    # ----- helpers ---------------------------------------------------------------------------
    def uniform(self, view: BatchView, need: np.ndarray) -> np.ndarray:
        """[K] each row's uniform draw of this round where `need` (NaN elsewhere): drawn on
        first use in the round, in row order within a stream, reused by later steps."""
        rows = view.rows
        fresh = need & (self._draw_round[rows] != view.round)
        if fresh.any():
            for place in range(int(self.place[rows[fresh]].max()) + 1):
                take = rows[fresh & (self.place[rows] == place)]
                if not len(take):
                    continue
                streams = self.streams[take]
                for stream in np.unique(streams[self._ptr[streams] >= CHUNK]).tolist():
                    self._refill(stream)
                self._draw[take] = self._buf[streams, self._ptr[streams]]
                self._ptr[streams] += 1
            self._draw_round[rows[fresh]] = view.round[fresh]
        return np.where(need, self._draw[rows], np.nan)

    def _refill(self, stream: int) -> None:
        gen = self._gens[stream]
        assert gen is not None, "reset the rule before it acts"
        self._buf[stream] = gen.random(CHUNK)
        self._ptr[stream] = 0


def legal_or_first(mask: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """[K] `actions` where legal in `mask` [K, A], else each row's first legal action (0 when none)."""
    actions = np.asarray(actions, dtype=np.int64)
    k, width = mask.shape
    inside = (actions >= 0) & (actions < width)
    legal = inside & (mask[np.arange(k), np.where(inside, actions, 0)] != 0)
    if legal.all():
        return actions
    return np.where(legal, actions, np.argmax(mask != 0, axis=1))
