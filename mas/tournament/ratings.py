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

from dataclasses import dataclass

import numpy as np

ELO_START = 1500.0


@dataclass(frozen=True)
class MatchTable:
    """Finished matches as arrays: `scores[m, e]` is the summed score of entrant `e` in
    match `m` and `appearances[m, e]` its number of seats there (0 when absent);
    `seat_entrants`/`seat_scores` list each match's seats in order (-1 / NaN padded);
    `rounds[m]` is the match's length."""

    scores: np.ndarray
    appearances: np.ndarray
    seat_entrants: np.ndarray
    seat_scores: np.ndarray
    rounds: np.ndarray

    @classmethod
    def from_rows(cls, rows: list[tuple[int, int, int, float, int]], n_entrants: int, self_play: str = "seats") -> "MatchTable":
        """Build from (match, seat, entrant, score, rounds) rows, ordered by match id;
        `self_play`: "seats" or "match" (see the module docstring)."""
        match_ids = sorted({r[0] for r in rows})
        row_of = {m: i for i, m in enumerate(match_ids)}
        width = max((r[1] for r in rows), default=0) + 1
        n = len(match_ids)
        scores = np.zeros((n, n_entrants))
        appearances = np.zeros((n, n_entrants))
        seat_entrants = np.full((n, width), -1, dtype=np.int64)
        seat_scores = np.full((n, width), np.nan)
        rounds = np.zeros(n)
        for match, seat, entrant, score, length in rows:
            i = row_of[match]
            scores[i, entrant] += score
            appearances[i, entrant] += 1
            seat_entrants[i, seat] = entrant
            seat_scores[i, seat] = score
            rounds[i] = length
        if self_play == "match":  # one appearance per match, at the mean of the entrant's seats
            several = appearances > 1
            scores[several] /= appearances[several]
            appearances[several] = 1
        elif self_play != "seats":
            raise ValueError(f"self_play: 'seats' or 'match', got {self_play!r}")
        return cls(scores, appearances, seat_entrants, seat_scores, rounds)


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


def bootstrap(table: MatchTable, resamples: int, confidence: float, generator: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Percentile intervals of each entrant's mean score per match, and rank stability.

    Returns:
        (low, high, stability), one value per entrant.
    """
    n_matches, n_entrants = table.scores.shape
    observed_ranks = ranks(_means(table.scores.sum(0), table.appearances.sum(0)))
    means = np.empty((resamples, n_entrants))
    chunk = max(1, min(200, 4_000_000 // max(n_matches, 1)))  # resamples at a time: bounded memory
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        # how often each match is drawn in a resample of n_matches: counts of uniform draws
        # (the multinomial counts, ~15x faster than `Generator.multinomial` over many matches)
        drawn = generator.integers(0, n_matches, size=(size, n_matches)) + (np.arange(size) * n_matches)[:, None]
        weights = np.bincount(drawn.ravel(), minlength=size * n_matches).reshape(size, n_matches)
        means[start : start + size] = _means(weights @ table.scores, weights @ table.appearances)
    tail = (1.0 - confidence) / 2 * 100
    with np.errstate(all="ignore"):
        low, high = np.nanpercentile(means, [tail, 100 - tail], axis=0)
    stability = (ranks(means) == observed_ranks).mean(axis=0)
    return low, high, stability


def _means(totals: np.ndarray, counts: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, totals / np.where(counts > 0, counts, 1), np.nan)


def win_draw_loss(table: MatchTable, n_entrants: int) -> np.ndarray:
    """Counts [n_entrants, 3] of wins, draws and losses (per appearance)."""
    out = np.zeros((n_entrants, 3), dtype=np.int64)
    best = np.nanmax(table.seat_scores, axis=1)
    n_best = (table.seat_scores == best[:, None]).sum(axis=1)
    for m, seats in enumerate(table.seat_entrants):
        for seat, entrant in enumerate(seats):
            if entrant < 0:
                continue
            top = table.seat_scores[m, seat] == best[m]
            out[entrant, 0 if top and n_best[m] == 1 else 1 if top else 2] += 1
    return out


def elo(table: MatchTable, n_entrants: int, k: float) -> np.ndarray:
    """Elo ratings after every match in order (start 1500; see the module docstring)."""
    rating = np.full(n_entrants, ELO_START)
    for m, seats in enumerate(table.seat_entrants):
        present = [(e, table.seat_scores[m, s]) for s, e in enumerate(seats) if e >= 0]
        step = k / max(len(present) - 1, 1)
        delta = np.zeros(n_entrants)
        for i, (a, score_a) in enumerate(present):
            for b, score_b in present[i + 1 :]:
                if a == b:
                    continue
                expected = 1.0 / (1.0 + 10 ** ((rating[b] - rating[a]) / 400.0))
                outcome = 1.0 if score_a > score_b else 0.5 if score_a == score_b else 0.0
                delta[a] += step * (outcome - expected)
                delta[b] -= step * (outcome - expected)
        rating += delta
    return rating


def payoff_matrix(table: MatchTable, n_entrants: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean score of row entrant per match against the column entrant (NaN if they never
    met), and the number of appearances behind each mean. In groups, the row's score
    counts against every other seat of the match."""
    totals = np.zeros((n_entrants, n_entrants))
    counts = np.zeros((n_entrants, n_entrants), dtype=np.int64)
    for m, seats in enumerate(table.seat_entrants):
        for s, row in enumerate(seats):
            if row < 0:
                continue
            for t, col in enumerate(seats):
                if t != s and col >= 0:
                    totals[row, col] += table.seat_scores[m, s]
                    counts[row, col] += 1
    return _means(totals, counts), counts


def rate(table: MatchTable, n_entrants: int, resamples: int, confidence: float, elo_k: float, generator: np.random.Generator) -> list[Rating]:
    """The ranking: one `Rating` per entrant, best first."""
    appearances = table.appearances.sum(0)
    means = _means(table.scores.sum(0), appearances)
    observed = ranks(means)
    if table.scores.shape[0]:
        low, high, stability = bootstrap(table, resamples, confidence, generator)
    else:
        low = high = stability = np.full(n_entrants, np.nan)
    wdl = win_draw_loss(table, n_entrants)
    ratings = elo(table, n_entrants, elo_k)
    per_round = _means((table.scores).sum(0), (table.appearances * table.rounds[:, None]).sum(0))
    lines = [
        Rating(
            entrant=e, rank=int(observed[e]), matches=int(appearances[e]), mean=float(means[e]), low=float(low[e]),
            high=float(high[e]), rank_stability=float(stability[e]), wins=int(wdl[e, 0]), draws=int(wdl[e, 1]),
            losses=int(wdl[e, 2]), elo=float(ratings[e]), per_round=float(per_round[e]),
        )
        for e in range(n_entrants)
    ]
    return sorted(lines, key=lambda r: (r.rank, r.entrant))
