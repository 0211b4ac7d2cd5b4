"""Ratings on constructed examples whose answers are known: bootstrap intervals, rank
stability, win/draw/loss, Elo and the payoff matrix."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from mas.tournament.ratings import (
    RESAMPLES_PER_BLOCK,
    MatchTable,
    bootstrap,
    elo,
    payoff_matrix,
    ranks,
    rate,
    resample_blocks,
    win_draw_loss,
)


def table_of(matches: list[list[tuple[int, float]]], n_entrants: int, rounds: int = 10) -> MatchTable:
    """Matches given as [(entrant, score) per seat]."""
    rows = [(m, seat, e, s, rounds) for m, seats in enumerate(matches) for seat, (e, s) in enumerate(seats)]
    return MatchTable.from_rows(rows, n_entrants)


def test_identical_matches_give_point_intervals_and_certain_ranks() -> None:
    table = table_of([[(0, 3.0), (1, 1.0)]] * 30, 2)
    low, high, stability = bootstrap(table, 500, 0.95, 0)
    assert list(low) == list(high) == [3.0, 1.0]
    assert list(stability) == [1.0, 1.0]


def test_interval_of_a_fair_coin_matches_the_normal_approximation() -> None:
    # 400 matches, entrant 0 scores 0 or 1 in equal numbers: the bootstrap distribution of
    # its mean is close to normal with sd sqrt(0.25 / 400) = 0.025, so the 95% percentile
    # interval is 0.5 -/+ 1.96 x 0.025 = [0.451, 0.549]
    table = table_of([[(0, float(m % 2)), (1, 0.0)] for m in range(400)], 2)
    low, high, _ = bootstrap(table, 4000, 0.95, 1)
    assert low[0] == pytest.approx(0.451, abs=0.006) and high[0] == pytest.approx(0.549, abs=0.006)
    low90, high90, _ = bootstrap(table, 4000, 0.90, 1)
    assert high90[0] - low90[0] == pytest.approx(2 * 1.645 * 0.025, abs=0.008)


def test_bootstrap_blocks_give_the_same_intervals_on_a_worker_pool_and_in_order() -> None:
    # the resamples come in fixed seeded blocks: a process pool's map gives exactly what
    # builtin map does, and the first blocks do not change when more resamples are asked for
    from concurrent.futures import ProcessPoolExecutor

    scores = np.random.default_rng(9).normal(size=(300, 3))
    table = table_of([[(e, float(scores[m, e])) for e in range(3)] for m in range(300)], 3)
    resamples = 2 * RESAMPLES_PER_BLOCK + 7  # a short last block
    here = bootstrap(table, resamples, 0.9, 5)
    with ProcessPoolExecutor(2) as pool:
        pooled = bootstrap(table, resamples, 0.9, 5, pool.map)
    assert all(np.array_equal(a, b) for a, b in zip(here, pooled))
    blocks = list(resample_blocks(table, resamples, 5))
    assert [len(b) for b in blocks] == [RESAMPLES_PER_BLOCK, RESAMPLES_PER_BLOCK, 7]
    fewer = list(resample_blocks(table, RESAMPLES_PER_BLOCK, 5))
    assert np.array_equal(fewer[0], blocks[0])
    assert not np.array_equal(blocks[0], blocks[1])  # each block its own stream
    assert not np.array_equal(blocks[0], next(iter(resample_blocks(table, RESAMPLES_PER_BLOCK, 6))))


def test_interval_agrees_with_scipy_bootstrap() -> None:
    scores = np.random.default_rng(7).gamma(2.0, 50.0, size=60)
    table = table_of([[(0, float(s)), (1, 0.0)] for s in scores], 2)
    low, high, _ = bootstrap(table, 20000, 0.95, 2)
    reference = stats.bootstrap((scores,), np.mean, method="percentile", n_resamples=20000, random_state=3).confidence_interval
    width = reference.high - reference.low
    assert low[0] == pytest.approx(reference.low, abs=0.03 * width)
    assert high[0] == pytest.approx(reference.high, abs=0.03 * width)


def test_rank_stability_equals_the_exact_bootstrap_probability() -> None:
    # three matches; every entrant misses one. Means: e0 (3+1)/2 = 2, e1 (0+4)/2 = 2, e2 (5+2)/2 = 3.5,
    # so ranks are e2 1st and e0, e1 tied 2nd. Enumerate all 27 equally likely resamples exactly.
    matches = [[(0, 3.0), (1, 0.0)], [(0, 1.0), (2, 5.0)], [(1, 4.0), (2, 2.0)]]
    table = table_of(matches, 3)
    observed = ranks(np.array([2.0, 2.0, 3.5]))
    assert list(observed) == [2, 2, 1]
    kept = np.zeros(3)
    for draw in itertools.product(range(3), repeat=3):
        weights = np.bincount(draw, minlength=3)
        with np.errstate(invalid="ignore"):
            means = (weights @ table.scores) / (weights @ table.appearances)
        kept += ranks(means) == observed
    exact = kept / 27
    _, _, stability = bootstrap(table, 40000, 0.95, 4)
    assert stability == pytest.approx(exact, abs=0.01)  # Monte Carlo sd <= 0.0025
    assert 0 < exact.min() and exact.max() < 1


def test_ranks_share_ties_and_put_missing_last() -> None:
    assert list(ranks(np.array([1.0, 3.0, 3.0, np.nan, 0.5]))) == [3, 1, 1, 5, 4]


def test_win_draw_loss() -> None:
    matches = [
        [(0, 3.0), (1, 1.0)],  # 0 wins
        [(0, 2.0), (1, 2.0)],  # draw
        [(0, 5.0), (1, 5.0), (2, 1.0)],  # 0 and 1 share the top: draws; 2 loses
        [(2, 4.0), (2, 4.0)],  # self-play: two draws for 2
    ]
    assert win_draw_loss(table_of(matches, 3), 3).tolist() == [[1, 2, 0], [0, 2, 1], [0, 2, 1]]


def test_elo_updates() -> None:
    one = table_of([[(0, 3.0), (1, 1.0)]], 2)
    assert elo(one, 2, 16).tolist() == [1508.0, 1492.0]  # expected 0.5: +/- 16 x 0.5
    two = table_of([[(0, 3.0), (1, 1.0)]] * 2, 2)
    expected = 1 / (1 + 10 ** ((1492 - 1508) / 400))  # 0.523 for the now stronger player
    assert elo(two, 2, 16)[0] == pytest.approx(1508 + 16 * (1 - expected))
    # a three-player match weighs like one duel: step k / 2 per pair; ratings are conserved
    group = table_of([[(0, 9.0), (1, 5.0), (2, 1.0)]], 3)
    assert elo(group, 3, 16).tolist() == [1508.0, 1500.0, 1492.0]
    assert elo(table_of([[(0, 1.0), (0, 2.0)]], 1), 1, 16).tolist() == [1500.0]  # self-play changes nothing


def test_payoff_matrix_and_rate() -> None:
    matches = [
        [(0, 3.0), (1, 1.0)],
        [(0, 5.0), (1, 1.0)],
        [(1, 2.0), (0, 0.0)],  # seats exchanged
        [(2, 3.0), (2, 5.0)],  # self-play: both seats count
    ]
    table = table_of(matches, 3, rounds=4)
    payoff, counts = payoff_matrix(table, 3)
    assert payoff[0, 1] == pytest.approx(8 / 3) and payoff[1, 0] == pytest.approx(4 / 3)
    assert payoff[2, 2] == 4.0 and np.isnan(payoff[0, 2]) and counts[0, 1] == 3
    lines = rate(table, 3, 200, 0.95, 16, 0)
    assert [(r.entrant, r.rank, r.matches) for r in lines] == [(2, 1, 2), (0, 2, 3), (1, 3, 3)]
    assert lines[1].mean == pytest.approx(8 / 3) and lines[1].per_round == pytest.approx(8 / 12)
    assert lines[0].low <= lines[0].mean <= lines[0].high


def test_self_play_counts_once_per_seat_or_once_per_match() -> None:
    # entrant 0 plays itself (3 and 5) and entrant 1 (score 2)
    matches = [[(0, 3.0), (0, 5.0)], [(0, 2.0), (1, 1.0)]]
    seats = table_of(matches, 2)
    rows = [(m, seat, e, s, 10) for m, ms in enumerate(matches) for seat, (e, s) in enumerate(ms)]
    once = MatchTable.from_rows(rows, 2, self_play="match")
    # per seat: (3 + 5 + 2) / 3 appearances; per match (the axelrod library): (4 + 2) / 2
    assert seats.scores[:, 0].sum() / seats.appearances[:, 0].sum() == pytest.approx(10 / 3)
    assert once.scores[:, 0].sum() / once.appearances[:, 0].sum() == pytest.approx(3.0)
    assert rate(once, 2, 50, 0.95, 16, 0)[0].mean == pytest.approx(3.0)
    with pytest.raises(ValueError, match="self_play"):
        MatchTable.from_rows(rows, 2, self_play="twice")


def test_elo_of_duels_equals_the_general_path_bit_for_bit() -> None:
    generator = np.random.default_rng(3)
    n = 500
    entrants = np.stack([generator.integers(0, 6, n), generator.integers(0, 6, n)], axis=1)
    entrants[::40, 1] = entrants[::40, 0]  # some self-play
    scores = generator.integers(0, 4, (n, 2)).astype(float)  # ties too
    duels = MatchTable(entrants, scores, np.full(n, 10.0), 6)
    padded = MatchTable(np.column_stack([entrants, np.full(n, -1)]), np.column_stack([scores, np.full(n, np.nan)]),
                        np.full(n, 10.0), 6)  # a third, empty seat: the general loop
    fast, general = elo(duels, 6, 16.0), elo(padded, 6, 16.0)
    assert np.array_equal(fast, general) and len(set(fast.tolist())) == 6
