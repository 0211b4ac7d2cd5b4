"""Scenario files: valid ones load, invalid ones name the file, the field and the fix."""

from __future__ import annotations

import copy
import json

import pytest

import mas
from mas.errors import ScenarioError, UnknownNameError
from mas.scenario import scenario_json_schema
from tests.conftest import BUILTIN, PD


@pytest.mark.parametrize("name", BUILTIN)
def test_builtin_scenarios_load(name: str) -> None:
    scenario = mas.load_scenario(name)
    assert scenario.name == name
    assert len(scenario.agents) >= (1 if name == "grid_maze" else 2)  # the one-agent maze is the only solo scenario


def test_count_expands_agents() -> None:
    scenario = mas.load_scenario("commons")
    assert [a.id for a in scenario.agents][:2] == ["steward_0", "steward_1"]
    assert len(scenario.agents) == 8


def _problems(write_scenario, data) -> str:
    path = write_scenario(data)
    with pytest.raises(ScenarioError) as info:
        mas.load_scenario(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    return message


def _pd(**changes):
    data = copy.deepcopy(PD)
    data.update(changes)
    return data


def test_typo_key_suggests_the_right_one(write_scenario) -> None:
    data = _pd()
    data["rounds_"] = data.pop("rounds")
    data["agents"][0]["persona_"] = "x"
    message = _problems(write_scenario, data)
    assert "rounds_: unknown key 'rounds_' (did you mean 'rounds'?)" in message
    assert "agents.0.persona_: unknown key 'persona_' (did you mean 'persona'?)" in message


def test_unknown_policy_lists_known(write_scenario) -> None:
    data = _pd()
    data["agents"][1]["policy"] = "tit_for_tit"
    message = _problems(write_scenario, data)
    assert "agents.1.policy: unknown policy 'tit_for_tit' (did you mean 'tit_for_tat'?)" in message
    assert "always_defect" in message


def test_unknown_game_lists_known(write_scenario) -> None:
    message = _problems(write_scenario, _pd(game={"kind": "poker"}))
    assert "game: unknown game 'poker'" in message and "normal_form" in message


def test_wrong_types_and_negative_rounds(write_scenario) -> None:
    message = _problems(write_scenario, _pd(rounds=-3, episodes="many"))
    assert "rounds" in message and "greater than or equal to 1" in message
    assert "episodes" in message


def test_payoff_table_must_fit_players(write_scenario) -> None:
    data = _pd()
    data["agents"].append({"id": "c", "policy": "random"})
    message = _problems(write_scenario, data)
    assert "game: payoffs: 'C,C' names 2 actions but there are 3 players" in message


def test_topology_must_fit_agents(write_scenario) -> None:
    message = _problems(write_scenario, _pd(comms={"mode": "broadcast", "topology": "ring"}))
    assert "comms.topology: a ring needs at least 3 agents, found 2" in message


def test_policy_that_cannot_play_the_game(write_scenario) -> None:
    data = _pd()
    del data["game"]["cooperate"]
    message = _problems(write_scenario, data)
    assert "agents.0.policy: tit_for_tat cannot play this game" in message


def test_duplicate_ids(write_scenario) -> None:
    data = _pd()
    data["agents"][1]["id"] = "a"
    assert "repeated: ['a']" in _problems(write_scenario, data)


def test_every_problem_is_named(write_scenario) -> None:
    data = _pd(rounds=0, episodes=0)
    data["agents"][0]["policy"] = "nope"
    path = write_scenario(data)
    with pytest.raises(ScenarioError) as info:
        mas.load_scenario(path)
    assert len(info.value.problems) == 3


def test_malformed_yaml_names_line(write_scenario) -> None:
    path = write_scenario("name: x\ngame: [unclosed\n")
    with pytest.raises(ScenarioError, match=r"scenario.yaml:\d+:\d+: malformed YAML"):
        mas.load_scenario(path)


def test_not_a_mapping(write_scenario) -> None:
    with pytest.raises(ScenarioError, match="expected a mapping"):
        mas.load_scenario(write_scenario("- just\n- a list\n"))


def test_missing_file_and_unknown_builtin(tmp_path) -> None:
    with pytest.raises(ScenarioError, match="no such scenario file"):
        mas.load_scenario(tmp_path / "absent.yaml")
    with pytest.raises(UnknownNameError, match="did you mean 'prisoners_dilemma'"):
        mas.load_scenario("prisoners_dilema")


def test_no_field_runs_code(write_scenario) -> None:
    # YAML tags that would construct Python objects are refused by the safe loader
    path = write_scenario("name: x\ngame: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(ScenarioError, match="malformed YAML"):
        mas.load_scenario(path)


def test_json_schema_covers_games_and_policies() -> None:
    schema = scenario_json_schema()
    text = json.dumps(schema)
    for name in ("normal_form", "commons", "tit_for_tat", "small_world", "continuation"):
        assert name in text
    assert schema["additionalProperties"] is False
