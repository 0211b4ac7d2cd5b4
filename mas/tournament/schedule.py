"""Who plays whom: the list of matches of a tournament, fixed by its file and seed.

- Two-player games: a round robin over all pairs (and each entrant against a copy of
  itself with `self_play`). When seats are swapped, every pair also plays with seats
  exchanged, so each side of an asymmetric game is played equally often.
- Groups of k >= 3: each repetition draws groups with a seeded sampler so that every
  entrant plays exactly `matches_per_entrant` matches (default: the fewest that fill the
  groups exactly). When seats are swapped, every group is played in all k cyclic seat
  rotations.

Every match gets its own seed from the master seed, the repetition and the entrants in
seat order (`child_seed(seed, "match", repetition, occurrence, *names)`, where occurrence
counts a group seating met again in one repetition), so serial, parallel and resumed runs
play identical matches. The schedule is a `Schedule` of columns, built in numpy.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import overload

import numpy as np

from mas import registry
from mas.games.base import Capabilities
from mas.seeding import child_seed_columns, key, rng
from mas.tournament.spec import Tournament

@dataclass(frozen=True, slots=True)
class Match:
    """One scheduled match (a row of a `Schedule`): its index in the schedule, repetition,
    entrants by seat (indices into the roster) and seed."""

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


@dataclass(frozen=True, eq=False)
class Schedule:
    """Scheduled matches as columns: row `i` is the match with index `index[i]`,
    `repetition[i]`, entrants `seats[i]` (by seat) and `seed[i]`. A sequence of `Match`es
    (indexing a row gives one, a slice another `Schedule`) that costs a few arrays to build
    and to send to worker processes (36,300 `Match`es took 60 ms to pickle)."""

    index: np.ndarray
    repetition: np.ndarray
    seats: np.ndarray
    seed: np.ndarray

    @classmethod
    def of(cls, matches: "Iterable[Match] | Schedule") -> "Schedule":
        """The columns of `matches` (of one tournament: the same number of seats)."""
        if isinstance(matches, Schedule):
            return matches
        rows = list(matches)
        width = len(rows[0].seats) if rows else 0
        return cls(np.array([m.index for m in rows], dtype=np.int64), np.array([m.repetition for m in rows], dtype=np.int64),
                   np.array([m.seats for m in rows], dtype=np.int64).reshape(len(rows), width),
                   np.array([m.seed for m in rows], dtype=np.int64))

    def __len__(self) -> int:
        return len(self.index)

    @overload
    def __getitem__(self, item: int) -> Match: ...

    @overload
    def __getitem__(self, item: slice | np.ndarray) -> "Schedule": ...

    def __getitem__(self, item: int | slice | np.ndarray) -> "Match | Schedule":
        if isinstance(item, (slice, np.ndarray)):
            return Schedule(self.index[item], self.repetition[item], self.seats[item], self.seed[item])
        return Match(int(self.index[item]), int(self.repetition[item]), tuple(self.seats[item].tolist()), int(self.seed[item]))

    def __iter__(self) -> Iterator[Match]:
        for index, repetition, seats, seed in zip(self.index.tolist(), self.repetition.tolist(), self.seats.tolist(), self.seed.tolist()):
            yield Match(index, repetition, tuple(seats), seed)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Schedule):
            return NotImplemented
        return all(np.array_equal(a, b) for a, b in zip(
            (self.index, self.repetition, self.seats, self.seed), (other.index, other.repetition, other.seats, other.seed)))

    def without(self, done: Collection[int]) -> "Schedule":
        """The matches whose index is not in `done` (what a resumed run still plays)."""
        if not done:
            return self
        return self[~np.isin(self.index, np.fromiter(done, dtype=np.int64, count=len(done)))]


def build_schedule(tournament: Tournament) -> Schedule:
    """Every match of the tournament, in a fixed order (the order Elo ratings follow)."""
    spec = tournament.spec
    n, k = len(spec.entrants), tournament.group_size
    swap = swaps_seats(tournament)
    names = np.array([key(name) for name in tournament.names], dtype=np.int64)
    if k == 2:  # every pair (i <= j with self-play), in the same order each repetition
        first, second = np.triu_indices(n, k=0 if spec.self_play else 1)
        copies = np.where(swap & (first != second), 2, 1)  # a swapped pair: (i, j) then (j, i)
        flipped = np.zeros(int(copies.sum()), dtype=bool)
        flipped[(np.cumsum(copies) - copies)[copies == 2] + 1] = True
        a, b = np.repeat(first, copies), np.repeat(second, copies)
        one = np.column_stack([np.where(flipped, b, a), np.where(flipped, a, b)])
        seats = np.tile(one, (spec.repetitions, 1))
        repetition = np.repeat(np.arange(spec.repetitions), len(one))
        occurrence = np.zeros(len(seats), dtype=np.int64)  # a round robin's seatings are all different within a repetition
    else:
        seatings: list[tuple[int, tuple[int, ...]]] = []
        for rep in range(spec.repetitions):
            per_entrant = spec.matches_per_entrant or default_matches_per_entrant(n, k)
            for group in balanced_groups(n, k, per_entrant, rng(spec.seed, "groups", rep)):
                rotations = range(k) if swap and len(set(group)) > 1 else range(1)
                seatings.extend((rep, tuple(group[r:] + group[:r])) for r in rotations)
        seen: Counter[tuple[int, tuple[int, ...]]] = Counter()
        occurrences = []
        for seating in seatings:  # the same seating twice in a repetition gets fresh seeds
            occurrences.append(seen[seating])
            seen[seating] += 1
        seats = np.array([s for _, s in seatings], dtype=np.int64).reshape(len(seatings), k)
        repetition = np.array([r for r, _ in seatings], dtype=np.int64)
        occurrence = np.array(occurrences, dtype=np.int64)
    # = child_seed(spec.seed, "match", repetition, occurrence, *names in seat order), all at once
    seeds = child_seed_columns(spec.seed, ["match", repetition, occurrence, *(names[seats[:, s]] for s in range(k))])
    return Schedule(np.arange(len(seats), dtype=np.int64), repetition.astype(np.int64), seats.astype(np.int64), seeds)


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
