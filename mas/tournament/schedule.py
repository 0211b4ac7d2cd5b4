"""Who plays whom: the list of matches of a tournament, fixed by its file and seed.

- Two-player games: a round robin over all pairs (and each entrant against a copy of
  itself with `self_play`). When seats are swapped, every pair also plays with seats
  exchanged, so each side of an asymmetric game is played equally often.
- Groups of k >= 3: each repetition draws groups with a seeded sampler so that every
  entrant plays exactly `matches_per_entrant` matches (default: the fewest that fill the
  groups exactly). When seats are swapped, every group is played in all k cyclic seat
  rotations.

Every match gets its own seed from the master seed, the repetition and the entrants in
seat order, so serial, parallel and resumed runs play identical matches.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from mas import registry
from mas.games.base import Capabilities
from mas.seeding import child_seeds, rng
from mas.tournament.spec import Tournament

@dataclass(frozen=True, slots=True)
class Match:
    """One scheduled match: its index in the schedule, repetition, entrants by seat
    (indices into the roster) and seed. Slotted: a schedule of 100,000 matches is a few
    MB in the process that writes the store."""

    index: int
    repetition: int
    seats: tuple[int, ...]
    seed: int


def game_capabilities(tournament: Tournament) -> Capabilities:
    """The capabilities of the tournament's game, played by `group_size` entrants."""
    return registry.make_game(tournament.base.game, tournament.group_size).capabilities


def is_symmetric(tournament: Tournament) -> bool:
    """Whether exchanging seats cannot change anything (the game declares it)."""
    return game_capabilities(tournament).symmetric


def swaps_seats(tournament: Tournament) -> bool:
    """Whether matches are also played with seats exchanged (the `seats` setting)."""
    mode = tournament.spec.seats
    return mode == "swap" or (mode == "auto" and not is_symmetric(tournament))


def default_matches_per_entrant(n_entrants: int, group_size: int) -> int:
    """The fewest matches per entrant that fill groups of `group_size` exactly."""
    return group_size // math.gcd(n_entrants, group_size)


def build_schedule(tournament: Tournament) -> list[Match]:
    """Every match of the tournament, in a fixed order (the order Elo ratings follow)."""
    spec = tournament.spec
    n, k = len(spec.entrants), tournament.group_size
    swap = swaps_seats(tournament)
    seatings: list[tuple[int, tuple[int, ...]]] = []
    if k == 2:  # every pair, in the same order each repetition
        pairs = [(i, j) for i in range(n) for j in range(i if spec.self_play else i + 1, n)]
        one = [seats for i, j in pairs for seats in ((i, j), (j, i))[: 2 if swap and i != j else 1]]
        seatings = [(repetition, seats) for repetition in range(spec.repetitions) for seats in one]
    for repetition in range(spec.repetitions if k > 2 else 0):
        per_entrant = spec.matches_per_entrant or default_matches_per_entrant(n, k)
        for group in balanced_groups(n, k, per_entrant, rng(spec.seed, "groups", repetition)):
            rotations = range(k) if swap and len(set(group)) > 1 else range(1)
            seatings.extend((repetition, tuple(group[r:] + group[:r])) for r in rotations)
    names = tournament.names
    if k == 2:  # a round robin's seatings are all different within a repetition
        paths = [("match", repetition, 0, names[a], names[b]) for repetition, (a, b) in seatings]
    else:
        paths = []
        seen: Counter[tuple[int, tuple[int, ...]]] = Counter()
        for repetition, seats in seatings:
            occurrence = seen[(repetition, seats)]  # the same seating twice in a repetition gets fresh seeds
            seen[(repetition, seats)] += 1
            paths.append(("match", repetition, occurrence, *(names[e] for e in seats)))
    seeds = child_seeds(spec.seed, paths)  # = child_seed(spec.seed, *path), all at once
    return [Match(index, repetition, seats, seed) for index, ((repetition, seats), seed) in enumerate(zip(seatings, seeds))]


def balanced_groups(n: int, k: int, per_entrant: int, generator: np.random.Generator) -> list[tuple[int, ...]]:
    """Groups of k distinct entrants out of n in which every entrant appears exactly
    `per_entrant` times, drawn at random.

    Greedy on the remaining quotas: each group takes the k entrants with the most matches
    still to play, ties broken by a random priority. With equal quotas the remaining
    counts never differ by more than one, so this never gets stuck. Seat order within a
    group and the order of the groups are shuffled.
    """
    if (n * per_entrant) % k or k > n:
        raise ValueError(f"{n} entrants x {per_entrant} matches cannot fill groups of {k} exactly")
    remaining = np.full(n, per_entrant)
    groups: list[tuple[int, ...]] = []
    for _ in range(n * per_entrant // k):
        priority = generator.random(n)
        order = np.lexsort((priority, -remaining))  # most remaining first, random among equals
        chosen = order[:k]
        remaining[chosen] -= 1
        groups.append(tuple(int(e) for e in generator.permutation(chosen)))
    return [groups[i] for i in generator.permutation(len(groups))]
