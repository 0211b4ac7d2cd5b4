"""Referential signalling: team rewards, masks by role and phase, rng-drawn targets."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from pydantic import ValidationError

from mas.games.signalling import SignallingConfig, SignallingGame, default_vocabulary


def make(n_agents: int = 3, **kwargs) -> SignallingGame:
    return SignallingGame(SignallingConfig(**kwargs), n_agents)


def play_rounds(game: SignallingGame, rounds: int, batch: int, listener, seed: int = 0) -> list[np.ndarray]:
    """Honest speaker; `listener(word)` gives every listener's pick; rewards of each pick step."""
    rng = np.random.default_rng(seed)
    state = game.reset(batch, rng)
    n = game.n_agents
    picks = []
    for _ in range(rounds):
        actions = np.zeros((batch, n), dtype=np.int64)
        actions[:, 0] = 1 + state["target"]  # word k for target k
        assert (game.action_mask(state)[np.arange(batch), 0, actions[:, 0]] == 1).all()
        result = game.step(state, actions, rng)
        np.testing.assert_array_equal(result.rewards, 0.0)
        state = result.state
        actions = np.zeros((batch, n), dtype=np.int64)
        actions[:, 1:] = 1 + listener(state["signal"])[:, None]
        result = game.step(state, actions, rng)
        assert not result.terminated.any()
        picks.append(result.rewards)
        state = result.state
    return picks


def test_sizes_and_defaults():
    game = make()
    assert game.targets == ["red", "green", "blue"]
    assert game.vocabulary == ["blip", "blop", "blup"]
    assert game.WAIT == 0
    assert game.num_actions == 4
    assert game.action_names(0) == ["wait", "say blip", "say blop", "say blup"]
    assert game.action_names(1) == ["wait", "pick red", "pick green", "pick blue"]
    state = game.reset(6, np.random.default_rng(0))
    assert game.observe(state).shape == (6, 3, game.obs_dim)
    assert game.global_state(state).shape == (6, game.state_dim)
    assert game.cooperation(state, np.zeros((6, 3), dtype=np.int64)) is None
    words = default_vocabulary(300)
    assert len(set(words)) == 300


def test_honest_speaker_and_literal_listener_always_win():
    game = make(n_agents=4)
    rewards = play_rounds(game, rounds=50, batch=128, listener=lambda word: word)
    for r in rewards:
        assert r.shape == (128, 4)
        np.testing.assert_array_equal(r, 1.0)


def test_listener_always_picking_first_target_wins_by_chance():
    game = make(n_agents=2, targets=["a", "b", "c", "d"])
    rewards = np.stack(play_rounds(game, rounds=50, batch=128, listener=lambda word: np.zeros_like(word)))
    assert abs(rewards.mean() - 0.25) < 0.03


def test_reward_is_fraction_of_listeners_right_and_shared():
    game = make(n_agents=3, reward=2.0)
    rng = np.random.default_rng(1)
    state = game.reset(1, rng)
    target = int(state["target"][0])
    state = game.step(state, np.array([[1 + target, 0, 0]]), rng).state
    wrong = (target + 1) % 3
    result = game.step(state, np.array([[0, 1 + target, 1 + wrong]]), rng)
    np.testing.assert_allclose(result.rewards, [[1.0, 1.0, 1.0]])
    assert game.summary(result.state, 0)["last_success"] == pytest.approx(0.5)


def test_masks_follow_role_and_phase():
    game = make(n_agents=3, targets=["x", "y"], vocabulary=["a", "b", "c", "d"])
    assert game.num_actions == 5
    rng = np.random.default_rng(0)
    state = game.reset(2, rng)
    mask = game.action_mask(state)
    np.testing.assert_array_equal(mask[:, 0], [[0, 1, 1, 1, 1]] * 2)
    np.testing.assert_array_equal(mask[:, 1:], [[[1, 0, 0, 0, 0]] * 2] * 2)
    state = game.step(state, np.array([[4, 0, 0], [2, 0, 0]]), rng).state
    mask = game.action_mask(state)
    np.testing.assert_array_equal(mask[:, 0], [[1, 0, 0, 0, 0]] * 2)
    np.testing.assert_array_equal(mask[:, 1:], [[[0, 1, 1, 0, 0]] * 2] * 2)
    assert game.action_names(1)[3:] == ["unused 3", "unused 4"]


def test_observations_hide_target_from_listeners():
    game = make(n_agents=2)
    rng = np.random.default_rng(3)
    state = game.reset(1, rng)
    target = int(state["target"][0])
    obs = game.observe(state)[0]
    # [phase, one-hot target (3), one-hot word (3), is speaker]
    expected_speaker = np.zeros(8, dtype=np.float32)
    expected_speaker[1 + target] = 1.0
    expected_speaker[7] = 1.0
    np.testing.assert_array_equal(obs[0], expected_speaker)
    np.testing.assert_array_equal(obs[1], np.zeros(8))
    word = (target + 2) % 3
    state = game.step(state, np.array([[1 + word, 0]]), rng).state
    obs = game.observe(state)[0]
    expected_listener = np.zeros(8, dtype=np.float32)
    expected_listener[0] = 1.0
    expected_listener[4 + word] = 1.0
    np.testing.assert_array_equal(obs[1], expected_listener)
    # the speaker knows the word it said (so a learner on its own view can credit it)
    assert obs[0, 0] == 1.0 and obs[0, 4 + word] == 1.0 and obs[0, 4:7].sum() == 1.0
    summary = game.summary(state, 0)
    assert summary == {"phase": "pick", "target": game.targets[target], "signal": game.vocabulary[word], "last_success": None}
    glob = game.global_state(state)[0]
    assert glob[0] == 1.0 and glob[1 + target] == 1.0 and glob[4 + word] == 1.0 and glob.sum() == 3.0


def test_targets_come_from_the_given_rng():
    game = make()

    def targets(seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        state = game.reset(64, rng)
        seen = [state["target"]]
        for _ in range(6):
            state = game.step(state, np.zeros((64, 3), dtype=np.int64), rng).state
            seen.append(state["target"])
        return np.stack(seen)

    np.testing.assert_array_equal(targets(7), targets(7))
    assert not np.array_equal(targets(7), targets(8))
    drawn = targets(7)
    assert set(np.unique(drawn)) == {0, 1, 2}


def test_step_does_not_mutate_input():
    game = make()
    rng = np.random.default_rng(0)
    state = game.reset(8, rng)
    for actions in (np.array([[2, 0, 0]] * 8), np.array([[0, 1, 3]] * 8)):
        before = copy.deepcopy(state)
        result = game.step(state, actions, rng)
        for key, value in before.items():
            np.testing.assert_array_equal(state[key], value)
        state = result.state


def test_text_is_role_specific():
    game = make()
    rng = np.random.default_rng(0)
    state = game.reset(1, rng)
    target = game.targets[int(state["target"][0])]
    assert "speaker" in game.rules_text(0) and "listener" in game.rules_text(1)
    assert target in game.situation_text(state, 0, 0)
    assert target not in game.situation_text(state, 0, 1)
    state = game.step(state, np.array([[2, 0, 0]]), rng).state
    assert "blop" in game.situation_text(state, 0, 1)


def test_config_validation():
    with pytest.raises(ValidationError, match="vocabulary"):
        SignallingConfig(targets=["a", "b", "c"], vocabulary=["x", "y"])
    with pytest.raises(ValidationError):
        SignallingConfig(targets=["a", "a"])
    with pytest.raises(ValidationError):
        SignallingConfig(targets=["a"])
    with pytest.raises(ValidationError):
        SignallingConfig(vocabulary=["x", "x", "y"])
    with pytest.raises(ValueError, match="n_agents"):
        SignallingGame(SignallingConfig(), 1)


def test_a_deaf_listener_never_sees_the_word_but_the_speaker_does():
    game = make(n_agents=3, listeners_hear=False)
    rng = np.random.default_rng(0)
    state = game.step(game.reset(2, rng), np.array([[1, 0, 0], [3, 0, 0]]), rng).state
    obs = game.observe(state)
    assert obs[:, 1:, 4:7].sum() == 0.0  # listeners: no word in either copy
    assert obs[0, 0, 4] == 1.0 and obs[1, 0, 6] == 1.0
    assert game.global_state(state)[:, 4:7].sum() == 2.0  # the state (for critics) keeps it
    # nor in words: a deaf listener's situation text never names the word said
    words = game.vocabulary
    for agent in (1, 2):
        text = game.situation_text(state, 0, agent)
        assert not any(w in text for w in words) and "do not hear" in text
    assert words[0] in game.situation_text(state, 0, 0)
