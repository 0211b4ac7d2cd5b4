"""Ecological dynamics: shares are conserved and converge where theory says they must."""

from __future__ import annotations

import numpy as np
import pytest

from mas.tournament.ecology import initial_counts, moran, replicator

# 200-round match scores (see test_classic_strategies): TFT v TFT 600, TFT v ALLD 199,
# ALLD v TFT 204, ALLD v ALLD 200
TFT_ALLD = np.array([[600.0, 199.0], [204.0, 200.0]])


def test_replicator_conserves_total_share() -> None:
    payoffs = np.random.default_rng(0).uniform(0, 5, size=(6, 6))
    shares = replicator(payoffs, np.arange(1, 7, dtype=float), 300)
    assert shares.shape == (301, 6)
    assert np.allclose(shares.sum(axis=1), 1.0, atol=1e-12) and (shares >= 0).all()
    assert shares[0] == pytest.approx(np.arange(1, 7) / 21)


def test_tit_for_tat_takes_over_from_always_defect() -> None:
    # TFT's fitness 600x + 199(1-x) beats ALLD's 204x + 200(1-x) whenever x > 1/397
    shares = replicator(TFT_ALLD, np.array([0.05, 0.95]), 200)
    assert np.all(np.diff(shares[:, 0]) >= 0) and shares[1, 0] > shares[0, 0]
    assert shares[-1, 0] > 0.999
    # below the threshold share 1/397, ALLD wins instead
    assert replicator(TFT_ALLD, np.array([0.001, 0.999]), 500)[-1, 1] > 0.999


def test_replicator_converges_to_the_mixed_equilibrium() -> None:
    # hawk-dove-like payoffs [[1, 3], [2, 1]]: equal fitness when x + 3(1-x) = 2x + (1-x),
    # i.e. x* = 2/3, which is stable
    payoffs = np.array([[1.0, 3.0], [2.0, 1.0]])
    for start in (0.1, 0.5, 0.95):
        shares = replicator(payoffs, np.array([start, 1 - start]), 400)
        assert shares[-1, 0] == pytest.approx(2 / 3, abs=1e-6)


def test_replicator_handles_negative_payoffs_and_extinct_strategies() -> None:
    # matching pennies shifted below zero: the shift keeps the interior fixed point (1/2, 1/2)
    pennies = np.array([[1.0, -1.0], [-1.0, 1.0]])
    assert replicator(pennies, np.array([0.5, 0.5]), 10)[-1] == pytest.approx([0.5, 0.5])
    shares = replicator(TFT_ALLD, np.array([0.0, 1.0]), 10)
    assert (shares[:, 0] == 0).all()  # an extinct strategy never comes back
    with pytest.raises(ValueError, match="missing entries"):
        replicator(np.array([[1.0, np.nan], [1.0, 1.0]]), np.array([1.0, 1.0]), 5)


def test_moran_conserves_population_and_stops_at_fixation() -> None:
    counts = moran(TFT_ALLD, np.array([5, 5]), 5000, np.random.default_rng(0))
    assert (counts.sum(axis=1) == 10).all() and (counts >= 0).all()
    final = counts[-1]
    assert sorted(final.tolist()) == [0, 10]
    fixed_at = int(np.argmax((counts == 10).any(axis=1)))
    assert (counts[fixed_at:] == final).all()


def test_moran_fixation_probability_matches_theory() -> None:
    # frequency-independent fitness r for the mutant and 1 for residents: a single mutant in a
    # population of N fixes with probability (1 - 1/r) / (1 - 1/r^N) (Moran 1958)
    population, r, runs = 8, 1.5, 1200
    payoffs = np.array([[r, r], [1.0, 1.0]])
    generator = np.random.default_rng(5)
    fixed = sum(moran(payoffs, np.array([1, population - 1]), 2000, generator)[-1, 0] == population for _ in range(runs))
    theory = (1 - 1 / r) / (1 - 1 / r**population)  # 0.3469
    assert fixed / runs == pytest.approx(theory, abs=3.5 * np.sqrt(theory * (1 - theory) / runs))
    # neutral drift: fixation probability 1/N
    neutral = sum(moran(np.ones((2, 2)), np.array([1, population - 1]), 2000, generator)[-1, 0] == population for _ in range(runs))
    assert neutral / runs == pytest.approx(1 / population, abs=3.5 * np.sqrt((1 / population) * (1 - 1 / population) / runs))


def test_initial_counts_round_to_the_population() -> None:
    assert initial_counts(np.array([1.0, 1.0, 1.0]), 10).tolist() == [4, 3, 3]
    assert initial_counts(np.array([0.5, 0.25, 0.25]), 8).tolist() == [4, 2, 2]
