"""Tournament files: valid ones load, bad ones give one line naming the file, field and fix."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mas.tournament import TournamentError, load_tournament, parse_tournament
from tests.conftest import PD

CLASSIC = Path("scenarios/tournaments/axelrod_classic.yaml")

BASE = {
    "name": "mini",
    "scenario": copy.deepcopy(PD),
    "rounds": 5,
    "entrants": [
        {"name": "tft", "policy": "tit_for_tat"},
        {"name": "alld", "policy": "always_defect"},
        {"name": "allc", "policy": "always_cooperate"},
    ],
}


def write(tmp_path: Path, data: object, name: str = "t.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def error_of(tmp_path: Path, data: object) -> str:
    with pytest.raises(TournamentError) as info:
        load_tournament(write(tmp_path, data))
    message = str(info.value)
    assert "\n" not in message
    return message


def test_classic_file_loads_with_the_base_scenario_resolved() -> None:
    tournament = load_tournament(CLASSIC)
    assert len(tournament.names) == 12 and tournament.group_size == 2
    assert tournament.rounds == 200 and tournament.spec.repetitions == 5
    assert tournament.seat_ids == ("alice", "bob")  # the base scenario's neutral ids
    assert tournament.base.game.payoffs == {"C,C": [3, 3], "C,D": [0, 5], "D,C": [5, 0], "D,D": [1, 1]}
    # the stored form is self-contained: parsing it gives the same tournament
    again = parse_tournament(tournament.to_dict())
    assert again.to_dict() == tournament.to_dict()


@pytest.mark.parametrize("path", sorted(Path("scenarios/tournaments").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_tournament_file_is_valid(path: Path) -> None:
    tournament = load_tournament(path)
    assert tournament.spec.name == path.stem and len(tournament.names) >= 7


def test_match_scenario_seats_the_entrants(tmp_path: Path) -> None:
    tournament = load_tournament(write(tmp_path, BASE))
    scenario = tournament.match_scenario((2, 0))
    assert [a.policy.type for a in scenario.agents] == ["always_cooperate", "tit_for_tat"]
    assert scenario.agent_ids == ["a", "b"] and scenario.rounds == 5


def test_inline_base_without_agents_uses_player_seats(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    del data["scenario"]["agents"]
    tournament = load_tournament(write(tmp_path, data))
    assert tournament.seat_ids == ("player_1", "player_2")


def test_relative_scenario_path_is_found_beside_the_file(tmp_path: Path) -> None:
    (tmp_path / "games").mkdir()
    write(tmp_path, PD, "games/pd.yaml")
    data = {**copy.deepcopy(BASE), "scenario": "games/pd.yaml"}
    assert load_tournament(write(tmp_path, data)).base.name == "pd"


@pytest.mark.parametrize(
    "change, fragments",
    [
        ({"repetitons": 3}, ["repetitons: unknown key 'repetitons' (did you mean 'repetitions'?)"]),
        ({"entrants": [{"name": "a", "policy": "tit_for_tatt"}, {"name": "b", "policy": "pavlov"}]},
         ["entrants.0.policy: unknown policy 'tit_for_tatt' (did you mean 'tit_for_tat'?)"]),
        ({"entrants": [{"name": "a", "policy": "tit_for_tat"}, {"name": "b", "policy": {"type": "joss", "sneakyness": 0.2}}]},
         ["entrants.1.policy.sneakyness: unknown key", "did you mean 'sneakiness'?"]),
        ({"entrants": [{"name": "a", "policy": "tit_for_tat"}, {"name": "b", "policy": {"type": "fixed_quota", "amount": 1}}]},
         ["entrants.1.policy: fixed_quota cannot play this game: needs a game that offers amounts and capacity (this normal_form game does not)"]),
        ({"entrants": [{"name": "a", "policy": "pavlov"}, {"name": "a", "policy": "tit_for_tat"}]}, ["entrant names must be unique; repeated: ['a']"]),
        ({"entrants": [{"name": "solo", "policy": "pavlov"}]}, ["entrants: List should have at least 2 items"]),
        ({"entrants": [{"name": "has space", "policy": "pavlov"}, {"name": "b", "policy": "pavlov"}]}, ["entrants.0.name:"]),
        ({"format": "ecologic"}, ["format: unknown format 'ecologic' (did you mean 'ecological'?)"]),
        ({"format": {"kind": "ecological"}}, ["ecological tournaments need a two-player game and self_play: true"]),
        ({"format": {"kind": "ecological", "initial": {"tft": 1, "nobody": 1}}, "self_play": True}, ["format.initial: unknown entrant(s) ['nobody']"]),
        ({"repetitions": 0}, ["repetitions: Input should be greater than or equal to 1"]),
        ({"rounds": {"continuation": 1.5}}, ["rounds.continuation: Input should be less than 1"]),
        ({"group_size": 4}, ["group_size: the game cannot be played by 4 players"]),
        ({"matches_per_entrant": 2}, ["matches_per_entrant: applies to groups of 3 or more"]),
        ({"scenario": "no_such_builtin"}, ["scenario: unknown scenario 'no_such_builtin'"]),
        ({"scenario": "missing.yaml"}, ["missing.yaml: no such scenario file"]),
        ({"seats": "sometimes"}, ["seats: Input should be 'auto', 'swap' or 'fixed'"]),
    ],
)
def test_bad_tournament_files_give_one_line_naming_the_field(tmp_path: Path, change: dict, fragments: list[str]) -> None:
    message = error_of(tmp_path, {**copy.deepcopy(BASE), **change})
    assert message.startswith(str(tmp_path / "t.yaml"))
    for fragment in fragments:
        assert fragment in message, message


def test_bad_inline_base_scenario_names_its_field(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["scenario"]["game"]["payoffs"]["C,C"] = [3]
    message = error_of(tmp_path, data)
    assert "scenario: game:" in message and "payoffs" in message


def test_topology_naming_base_agents_works_only_while_the_seats_keep_their_ids(tmp_path: Path) -> None:
    base = {
        "name": "pg", "game": {"kind": "public_goods"}, "rounds": 4,
        "agents": [{"id": "p", "count": 4, "policy": "free_rider"}],
        "comms": {"mode": "broadcast", "topology": {"kind": "star", "center": "p_1"}},
    }
    entrants = [{"name": f"e{i}", "policy": "free_rider" if i % 2 else "conditional_cooperator"} for i in range(4)]
    data = {"name": "groups", "scenario": base, "entrants": entrants}
    assert load_tournament(write(tmp_path, data)).seat_ids == ("p_0", "p_1", "p_2", "p_3")
    data["group_size"] = 3  # seats become player_1..3: the star's centre p_1 no longer exists
    assert "scenario: comms.topology:" in error_of(tmp_path, data)


def test_malformed_and_missing_files(tmp_path: Path) -> None:
    message = error_of(tmp_path, "name: x\nentrants: [\n")
    assert "malformed YAML" in message and "t.yaml:" in message
    assert "expected a mapping" in error_of(tmp_path, "- just\n- a list\n")
    with pytest.raises(TournamentError, match="no such tournament file"):
        load_tournament(tmp_path / "absent.yaml")


def mas(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "160"}
    return subprocess.run([sys.executable, "-m", "mas.cli", *args], capture_output=True, text=True, env=env, timeout=120)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_cli_bad_input_is_one_line(tmp_path: Path) -> None:
    bad = write(tmp_path, {**copy.deepcopy(BASE), "repetitons": 2})
    assert_one_line_error(mas("tournament", str(bad), "--no-progress", "--out", str(tmp_path / "r")), "did you mean 'repetitions'?")
    assert not (tmp_path / "r").exists()
    assert_one_line_error(mas("tournament", "--resume", str(tmp_path / "nothing")), "no tournament found")
    assert_one_line_error(mas("tournament"), "give a tournament file, or --resume DIR")
    assert_one_line_error(mas("tournament", str(CLASSIC), "--workers", "0"), "--workers", "expected a number >= 1")
    assert_one_line_error(mas("tournament", str(CLASSIC), "--backend", "mpi"), "invalid choice: 'mpi'")
