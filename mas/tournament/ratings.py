"""Rankings you can trust: mean score per match with bootstrap intervals, how stable each
rank is under resampling of matches, win/draw/loss, Elo, and the payoff matrix.

All functions are pure: they take the finished matches as arrays and return numbers.

- Scores are per match: an entrant's total payoff in one match. Self-play (an entrant
  in several seats of one match) counts by `self_play`: "seats" (the default) counts each
  seat as one appearance; "match" counts the match once, at the mean of its seats, as the
  `axelrod` library does (so mas's and its score tables can be compared).
- Bootstrap: resample whole matches with replacement (the match is the unit of
  independent play), recompute every entrant's mean from the same resample, and take
  percentile intervals. The same resamples give the rank stability: the share of
  resamples in which an entrant keeps the rank it has in the full data.
- Win/draw/loss per appearance: a win is the unique highest score of the match, a draw a
  shared highest score, otherwise a loss (so tit for tat "never wins" a match while
  topping the table, as in Axelrod's tournaments).
- Elo: matches in schedule order, every pair of seats of different entrants is one game
  (1, 0.5 or 0 by score), step `k / (seats - 1)` so a group match weighs like a duel.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from mas.seeding import rng

ELO_START = 1500.0


@dataclass(frozen=True)
class MatchTable:
    """Finished matches as arrays by seat: `seat_entrants[m, s]` / `seat_scores[m, s]` are
    the entrant and score in seat `s` of match `m` (-1 / NaN padded), `rounds[m]` the
    match's length. Per entrant, a match counts by `self_play` (see the module docstring).

    The [matches, entrants] views (`scores`: summed score of entrant `e` in match `m`,
    `appearances`: its number of seats there, 0 when absent) are sparse (`sparse_scores`,
    `sparse_appearances`): memory grows with the seats played, not matches x entrants;
    the dense `scores` and `appearances` are made only when asked for."""

    seat_entrants: np.ndarray
    seat_scores: np.ndarray
    rounds: np.ndarray
    n_entrants: int
    self_play: str = "seats"

    @classmethod
    def from_rows(cls, rows: list[tuple[int, int, int, float, int]], n_entrants: int, self_play: str = "seats") -> "MatchTable":
        """Build from (match, seat, entrant, score, rounds) rows, ordered by match id;
        `self_play`: "seats" or "match" (see the module docstring)."""
        columns = np.array(rows, dtype=np.float64).reshape(-1, 5).T
        return cls.from_arrays(*columns, n_entrants=n_entrants, self_play=self_play)

    @classmethod
    def from_arrays(cls, match: np.ndarray, seat: np.ndarray, entrant: np.ndarray, score: np.ndarray, rounds: np.ndarray,
                    n_entrants: int, self_play: str = "seats") -> "MatchTable":
        """Build from one array per column of the rows of `from_rows`."""
        if self_play not in ("seats", "match"):
            raise ValueError(f"self_play: 'seats' or 'match', got {self_play!r}")
        match_ids, row = np.unique(np.asarray(match, dtype=np.int64), return_inverse=True)
        seat = np.asarray(seat, dtype=np.int64)
        width = int(seat.max()) + 1 if len(seat) else 1
        seat_entrants = np.full((len(match_ids), width), -1, dtype=np.int64)
        seat_scores = np.full((len(match_ids), width), np.nan)
        lengths = np.zeros(len(match_ids))
        seat_entrants[row, seat] = np.asarray(entrant, dtype=np.int64)
        seat_scores[row, seat] = score
        lengths[row] = rounds
        return cls(seat_entrants, seat_scores, lengths, int(n_entrants), self_play)

    @property
    def n_matches(self) -> int:
        return int(self.seat_entrants.shape[0])

    @functools.cached_property
    def _entries(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(match row, entrant, score, appearances) of each appearance: a seat, or with
        self_play "match" an entrant's seats of one match merged at their mean score."""
        match, seat = np.nonzero(self.seat_entrants >= 0)
        entrant, score = self.seat_entrants[match, seat], self.seat_scores[match, seat]
        if self.self_play == "match":
            key, merged = np.unique(match * self.n_entrants + entrant, return_inverse=True)
            seats = np.bincount(merged)
            score = np.bincount(merged, weights=score) / seats
            match, entrant = key // self.n_entrants, key % self.n_entrants
        return match, entrant, score, np.ones(len(match))

    def _sparse(self, values: np.ndarray) -> sparse.csr_matrix:
        match, entrant, _, _ = self._entries
        return sparse.csr_matrix((values, (match, entrant)), shape=(self.n_matches, self.n_entrants))

    @functools.cached_property
    def sparse_scores(self) -> sparse.csr_matrix:
        return self._sparse(self._entries[2])

    @functools.cached_property
    def sparse_appearances(self) -> sparse.csr_matrix:
        return self._sparse(self._entries[3])

    @property
    def scores(self) -> np.ndarray:
        return self.sparse_scores.toarray()

    @property
    def appearances(self) -> np.ndarray:
        return self.sparse_appearances.toarray()

    def totals(self, per_round: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Per entrant: summed score and appearances (rounds played with `per_round`)."""
        match, entrant, score, count = self._entries
        weights = count * self.rounds[match] if per_round else count
        return (np.bincount(entrant, weights=score, minlength=self.n_entrants),
                np.bincount(entrant, weights=weights, minlength=self.n_entrants))


@dataclass(frozen=True)
class Rating:
    """One entrant's line in the ranking table."""

    entrant: int
    rank: int
    matches: int
    mean: float
    low: float
    high: float
    rank_stability: float
    wins: int
    draws: int
    losses: int
    elo: float
    per_round: float


def ranks(means: np.ndarray) -> np.ndarray:
    """Rank 1 for the highest mean along the last axis; ties share the best rank; NaN
    (an entrant without matches) ranks last."""
    filled = np.where(np.isnan(means), -np.inf, means)
    order = np.argsort(-filled, axis=-1, kind="stable")
    ordered = np.take_along_axis(filled, order, axis=-1)
    positions = np.broadcast_to(np.arange(filled.shape[-1]), filled.shape)
    starts_tie = np.ones(filled.shape, dtype=bool)
    starts_tie[..., 1:] = ordered[..., 1:] != ordered[..., :-1]
    first_of_tie = np.maximum.accumulate(np.where(starts_tie, positions, 0), axis=-1)
    out = np.empty(filled.shape, dtype=np.int64)
    np.put_along_axis(out, order, first_of_tie + 1, axis=-1)
    return out


#: resamples drawn from one random stream (`rng(seed, "bootstrap", block)`): the blocks are
#: the unit of parallel work, and fixed so that the intervals do not depend on who computes them
RESAMPLES_PER_BLOCK = 125


def bootstrap(table: MatchTable, resamples: int, confidence: float, seed: int,
              mapper: Callable[..., Iterable[np.ndarray]] = map) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Percentile intervals of each entrant's mean score per match, and rank stability.

    The resamples are drawn in blocks of `RESAMPLES_PER_BLOCK`, block `b` from the stream
    `rng(seed, "bootstrap", b)`; `mapper` (builtin `map`, or a worker pool's `map`) computes
    the blocks, so a tournament's workers share the work and give the same numbers.

    Returns:
        (low, high, stability), one value per entrant.
    """
    means = np.concatenate(list(resample_blocks(table, resamples, seed, mapper)))
    return _intervals(means, ranks(_means(*table.totals())), confidence)


def resample_blocks(table: MatchTable, resamples: int, seed: int,
                    mapper: Callable[..., Iterable[np.ndarray]] = map) -> Iterable[np.ndarray]:
    """The bootstrap's resampled means ([block size, entrants] each, in block order), as
    `mapper` yields them: a pool's `map` starts them all at once, so the caller can do other
    work before it reads them."""
    # [matches, 2 x entrants] sparse, scores beside appearances: a resample's sums cost the
    # seats played (not matches x entrants), both in one pass over the weights
    by_match = sparse.hstack([table.sparse_scores, table.sparse_appearances], format="csr")
    sizes = [min(RESAMPLES_PER_BLOCK, resamples - start) for start in range(0, resamples, RESAMPLES_PER_BLOCK)]
    return mapper(functools.partial(_block_means, by_match, table.n_entrants, seed), range(len(sizes)), sizes)


def _block_means(by_match: sparse.csr_matrix, n_entrants: int, seed: int, block: int, size: int) -> np.ndarray:
    """Entrants' means in `size` resamples of the matches (the rows of `by_match`), drawn
    from block `block`'s stream."""
    generator = rng(seed, "bootstrap", block)
    n_matches = by_match.shape[0]
    means = np.empty((size, n_entrants))
    chunk = max(1, min(size, 4_000_000 // max(n_matches, 1)))  # resamples at a time: bounded memory
    for start in range(0, size, chunk):
        step = min(chunk, size - start)
        # how often each match is drawn in a resample of n_matches: counts of uniform draws
        # (the multinomial counts, ~15x faster than `Generator.multinomial` over many matches),
        # each resample's counts in a row of their own (the counting stays within one
        # resample's span of memory: 40% faster than interleaving the resamples)
        drawn = generator.integers(0, n_matches, size=(step, n_matches))
        drawn += (np.arange(step) * n_matches)[:, None]
        counts = np.bincount(drawn.ravel(), minlength=step * n_matches)
        del drawn  # at most two [4M] arrays alive at once
        weights = counts.reshape(step, n_matches).astype(np.float64)
        del counts
        sums = by_match.T @ weights.T  # [2 x entrants, step], summed match by match
        means[start : start + step] = _means(sums[:n_entrants], sums[n_entrants:]).T
    return means


def _intervals(means: np.ndarray, observed_ranks: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Percentile intervals and rank stability (against the full data's ranks) from the
    resampled means [resamples, entrants]."""
    tail = (1.0 - confidence) / 2 * 100
    with np.errstate(all="ignore"):  # nanpercentile goes column by column: only where NaN is
        percentile = np.nanpercentile if np.isnan(means).any() else np.percentile
        low, high = percentile(means, [tail, 100 - tail], axis=0)
    stability = (ranks(means) == observed_ranks).mean(axis=0)
    return low, high, stability


def _means(totals: np.ndarray, counts: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, totals / np.where(counts > 0, counts, 1), np.nan)


def win_draw_loss(table: MatchTable, n_entrants: int) -> np.ndarray:
    """Counts [n_entrants, 3] of wins, draws and losses (per appearance)."""
    seated = table.seat_entrants >= 0
    with np.errstate(invalid="ignore"):
        best = np.nanmax(np.where(seated, table.seat_scores, -np.inf), axis=1, initial=-np.inf)
    top = seated & (table.seat_scores == best[:, None])
    outcome = np.where(top & (top.sum(axis=1) == 1)[:, None], 0, np.where(top, 1, 2))
    codes = table.seat_entrants[seated] * 3 + outcome[seated]
    return np.bincount(codes, minlength=n_entrants * 3).reshape(n_entrants, 3).astype(np.int64)


def elo(table: MatchTable, n_entrants: int, k: float) -> np.ndarray:
    """Elo ratings after every match in order (start 1500; see the module docstring)."""
    rating = [ELO_START] * n_entrants  # Python floats: the loop is sequential by nature
    width = table.seat_entrants.shape[1]
    present = (table.seat_entrants >= 0).sum(axis=1)
    steps = (k / np.maximum(present - 1, 1)).tolist()
    pairs = [(s, t) for s in range(width) for t in range(s + 1, width)]
    entrants, scores = table.seat_entrants.tolist(), table.seat_scores.tolist()
    if width == 2:  # duels: the same arithmetic without the per-match bookkeeping (3x faster)
        for (a, b), (first, second), step in zip(entrants, scores, steps):
            if a < 0 or b < 0 or a == b:
                continue
            expected = 1.0 / (1.0 + 10 ** ((rating[b] - rating[a]) / 400.0))
            change = step * ((1.0 if first > second else 0.5 if first == second else 0.0) - expected)
            rating[a] += change
            rating[b] -= change
        return np.array(rating)
    for m, seats in enumerate(entrants):
        step, points = steps[m], scores[m]
        delta: dict[int, float] = {}
        for s, t in pairs:
            a, b = seats[s], seats[t]
            if a < 0 or b < 0 or a == b:
                continue
            expected = 1.0 / (1.0 + 10 ** ((rating[b] - rating[a]) / 400.0))
            outcome = 1.0 if points[s] > points[t] else 0.5 if points[s] == points[t] else 0.0
            delta[a] = delta.get(a, 0.0) + step * (outcome - expected)
            delta[b] = delta.get(b, 0.0) - step * (outcome - expected)
        for e, d in delta.items():
            rating[e] += d
    return np.array(rating)


def payoff_matrix(table: MatchTable, n_entrants: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean score of row entrant per match against the column entrant (NaN if they never
    met), and the number of appearances behind each mean. In groups, the row's score
    counts against every other seat of the match."""
    totals = np.zeros(n_entrants * n_entrants)
    counts = np.zeros(n_entrants * n_entrants, dtype=np.int64)
    width = table.seat_entrants.shape[1]
    for s in range(width):
        for t in range(width):
            if s == t:
                continue
            row, col = table.seat_entrants[:, s], table.seat_entrants[:, t]
            met = (row >= 0) & (col >= 0)
            cell = row[met] * n_entrants + col[met]
            totals += np.bincount(cell, weights=table.seat_scores[met, s], minlength=n_entrants * n_entrants)
            counts += np.bincount(cell, minlength=n_entrants * n_entrants)
    shape = (n_entrants, n_entrants)
    return _means(totals.reshape(shape), counts.reshape(shape)), counts.reshape(shape)


def rate(table: MatchTable, n_entrants: int, resamples: int, confidence: float, elo_k: float, seed: int,
         mapper: Callable[..., Iterable[np.ndarray]] = map, blocks: Iterable[np.ndarray] | None = None) -> list[Rating]:
    """The ranking: one `Rating` per entrant, best first. `mapper` computes the bootstrap's
    blocks (see `bootstrap`); with a pool's `map` they run while this process does the rest.
    `blocks`: the bootstrap's `resample_blocks` of this table, started by the caller."""
    if blocks is None and table.n_matches:
        blocks = resample_blocks(table, resamples, seed, mapper)
    totals, appearances = table.totals()
    means = _means(totals, appearances)
    observed = ranks(means)
    wdl = win_draw_loss(table, n_entrants)
    ratings = elo(table, n_entrants, elo_k)
    per_round = _means(totals, table.totals(per_round=True)[1])
    if table.n_matches:
        assert blocks is not None
        low, high, stability = _intervals(np.concatenate(list(blocks)), observed, confidence)
    else:
        low = high = stability = np.full(n_entrants, np.nan)
    lines = [
        Rating(
            entrant=e, rank=int(observed[e]), matches=int(appearances[e]), mean=float(means[e]), low=float(low[e]),
            high=float(high[e]), rank_stability=float(stability[e]), wins=int(wdl[e, 0]), draws=int(wdl[e, 1]),
            losses=int(wdl[e, 2]), elo=float(ratings[e]), per_round=float(per_round[e]),
        )
        for e in range(n_entrants)
    ]
    return sorted(lines, key=lambda r: (r.rank, r.entrant))
