"""Nash equilibria of a stage game: pure ones by enumeration, mixed ones for two players.

The stage game is a payoff table [A]*N + [N] (`Game.stage_payoffs`). A joint action is a
pure equilibrium when no player gains by changing only its own action; they are found
for any number of players by one pass over the table per player. Mixed equilibria of a
two-player game come from nashpy's support enumeration (an optional dependency: the
`solve` extra); without nashpy they are reported as not computed. Support enumeration
finds every equilibrium of a nondegenerate game; a degenerate one (ties in the table)
may have a continuum of equilibria, of which it lists the extreme points it meets.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

#: payoffs closer than this count as equal (ties are best responses too)
TOL = 1e-9


@dataclass(frozen=True)
class Equilibrium:
    """One Nash equilibrium.

    Attributes:
        strategies: per player, the probability of each action (one 1.0 when pure).
        payoffs: per player, the expected payoff.
    """

    strategies: tuple[tuple[float, ...], ...]
    payoffs: tuple[float, ...]

    @property
    def pure(self) -> bool:
        return all(max(s) > 1 - 1e-9 for s in self.strategies)

    def describe(self, names: list[str]) -> str:
        """E.g. "(D, D)" or "(0.5 Heads + 0.5 Tails, ...)"."""
        parts = []
        for strategy in self.strategies:
            support = [(p, names[a]) for a, p in enumerate(strategy) if p > 1e-9]
            parts.append(support[0][1] if len(support) == 1 else " + ".join(f"{p:.4g} {n}" for p, n in support))
        return "(" + ", ".join(parts) + ")"


def pure_equilibria(table: np.ndarray) -> list[Equilibrium]:
    """Every pure Nash equilibrium of the payoff table [A]*N + [N], in joint-action order."""
    n = table.shape[-1]
    stable = np.ones(table.shape[:-1], dtype=bool)
    for player in range(n):
        payoff = table[..., player]
        stable &= payoff >= payoff.max(axis=player, keepdims=True) - TOL
    found = []
    for joint in zip(*np.nonzero(stable)):
        strategies = tuple(tuple(float(a == j) for a in range(table.shape[p])) for p, j in enumerate(joint))
        found.append(Equilibrium(strategies, tuple(float(x) for x in table[tuple(joint)])))
    return found


def mixed_available() -> bool:
    """Whether nashpy (the `solve` extra) is installed."""
    try:
        import nashpy  # noqa: F401
    except ImportError:
        return False
    return True


def mixed_equilibria(table: np.ndarray) -> list[Equilibrium]:
    """The equilibria of a two-player table [A, A, 2] in which some player mixes (the pure
    ones are `pure_equilibria`'s), by nashpy's support enumeration.

    Raises:
        ImportError: nashpy is not installed (`pip install 'mas-sim[solve]'`).
    """
    import nashpy

    if table.ndim != 3 or table.shape[-1] != 2:
        raise ValueError("mixed equilibria are computed for two-player games only")
    game = nashpy.Game(table[..., 0], table[..., 1])
    found: list[Equilibrium] = []
    with warnings.catch_warnings():  # degenerate games warn; what is found is still an equilibrium
        warnings.simplefilter("ignore")
        pairs = list(game.support_enumeration())
    for row, col in pairs:
        row, col = _clean(row), _clean(col)
        equilibrium = Equilibrium((tuple(row), tuple(col)), (float(row @ table[..., 0] @ col), float(row @ table[..., 1] @ col)))
        if not equilibrium.pure and not any(_same(equilibrium, e) for e in found):
            found.append(equilibrium)
    return found


def _clean(strategy: np.ndarray) -> np.ndarray:
    """Probabilities without float dust: tiny negatives and near-zeros are 0, renormalised."""
    strategy = np.where(np.abs(strategy) < 1e-12, 0.0, np.asarray(strategy, dtype=float))
    return strategy / strategy.sum()


def _same(a: Equilibrium, b: Equilibrium) -> bool:
    return all(np.allclose(x, y, atol=1e-9) for x, y in zip(a.strategies, b.strategies))
