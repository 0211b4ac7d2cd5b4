"""Who plays whom: round robins, seat swaps, self-play, balanced groups, match seeds."""

from __future__ import annotations

import copy
import itertools
from collections import Counter

import numpy as np
import pytest

from mas.tournament import parse_tournament
from mas.tournament.schedule import balanced_groups, build_schedule, default_matches_per_entrant, is_symmetric, swaps_seats
from tests.conftest import PD


def pd_tournament(n: int = 4, **settings) -> object:
    entrants = [{"name": f"e{i}", "policy": "tit_for_tat" if i % 2 else "always_defect"} for i in range(n)]
    return parse_tournament({"name": "t", "scenario": copy.deepcopy(PD), "entrants": entrants, **settings})


def asymmetric_pd(**settings) -> object:
    scenario = copy.deepcopy(PD)
    scenario["game"]["payoffs"]["D,C"] = [6, 0]  # the row player is tempted more
    return parse_tournament({"name": "t", "scenario": scenario, "entrants": [{"name": f"e{i}", "policy": "pavlov"} for i in range(4)], **settings})


def test_round_robin_plays_every_pair_once_per_repetition() -> None:
    schedule = build_schedule(pd_tournament(4, repetitions=2))
    assert len(schedule) == 12 and [m.index for m in schedule] == list(range(12))
    for repetition in (0, 1):
        pairs = [frozenset(m.seats) for m in schedule if m.repetition == repetition]
        assert sorted(pairs, key=sorted) == sorted((frozenset(p) for p in itertools.combinations(range(4), 2)), key=sorted)
    assert len({m.seed for m in schedule}) == 12  # repetitions of a pair get fresh seeds


def test_self_play_adds_each_entrant_against_itself() -> None:
    schedule = build_schedule(pd_tournament(4, self_play=True))
    assert len(schedule) == 10
    assert sorted(m.seats for m in schedule if len(set(m.seats)) == 1) == [(0, 0), (1, 1), (2, 2), (3, 3)]


def test_symmetry_decides_whether_seats_are_swapped() -> None:
    assert is_symmetric(pd_tournament()) and not swaps_seats(pd_tournament())
    assert not is_symmetric(asymmetric_pd()) and swaps_seats(asymmetric_pd())
    assert swaps_seats(pd_tournament(seats="swap")) and not swaps_seats(asymmetric_pd(seats="fixed"))


def test_asymmetric_game_plays_every_pair_on_both_sides() -> None:
    schedule = build_schedule(asymmetric_pd(self_play=True))
    seatings = Counter(m.seats for m in schedule)
    assert set(seatings) == {(i, j) for i in range(4) for j in range(4)}  # both orders, and self-play
    assert set(seatings.values()) == {1}  # self-play is not doubled
    assert len(build_schedule(asymmetric_pd(seats="fixed"))) == 6


def test_three_player_symmetry_is_read_from_the_table() -> None:
    def three_player(payoff_of) -> object:
        scenario = copy.deepcopy(PD)
        scenario["game"]["payoffs"] = {",".join(a): payoff_of(a) for a in itertools.product("CD", repeat=3)}
        del scenario["agents"]  # an inline base may leave its seats to the entrants
        entrants = [{"name": f"e{i}", "policy": "tit_for_tat"} for i in range(3)]
        return parse_tournament({"name": "t", "scenario": scenario, "entrants": entrants, "group_size": 3})

    def public_good(actions: tuple[str, ...]) -> list[float]:  # everyone shares the pot; cooperators pay 1
        pot = 1.5 * actions.count("C") / 3
        return [pot - (a == "C") for a in actions]

    assert is_symmetric(three_player(public_good))
    assert not is_symmetric(three_player(lambda a: [v + (i == 2) for i, v in enumerate(public_good(a))]))  # seat 2 gets a bonus


@pytest.mark.parametrize("n, k, per_entrant", [(7, 3, 3), (6, 3, 1), (5, 4, 4), (10, 5, 3), (4, 4, 2), (9, 2, 4)])
def test_balanced_groups_give_everyone_the_same_number_of_matches(n: int, k: int, per_entrant: int) -> None:
    for seed in range(20):
        groups = balanced_groups(n, k, per_entrant, np.random.default_rng(seed))
        assert len(groups) == n * per_entrant // k
        assert all(len(set(g)) == k == len(g) for g in groups)  # k distinct entrants per group
        assert Counter(e for g in groups for e in g) == dict.fromkeys(range(n), per_entrant)


def test_balanced_groups_are_fixed_by_the_seed() -> None:
    draw = lambda seed: balanced_groups(9, 3, 2, np.random.default_rng(seed))  # noqa: E731
    assert draw(1) == draw(1) and draw(1) != draw(2)
    with pytest.raises(ValueError, match="cannot fill groups"):
        balanced_groups(7, 3, 1, np.random.default_rng(0))


def test_group_tournament_schedule() -> None:
    entrants = [{"name": f"e{i}", "policy": "free_rider" if i % 2 else "conditional_cooperator"} for i in range(5)]
    base = {"name": "pg", "game": {"kind": "public_goods"}, "rounds": 4, "agents": [{"id": "p", "count": 3, "policy": "free_rider"}]}
    tournament = parse_tournament({"name": "g", "scenario": base, "entrants": entrants, "repetitions": 2, "seed": 4})
    assert default_matches_per_entrant(5, 3) == 3
    schedule = build_schedule(tournament)
    assert len(schedule) == 2 * 5  # 5 entrants x 3 matches / 3 seats, per repetition
    for repetition in (0, 1):
        counts = Counter(e for m in schedule if m.repetition == repetition for e in m.seats)
        assert counts == dict.fromkeys(range(5), 3)
    assert [m.seats for m in schedule if m.repetition == 0] != [m.seats for m in schedule if m.repetition == 1]
    rotated = build_schedule(parse_tournament({**tournament.to_dict(), "seats": "swap"}))
    assert len(rotated) == 3 * len(schedule)  # every group in its three cyclic seatings
    first = rotated[0].seats
    assert [m.seats for m in rotated[:3]] == [first, first[1:] + first[:1], first[2:] + first[:2]]


def test_schedule_is_a_function_of_the_file_and_seed() -> None:
    assert build_schedule(pd_tournament(5, seed=3)) == build_schedule(pd_tournament(5, seed=3))
    assert [m.seed for m in build_schedule(pd_tournament(5, seed=3))] != [m.seed for m in build_schedule(pd_tournament(5, seed=4))]


def test_child_seeds_equal_child_seed_path_by_path() -> None:
    """The schedule's seeds come from `child_seeds` (numpy's SeedSequence hash over many
    paths at once): every value must equal `child_seed`'s, or stored tournaments change."""
    import random

    from mas.seeding import child_seed, child_seeds

    draw = random.Random(0)
    parts = [0, 3, 2**32 - 1, 2**32, 2**40 + 7, 2**64 - 1, "match", "", "tit_for_tat_11"]
    paths = [tuple(draw.choice(parts) for _ in range(draw.randrange(0, 9))) for _ in range(400)]
    for master in (0, 1, 2**32 + 5, 2**63 + 9, -3):
        assert child_seeds(master, paths) == [child_seed(master, *path) for path in paths]


def test_child_seed_columns_equal_child_seed_row_by_row() -> None:
    from mas.seeding import child_seed, child_seed_columns, key

    draw = np.random.default_rng(0)
    names = ["tit_for_tat", "", "e3", "grudger_12"]
    rows = draw.integers(0, 2**32, size=(300, 2))
    rows[:5] = [[0, 0], [2**32 - 1, 1], [1, 2**32 - 1], [7, 0], [0, 7]]
    chosen = draw.integers(0, len(names), size=300)
    labels = np.array([key(name) for name in names])[chosen]
    for master in (0, 5, 2**32 + 1, 2**63 + 9, -3):
        seeds = child_seed_columns(master, ["match", rows[:, 0], 0, labels]).tolist()
        assert seeds == [child_seed(master, "match", int(rows[r, 0]), 0, names[chosen[r]]) for r in range(300)]
        seeds = child_seed_columns(master, [rows[:, 0], rows[:, 1], 2**40 + 3, "x"]).tolist()
        assert seeds == [child_seed(master, int(rows[r, 0]), int(rows[r, 1]), 2**40 + 3, "x") for r in range(300)]
    # a master per row, and values of two words (2**32 and more) hash as `child_seed` reads them
    masters = np.array([0, 3, 2**32, 2**63 - 1, 2**32 - 1, 12])
    wide = np.array([2**32, 0, 2**64 - 1, 5, 2**40 + 1, 2**32 - 1], dtype=np.uint64)
    assert child_seed_columns(masters, ["policy", wide, np.arange(6), "a"]).tolist() == [
        child_seed(int(m), "policy", int(w), e, "a") for m, w, e in zip(masters, wide, range(6))]
    with pytest.raises(ValueError, match="non-negative"):
        child_seed_columns(0, [np.array([-1])])


@pytest.mark.parametrize("tournament", [
    pd_tournament(5, seed=3), pd_tournament(4, self_play=True, repetitions=3, seed=2**40), pd_tournament(4, seats="swap", self_play=True),
    asymmetric_pd(self_play=True, repetitions=2)], ids=["pd", "self-play", "swap", "asymmetric"])
def test_match_seeds_follow_the_documented_path(tournament) -> None:
    """Each match's seed is `child_seed(seed, "match", repetition, 0, *names in seat order)`
    (round robins), and the order is every pair i <= j, (i, j) before (j, i)."""
    from mas.seeding import child_seed

    schedule = build_schedule(tournament)
    names, spec = tournament.names, tournament.spec
    pairs = [(i, j) for i in range(len(names)) for j in range(i if spec.self_play else i + 1, len(names))]
    one = [s for i, j in pairs for s in ((i, j), (j, i))[: 2 if swaps_seats(tournament) and i != j else 1]]
    assert [(m.index, m.repetition, m.seats) for m in schedule] == [
        (k, r, s) for k, (r, s) in enumerate((r, s) for r in range(spec.repetitions) for s in one)]
    assert [m.seed for m in schedule] == [child_seed(spec.seed, "match", m.repetition, 0, *(names[e] for e in m.seats)) for m in schedule]


def test_group_seatings_met_twice_in_a_repetition_get_fresh_seeds() -> None:
    from mas.seeding import child_seed

    entrants = [{"name": f"e{i}", "policy": "free_rider"} for i in range(4)]
    base = {"name": "pg", "game": {"kind": "public_goods"}, "rounds": 2, "agents": [{"id": "p", "count": 3, "policy": "free_rider"}]}
    tournament = parse_tournament({"name": "g", "scenario": base, "entrants": entrants, "repetitions": 2, "matches_per_entrant": 6, "seed": 4})
    schedule = build_schedule(tournament)
    seen: Counter = Counter()
    for m in schedule:
        occurrence = seen[(m.repetition, m.seats)]
        seen[(m.repetition, m.seats)] += 1
        assert m.seed == child_seed(4, "match", m.repetition, occurrence, *(f"e{e}" for e in m.seats))
    assert max(seen.values()) > 1  # the case this checks happened


def test_schedule_columns_act_as_a_sequence_of_matches() -> None:
    import pickle

    from mas.tournament.schedule import Match, Schedule

    schedule = build_schedule(pd_tournament(6, self_play=True, repetitions=2))
    matches = list(schedule)
    assert all(isinstance(m, Match) for m in matches) and schedule[3] == matches[3] and schedule[-1] == matches[-1]
    assert list(schedule[5:9]) == matches[5:9] and Schedule.of(matches) == schedule and Schedule.of(matches[2:4]) == schedule[2:4]
    done = {0, 4, 41, 10_000}
    assert list(schedule.without(done)) == [m for m in matches if m.index not in done]
    assert schedule.without(set()) is schedule and len(schedule.without(set(range(len(schedule))))) == 0
    assert pickle.loads(pickle.dumps(schedule)) == schedule
