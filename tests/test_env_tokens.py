"""Messages as token ids over the scenario's vocabulary (`make_env(..., messages="tokens")`)
and the `heard` observation, for array-only trainers."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from gymnasium import spaces
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test

import mas
from mas.errors import ScenarioError
from mas.scenario import parse_scenario
from tests.conftest import PD


def _three_talkers() -> mas.Scenario:
    data = copy.deepcopy(PD)
    data["agents"] = [{"id": "a", "policy": "random"}, {"id": "b", "policy": "random"}, {"id": "c", "policy": "random"}]
    data["game"] = {"kind": "public_goods", "endowment": 4, "multiplier": 1.6, "levels": 5}
    data["comms"] = {"mode": "broadcast", "talk_rounds": 2, "vocabulary": ["give", "keep", "punish"]}
    return parse_scenario(data)


TOKEN_SCENARIOS = {"private_coordination": lambda: mas.load_scenario("private_coordination"), "three_talkers": _three_talkers}


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", sorted(TOKEN_SCENARIOS))
def test_pettingzoo_api_and_seed_tests_pass_with_tokens(name: str) -> None:
    scenario = TOKEN_SCENARIOS[name]()
    parallel_api_test(mas.make_env(scenario, messages="tokens"), num_cycles=100)
    parallel_seed_test(lambda: mas.make_env(scenario, messages="tokens"), num_cycles=50)
    api_test(mas.make_aec_env(scenario, messages="tokens"), num_cycles=50)


def test_token_spaces_hold_only_arrays() -> None:
    env = mas.make_env("private_coordination", messages="tokens")
    action, obs = env.action_space("ann"), env.observation_space("ann")
    assert isinstance(action, spaces.MultiDiscrete) and action.nvec.tolist() == [2, 3]
    assert set(obs.spaces) == {"observation", "action_mask", "heard", "talking"}
    assert obs["action_mask"].shape == (2 + 1 + 2,) and obs["heard"].shape == (1 + 2,)
    assert not any(isinstance(s, spaces.Text) for s in obs.spaces.values())


def test_tokens_are_said_as_words_and_heard_as_one_hots() -> None:
    env = mas.make_env("private_coordination", messages="tokens", seed=0)
    observations, _ = env.reset(seed=0)
    assert observations["ann"]["action_mask"].tolist() == [1, 1, 1, 1, 1]  # talk step: any token (the action is ignored)
    observations, *_ = env.step({"ann": np.array([1, 2]), "bo": np.array([0, 0])})  # ann says "wug", bo silent
    assert [(m.sender, m.text) for m in env.message_log] == [("ann", "wug")]
    assert observations["bo"]["heard"].tolist() == [0.0, 0.0, 1.0]  # not talking; ann said word 2
    assert observations["ann"]["heard"].tolist() == [0.0, 0.0, 0.0]
    assert observations["ann"]["action_mask"].tolist() == [1, 1, 1, 0, 0]  # action step: silence only
    env.step({"ann": np.array([0, 1]), "bo": np.array([1, 0])})  # a token in an action step is not said
    assert len(env.message_log) == 1 and env.last_actions == {"ann": 0, "bo": 1}


def test_text_mode_exposes_the_same_heard_channel() -> None:
    text, tokens = mas.make_env(_three_talkers(), seed=4), mas.make_env(_three_talkers(), messages="tokens", seed=4)
    assert text.observation_space("a")["heard"] == tokens.observation_space("a")["heard"]
    said_text = {"a": {"action": 0, "message": "punish"}, "b": {"action": 0, "message": "not a word"}, "c": {"action": 0, "message": ""}}
    said_tokens = {"a": np.array([0, 3]), "b": np.array([0, 0]), "c": np.array([0, 0])}
    heard_text = text.step(said_text)[0]["c"]["heard"]
    heard_tokens = tokens.step(said_tokens)[0]["c"]["heard"]
    assert heard_text.tolist() == heard_tokens.tolist() == [1.0, 0, 0, 1, 0, 0, 0]  # talking; a said "punish"
    assert "inbox" in text.observation_space("a").spaces and "heard" not in mas.make_env("prisoners_dilemma_talk").observation_space("alice").spaces


@pytest.mark.parametrize("name", ["prisoners_dilemma", "prisoners_dilemma_talk", "signalling_mappo"])
def test_tokens_without_a_vocabulary_is_a_one_line_error(name: str) -> None:
    with pytest.raises(ScenarioError, match=f"messages='tokens' needs .* comms.vocabulary; '{name}' has none") as err:
        mas.make_env(name, messages="tokens")
    assert "\n" not in str(err.value)
