"""Ecological tournaments: how a population of the entrants evolves when each strategy's
share grows with its score against the current population (Axelrod's ecological
analysis), from the round robin's payoff matrix `M[i, j]` (mean score of i against j).

- Replicator dynamics (discrete time, as in Axelrod 1984): fitness `f = M x` and
  `x_i' = x_i f_i / (x . f)`. Shares stay non-negative and sum to one; a strategy at
  zero share stays there.
- Moran process (a finite population of `N` individuals): each step one individual is
  born, chosen with probability proportional to its type's fitness (mean score against
  the other N - 1 individuals), and one dies, chosen uniformly; it stops when one type
  has taken over. Counts always sum to N.

Both need non-negative payoffs to read scores as fitness; a matrix with negative entries
is shifted so that its smallest entry is zero (this keeps the order of fitnesses and the
replicator's fixed points, not its speed).
"""

from __future__ import annotations

import numpy as np


def _fitness_matrix(payoffs: np.ndarray) -> np.ndarray:
    payoffs = np.asarray(payoffs, dtype=float)
    if payoffs.ndim != 2 or payoffs.shape[0] != payoffs.shape[1]:
        raise ValueError(f"payoff matrix must be square, got shape {payoffs.shape}")
    if not np.isfinite(payoffs).all():
        raise ValueError("payoff matrix has missing entries (every pair, self-play included, must have met)")
    low = payoffs.min()
    return payoffs - low if low < 0 else payoffs


def replicator(payoffs: np.ndarray, initial: np.ndarray, generations: int, tolerance: float = 0.0) -> np.ndarray:
    """Shares per generation, shape [generations + 1, n] (row 0 is `initial`, normalised).

    Stops early, repeating the last row, once no share moves by more than `tolerance`
    (0: never early)."""
    fitness_of = _fitness_matrix(payoffs)
    x = np.asarray(initial, dtype=float)
    if x.shape != (fitness_of.shape[0],) or (x < 0).any() or x.sum() <= 0:
        raise ValueError("initial shares must be one non-negative value per entrant with a positive total")
    x = x / x.sum()
    out = np.empty((generations + 1, len(x)))
    out[0] = x
    for g in range(1, generations + 1):
        fitness = fitness_of @ x
        average = x @ fitness
        if average <= 0:  # nobody scores anything: nothing changes
            out[g:] = x
            break
        new = x * fitness / average
        new /= new.sum()  # remove rounding drift
        out[g] = new
        if tolerance and np.abs(new - x).max() <= tolerance:
            out[g + 1 :] = new
            break
        x = new
    return out


def moran(payoffs: np.ndarray, initial_counts: np.ndarray, steps: int, generator: np.random.Generator) -> np.ndarray:
    """Counts per step, shape [steps + 1, n], until fixation (the last row repeats after
    one type has taken over) or `steps` birth-death events."""
    fitness_of = _fitness_matrix(payoffs)
    counts = np.asarray(initial_counts, dtype=np.int64).copy()
    size = int(counts.sum())
    if counts.shape != (fitness_of.shape[0],) or (counts < 0).any() or size < 2:
        raise ValueError("initial counts must be one non-negative count per entrant, at least 2 in all")
    out = np.empty((steps + 1, len(counts)), dtype=np.int64)
    out[0] = counts
    for step in range(1, steps + 1):
        if (counts == size).any():  # fixation
            out[step:] = counts
            break
        # mean score of one individual of each type against the other size - 1
        fitness = (fitness_of @ counts - np.diag(fitness_of)) / (size - 1)
        weight = np.cumsum(counts * fitness)
        if weight[-1] <= 0:  # nobody scores anything: births are uniform too
            weight = np.cumsum(counts).astype(float)
        birth_draw, death_draw = generator.random(2)
        # inverse-CDF draws; side="right" never picks a type of zero weight
        born = int(np.searchsorted(weight, birth_draw * weight[-1], side="right"))
        died = int(np.searchsorted(np.cumsum(counts), death_draw * size, side="right"))
        counts[born] += 1
        counts[died] -= 1
        out[step] = counts
    return out


def initial_counts(shares: np.ndarray, population: int) -> np.ndarray:
    """Whole counts summing to `population`, as close to `shares` as possible (largest
    remainders)."""
    shares = np.asarray(shares, dtype=float) / np.sum(shares)
    exact = shares * population
    counts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: population - counts.sum()]] += 1
    return counts
