"""Batched tournaments: every match played as one copy of a shared engine gives exactly
the result of that match played alone (per-round actions, scores, rounds, cooperation,
messages), whatever the game: the classic roster, a public-goods tournament in groups of
three, matches of different lengths (continuation draws) and a game with chance."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from mas.tournament import load_tournament, parse_tournament
from mas.tournament.play import MatchPlayer
from mas.tournament.schedule import build_schedule

CLASSIC = Path("scenarios/tournaments/axelrod_classic.yaml")


def both_ways(tournament) -> tuple[list, list]:
    player = MatchPlayer(tournament)
    assert player.batchable
    schedule = build_schedule(tournament)
    return [player.play(m) for m in schedule], player.play_many(schedule)


def assert_identical(alone: list, batched: list) -> None:
    assert len(alone) == len(batched)
    for one, many in zip(alone, batched):
        assert one == many, f"match {one.match} differs"


def classic(**changes) -> object:
    data = copy.deepcopy(load_tournament(CLASSIC).to_dict())
    data.update(format="round_robin", **changes)
    return parse_tournament(data)


def test_the_classic_roster_batched_equals_one_match_at_a_time() -> None:
    alone, batched = both_ways(classic(repetitions=1, rounds=40))
    assert_identical(alone, batched)
    assert len({m.actions for m in batched}) > 40  # the matches really differ from each other


def test_parameter_variants_share_a_rule_and_each_plays_its_own_value() -> None:
    entrants = [{"name": f"{kind}_{int(v * 10)}", "policy": {"type": kind, key: v}}
                for kind, key in (("generous_tit_for_tat", "generosity"), ("random", "p"), ("joss", "sneakiness"))
                for v in (0.0, 0.3, 1.0)] + [{"name": "tit_for_tat", "policy": "tit_for_tat"}]
    tournament = classic(entrants=entrants, repetitions=1, rounds=30)
    alone, batched = both_ways(tournament)
    assert_identical(alone, batched)
    by_entrant: dict[int, list[str]] = {}
    for result in batched:
        for entrant, actions in zip(result.seats, result.actions):
            by_entrant.setdefault(entrant, []).append(actions)
    plays = {tournament.names[e]: "".join(a) for e, a in by_entrant.items()}
    assert set(plays["random_0"]) == {"D"} and set(plays["random_10"]) == {"C"}  # p per row, not the first spec's
    assert 0.15 < plays["random_3"].count("C") / len(plays["random_3"]) < 0.45
    assert "D" not in plays["generous_tit_for_tat_10"] and "D" in plays["generous_tit_for_tat_0"]
    # nine variants of three strategies, one rule each, and tit for tat's
    from mas.episode import EpisodeEngine

    schedule = build_schedule(tournament)
    engine = EpisodeEngine(tournament.match_scenario(schedule[0].seats), len(schedule), batch_policies=True,
                           copy_agents=[tournament.match_scenario(m.seats).agents for m in schedule])
    assert engine._batcher is not None and len(engine._batcher.rules) == 4


def test_matches_of_different_lengths_mask_out_and_stay_identical() -> None:
    tournament = classic(repetitions=1, rounds={"continuation": 0.9, "max": 60})
    alone, batched = both_ways(tournament)
    assert len({m.rounds for m in batched}) > 5  # lengths differ: copies finished at different rounds
    assert_identical(alone, batched)


def test_a_public_goods_tournament_in_groups_batched_equals_one_at_a_time() -> None:
    entrants = [
        {"name": "cc", "policy": "conditional_cooperator"},
        {"name": "punisher", "policy": {"type": "conditional_cooperator", "punish_free_riders": True, "initial": 0.5}},
        {"name": "fr", "policy": "free_rider"},
        {"name": "coin", "policy": "random"},
        {"name": "fixed", "policy": {"type": "fixed_action", "action": "contribute 5 / punish player 2"}},
    ]
    base = {"name": "pg", "game": {"kind": "public_goods", "punishment": True}, "rounds": 6,
            "agents": [{"id": "p", "count": 3, "policy": "free_rider"}]}
    tournament = parse_tournament({"name": "g", "scenario": base, "entrants": entrants, "repetitions": 3,
                                   "matches_per_entrant": 6, "seed": 4})
    alone, batched = both_ways(tournament)
    assert_identical(alone, batched)
    assert len({m.scores for m in batched}) > 5


def test_a_game_with_chance_and_talkers_batched_equals_one_at_a_time() -> None:
    # the signalling game draws a target every round: copies use their own generators; the
    # speaker and listener read and send messages, so they decide copy by copy in the batch
    entrants = [{"name": "honest", "policy": {"type": "honest_speaker", "message": "I say $action"}}, {"name": "literal", "policy": "literal_listener"},
                {"name": "coin", "policy": "random"}]
    base = {"name": "s", "game": {"kind": "signalling", "targets": ["red", "green", "blue"]}, "rounds": 8,
            "agents": [{"id": "speaker", "policy": "honest_speaker"}, {"id": "listener", "policy": "literal_listener"}],
            "comms": {"mode": "broadcast", "talk_rounds": 1}}
    tournament = parse_tournament({"name": "sig", "scenario": base, "entrants": entrants, "repetitions": 2, "seed": 9})
    alone, batched = both_ways(tournament)
    assert_identical(alone, batched)
    assert any(m.messages for m in batched)


def test_a_roster_with_a_language_model_plays_in_fixed_blocks_of_32_and_one_with_a_checkpoint_match_by_match() -> None:
    from mas.tournament.batch import fixed_batches, max_copies

    data = copy.deepcopy(load_tournament(CLASSIC).to_dict())
    assert not fixed_batches(parse_tournament(data))  # scripted strategies: exact in any batch
    llm = {**data, "entrants": [*data["entrants"], {"name": "llm", "policy": {
        "type": "llm", "backend": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m"}}}]}
    assert MatchPlayer(parse_tournament(llm)).batchable and fixed_batches(parse_tournament(llm))
    assert max_copies(parse_tournament(llm)) == 32
    trained = {**data, "entrants": [*data["entrants"], {"name": "q", "policy": {"type": "checkpoint", "path": "q.pt"}}]}
    assert not MatchPlayer(parse_tournament(trained)).batchable and max_copies(parse_tournament(trained)) == 0


@pytest.mark.parametrize("size", [1, 7])
def test_any_chunking_gives_the_same_results(size: int) -> None:
    tournament = classic(repetitions=1, rounds=25)
    player = MatchPlayer(tournament)
    schedule = build_schedule(tournament)
    whole = player.play_many(schedule)
    pieces = [r for start in range(0, len(schedule), size) for r in player.play_many(schedule[start : start + size])]
    assert_identical(whole, pieces)
    assert np.isclose(sum(sum(r.scores) for r in whole), sum(sum(r.scores) for r in pieces))
