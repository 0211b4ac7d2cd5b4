"""Adversarial scenario and tournament files: every count has a bound checked before
anything is allocated, numbers are finite, YAML is strict, and errors stay one short line."""

from __future__ import annotations

import copy
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
import yaml

import mas
from mas.errors import ScenarioError
from mas.tournament.spec import TournamentError, load_tournament
from tests.conftest import PD

ROOT = Path(__file__).resolve().parent.parent


def _error(load, path: Path, max_mib: float = 64, max_seconds: float = 10.0) -> str:
    """The one-line error of loading `path`, checked to be fast and small."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ScenarioError) as info:
            load(path)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert time.perf_counter() - start < max_seconds
    assert peak < max_mib * 2**20, f"peaked at {peak / 2**20:.0f} MiB"
    message = str(info.value)
    assert "\n" not in message and len(message) < 2000, message[:300]
    return message


def _scenario(name: str) -> dict:
    return yaml.safe_load((ROOT / "scenarios" / f"{name}.yaml").read_text())


# ----- counts and sizes ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["commons", "public_goods"])
def test_a_billion_levels_fail_fast_naming_the_bound(write_scenario, name: str) -> None:
    data = _scenario(name)
    data["game"]["levels"] = 1_000_000_000
    message = _error(mas.load_scenario, write_scenario(data))
    assert "game.levels: Input should be less than or equal to 1001" in message


def test_thousands_of_agents_are_refused_before_they_are_built(write_scenario) -> None:
    data = copy.deepcopy(PD)
    data["agents"] = [{"id": f"g{i}", "policy": "random", "count": 1000} for i in range(3)]
    assert "agents: at most 1024 agents, found 3000" in _error(mas.load_scenario, write_scenario(data))


def test_many_agents_with_comms_off_build_no_complete_graph(write_scenario) -> None:
    data = _scenario("commons")
    data["agents"] = [{"id": "f", "policy": "random", "count": 1000}]
    data["comms"] = {"mode": "off"}
    data["rounds"] = 10
    tracemalloc.start()
    scenario = mas.load_scenario(write_scenario(data))
    env = mas.make_env(scenario)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert env.graph.number_of_nodes() == 1000 and env.graph.number_of_edges() == 0
    assert peak < 100 * 2**20, f"peaked at {peak / 2**20:.0f} MiB"  # a complete graph alone is ~250 MB


def test_comms_off_still_checks_the_topology(write_scenario) -> None:
    data = copy.deepcopy(PD)
    data["comms"] = {"mode": "off", "topology": {"kind": "star", "center": "nobody"}}
    assert "comms.topology: star centre 'nobody' is not an agent" in _error(mas.load_scenario, write_scenario(data))


def test_24_player_normal_form_reports_the_key_mismatch_before_the_table(write_scenario) -> None:
    data = copy.deepcopy(PD)
    data["agents"] = [{"id": "p", "policy": "random", "count": 24}]
    message = _error(mas.load_scenario, write_scenario(data), max_mib=16)
    assert "payoffs: 'C,C' names 2 actions but there are 24 players" in message


def test_a_payoff_table_too_large_to_build_is_refused_by_size(write_scenario) -> None:
    data = copy.deepcopy(PD)
    data["agents"] = [{"id": "p", "policy": "random", "count": 24}]
    data["game"]["payoffs"] = {",".join(["C"] * 24): [1.0] * 24}
    message = _error(mas.load_scenario, write_scenario(data), max_mib=16)
    assert "2^24 x 24 payoffs; at most 1,000,000 are allowed" in message


@pytest.mark.parametrize(
    "rounds, fragment",
    [
        (1_000_000_000, "rounds: Input should be less than or equal to 100000"),
        ({"continuation": 0.5, "max": 1_000_000_000}, "rounds.max: Input should be less than or equal to 100000"),
    ],
)
def test_rounds_have_a_documented_upper_bound(write_scenario, rounds, fragment) -> None:
    assert fragment in _error(mas.load_scenario, write_scenario({**copy.deepcopy(PD), "rounds": rounds}))


def test_agent_rounds_per_episode_are_bounded(write_scenario) -> None:
    data = {**copy.deepcopy(PD), "game": _scenario("commons")["game"], "rounds": 100_000}
    data["agents"] = [{"id": "f", "policy": "random", "count": 20}]
    assert "20 agents x 100,000 rounds is more than 1,000,000 agent-rounds" in _error(mas.load_scenario, write_scenario(data))


def test_the_schema_documents_the_bounds() -> None:
    schema = str(mas.scenario.scenario_json_schema())
    for bound in ("'maximum': 100000", "'maximum': 1024", "at most 1024 agents", "'maximum': 1001"):
        assert bound in schema


# ----- NaN and inf ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, where, value, path",
    [
        ("prisoners_dilemma", ("game", "payoffs", "C,C"), [".nan", 3], "game.payoffs.C,C.0"),
        ("public_goods", ("game", "endowment"), ".inf", "game.endowment"),
        ("public_goods", ("game", "multiplier"), "nan", "game.multiplier"),
        ("bargaining", ("game", "pie"), "-.inf", "game.pie"),
        ("signalling", ("game", "reward"), ".nan", "game.reward"),
        ("prisoners_dilemma", ("agents", 1, "policy", "p"), "inf", "agents.1.policy.p"),
    ],
)
def test_non_finite_numbers_are_refused_naming_the_field(write_scenario, name, where, value, path) -> None:
    data = _scenario(name)
    node = data
    for part in where[:-1]:
        node = node[part]
    node[where[-1]] = value
    text = yaml.safe_dump(data).replace("'.nan'", ".nan").replace("'.inf'", ".inf").replace("'-.inf'", "-.inf")
    message = _error(mas.load_scenario, write_scenario(text))
    assert f"{path}: " in message and ("finite" in message), message


def test_a_nested_list_payoff_table_must_be_finite(write_scenario) -> None:
    data = copy.deepcopy(PD)
    data["game"]["payoffs"] = [[[3, 3], [0, 5]], [[5, 0], [1, "nan"]]]
    assert "payoffs: every payoff must be a finite number" in _error(mas.load_scenario, write_scenario(data))


@pytest.mark.parametrize("value", [1e300, 10**30, -1e13])
def test_game_numbers_have_a_bounded_magnitude(write_scenario, value) -> None:
    # 1e300 passed validation and became inf when the table was cast to float32
    data = copy.deepcopy(PD)
    data["game"]["payoffs"]["D,C"] = [value, 0]
    assert "game: payoffs.D,C.0: " in _error(mas.load_scenario, write_scenario(data))
    data["game"]["payoffs"] = [[[3, 3], [0, 5]], [[5, 0], [1, value]]]
    assert "is larger than 1e+12 in magnitude" in _error(mas.load_scenario, write_scenario(data))


def test_tournament_numbers_must_be_finite(tmp_path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "name: t\nscenario: prisoners_dilemma\nself_play: true\nratings: {elo_k: .inf}\n"
        "format: {kind: ecological, initial: {a: .nan, b: 1}}\n"
        "entrants: [{name: a, policy: tit_for_tat}, {name: b, policy: always_defect}]\n"
    )
    message = _error(load_tournament, path)
    assert "format.initial.a: numbers must be finite" in message


# ----- YAML ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["a: " + "[" * 5000 + "]" * 5000, "a: " + "{b: " * 3000 + "1" + "}" * 3000, "- " * 3000 + "x"])
def test_deeply_nested_yaml_is_a_one_line_error(write_scenario, tmp_path, text: str) -> None:
    # libyaml stops flow collections at 1000 levels itself; block nesting stops at 32
    assert "malformed YAML: " in _error(mas.load_scenario, write_scenario(text))
    assert "nesting" in _error(mas.load_scenario, write_scenario(text))
    tournament = tmp_path / "t.yaml"
    tournament.write_text(text)
    assert "nesting" in _error(load_tournament, tournament)


def test_block_nesting_is_bounded_at_32_levels(write_scenario) -> None:
    text = "a:\n" + "".join("  " * i + "b:\n" for i in range(1, 100))
    assert ":33:" in _error(mas.load_scenario, write_scenario(text)) and "nesting deeper than 32 levels" in _error(
        mas.load_scenario, write_scenario(text)
    )


def test_duplicate_yaml_keys_are_an_error_naming_key_and_line(write_scenario, tmp_path) -> None:
    text = yaml.safe_dump(PD, sort_keys=False) + "rounds: 7\n"
    line = text.splitlines().index("rounds: 7") + 1
    message = _error(mas.load_scenario, write_scenario(text))
    assert f":{line}:1: malformed YAML: duplicate key 'rounds' (first given on line" in message
    nested = write_scenario("name: x\ngame:\n  kind: normal_form\n  kind: commons\n", name="nested.yaml")
    assert ":4:3: malformed YAML: duplicate key 'kind' (first given on line 3)" in _error(mas.load_scenario, nested)
    tournament = tmp_path / "t.yaml"
    tournament.write_text("name: t\nseed: 1\nseed: 2\n")
    assert "duplicate key 'seed'" in _error(load_tournament, tournament)


def test_anchors_and_merges_still_work_but_alias_bombs_do_not(write_scenario) -> None:
    ok = "name: pd\nbase: &b {type: random, p: 0.5}\n"
    assert "base: unknown key" in _error(mas.load_scenario, write_scenario(ok))  # parsed, merged fine
    levels = ["a: &a [1,1,1,1,1,1,1,1,1,1]"] + [
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 10) + "]" for i in range(7)
    ]
    message = _error(mas.load_scenario, write_scenario("\n".join(levels) + "\n"))
    assert "more than 1,000,000 values (aliases expanded)" in message


def test_the_llm_tournament_anchors_load() -> None:
    tournament = load_tournament(ROOT / "scenarios" / "tournaments" / "llm_personas.yaml")
    assert tournament.spec.entrants[0].policy == tournament.spec.entrants[1].policy


# ----- error messages --------------------------------------------------------------------------
def test_a_huge_action_name_is_not_echoed_whole(write_scenario) -> None:
    data = copy.deepcopy(PD)
    data["game"]["cooperate"] = "X" * 1_000_000
    message = _error(mas.load_scenario, write_scenario(data))
    assert "game: cooperate: 'XXXX" in message and "..." in message
    assert len(message) < 400


def test_a_huge_key_is_not_echoed_whole(write_scenario) -> None:
    data = copy.deepcopy(PD)
    data["x" * 1_000_000] = 1
    message = _error(mas.load_scenario, write_scenario(data))
    assert "unknown key 'xxx" in message and len(message) < 400


def test_union_member_names_do_not_leak_into_field_paths(write_scenario, tmp_path) -> None:
    data = copy.deepcopy(PD)
    data["game"]["payoffs"]["C,C"] = ["three", 3]
    message = _error(mas.load_scenario, write_scenario(data))
    assert "game.payoffs.C,C.0: Input should be a valid number" in message
    assert "dict[" not in message and "list[" not in message
    path = tmp_path / "t.yaml"
    path.write_text("name: t\nscenario: 7\nentrants: [{name: a, policy: tit_for_tat}, {name: b, policy: tit_for_tat}]\n")
    message = _error(load_tournament, path)
    assert "scenario: Input should be a valid string" in message and "dict[" not in message and ".str:" not in message


def test_many_problems_are_capped(write_scenario) -> None:
    data = copy.deepcopy(PD)
    data["agents"] = [{"id": f"a{i}", "policy": "random", "persona": 1, "bad": 1} for i in range(200)]
    message = _error(mas.load_scenario, write_scenario(data))
    assert message.endswith("more problems")


def test_a_directory_is_named_as_a_directory(tmp_path) -> None:
    folder = tmp_path / "scenarios.yaml"
    folder.mkdir()
    assert "is a directory, not a scenario file" in _error(mas.load_scenario, folder)
    assert "is a directory, not a scenario file" in _error(mas.load_scenario, tmp_path)
    assert "is a directory, not a tournament file" in _error(load_tournament, tmp_path)


def test_an_oversized_file_is_refused_before_it_is_read(write_scenario) -> None:
    path = write_scenario("description: '" + "x" * (5 * 2**20) + "'\n")
    assert "scenario and tournament files may be at most" in _error(mas.load_scenario, path)


# ----- tournaments -----------------------------------------------------------------------------
def _tournament(tmp_path: Path, **fields) -> Path:
    data = {"name": "t", "scenario": "prisoners_dilemma", "entrants": [{"name": f"e{i}", "policy": "tit_for_tat"} for i in range(12)]}
    data.update(fields)
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    "fields, fragment",
    [
        ({"repetitions": 100_000}, "repetitions: about 15,600,000 matches"),
        ({"repetitions": 10**9}, "repetitions: Input should be less than or equal to 100000"),
        ({"rounds": 10**9}, "rounds: Input should be less than or equal to 100000"),
        ({"seed": 2**64}, "seed: Input should be less than or equal to 9223372036854775807"),
        ({"format": {"kind": "ecological", "generations": 10**9}}, "format.generations: Input should be less than or equal to 1000000"),
        ({"entrants": [{"name": f"e{i}", "policy": "random"} for i in range(1100)]}, "entrants: List should have at most 1024 items"),
    ],
)
def test_tournament_counts_are_bounded(tmp_path, fields, fragment) -> None:
    assert fragment in _error(load_tournament, _tournament(tmp_path, **fields))


def test_tournament_rounds_times_players_are_bounded(tmp_path) -> None:
    path = _tournament(
        tmp_path, scenario="commons", rounds=100_000, group_size=20,
        entrants=[{"name": f"e{i}", "policy": "random"} for i in range(20)],
    )
    assert "agent-rounds" in _error(load_tournament, path)


# ----- command line ----------------------------------------------------------------------------
def test_mas_validate_prints_one_line_per_problem(write_scenario, tmp_path) -> None:
    deep = write_scenario("a: " + "[" * 5000 + "]" * 5000, name="deep.yaml")
    huge = write_scenario({**copy.deepcopy(PD), "rounds": 10**9}, name="huge.yaml")
    proc = subprocess.run(
        [sys.executable, "-m", "mas.cli", "validate", str(deep), str(huge), str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1 and proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert len(lines) == 3, lines
    assert "malformed YAML" in lines[0] and "nesting" in lines[0]
    assert "rounds: Input should be less than or equal to 100000" in lines[1]
    assert "is a directory" in lines[2]
