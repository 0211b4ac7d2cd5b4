"""Commons (fishery) game: rationing, logistic regrowth, collapse, validation."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from pydantic import ValidationError

from mas.games.base import sanitize_actions
from mas.games.commons import CommonsConfig, CommonsGame

RNG = np.random.default_rng(0)


def make(n: int = 2, **kwargs) -> CommonsGame:
    return CommonsGame(CommonsConfig(**kwargs), n)


def test_amounts_and_names():
    game = make(2, max_harvest=10, levels=11)
    assert game.amounts.tolist() == list(range(11))
    assert game.num_actions == 11
    assert game.action_names(0)[:3] == ["harvest 0", "harvest 1", "harvest 2"]
    assert make(2, max_harvest=5, levels=3).action_names(1) == ["harvest 0", "harvest 2.5", "harvest 5"]


def test_default_initial_stock_is_capacity():
    game = make(3, capacity=80)
    state = game.reset(2, RNG)
    assert state["stock"].tolist() == [80, 80]
    assert game.summary(state, 0) == {"stock": 80.0, "collapsed": False, "last_harvests": None}


def test_harvest_and_logistic_regrowth_by_hand():
    # K=100, r=1, stock 100; two agents take 10 and 20 -> R = 70
    # regrowth: 70 + 1 * 70 * (1 - 0.7) = 70 + 21 = 91
    game = make(2, capacity=100, growth_rate=1.0, max_harvest=20, levels=3)  # amounts 0, 10, 20
    state = game.reset(1, RNG)
    result = game.step(state, np.array([[1, 2]]), RNG)
    np.testing.assert_allclose(result.rewards[0], [10, 20])
    assert result.rewards.dtype == np.float32
    np.testing.assert_allclose(result.state["stock"], [91])
    assert not result.terminated[0]
    assert game.summary(result.state, 0) == {"stock": 91.0, "collapsed": False, "last_harvests": [10.0, 20.0]}


def test_regrowth_with_other_rate():
    # K=50, r=0.5, initial 40, harvests 5+5 -> R = 30; 30 + 0.5 * 30 * (1 - 30/50) = 30 + 6 = 36
    game = make(2, capacity=50, initial_stock=40, growth_rate=0.5, max_harvest=5, levels=2)
    result = game.step(game.reset(1, RNG), np.array([[1, 1]]), RNG)
    np.testing.assert_allclose(result.state["stock"], [36])


def test_stock_capped_at_capacity():
    # K=100, r=3, stock 60, nobody fishes: 60 + 3 * 60 * 0.4 = 132 -> capped at 100
    game = make(2, capacity=100, initial_stock=60, growth_rate=3.0)
    result = game.step(game.reset(1, RNG), np.array([[0, 0]]), RNG)
    np.testing.assert_allclose(result.state["stock"], [100])


def test_proportional_rationing_when_requests_exceed_stock():
    # stock 12, requests 10 + 5 + 5 = 20 > 12: everyone gets 12/20 = 0.6 of the request
    game = make(3, capacity=100, initial_stock=12, max_harvest=10, levels=3, collapse_threshold=1)  # 0, 5, 10
    result = game.step(game.reset(1, RNG), np.array([[2, 1, 1]]), RNG)
    np.testing.assert_allclose(result.rewards[0], [6, 3, 3], rtol=1e-6)
    # stock emptied -> regrows 0 -> collapse (0 < 1)
    np.testing.assert_allclose(result.state["stock"], [0])
    assert result.terminated[0]
    assert game.summary(result.state, 0)["collapsed"] is True


def test_collapse_terminates_only_that_copy():
    # K=100, threshold 5, stock 10. Copy 0: 2 x 4 = 8 -> R = 2 -> 2 + 2 * 0.98 = 3.96 < 5: collapse.
    # Copy 1: 2 x 1 = 2 -> R = 8 -> 8 + 8 * 0.92 = 15.36: fine.
    game = make(2, capacity=100, initial_stock=10, max_harvest=4, levels=5, collapse_threshold=5)  # 0..4
    result = game.step(game.reset(2, RNG), np.array([[4, 4], [1, 1]]), RNG)
    np.testing.assert_allclose(result.state["stock"], [3.96, 15.36])
    np.testing.assert_array_equal(result.terminated, [True, False])
    np.testing.assert_array_equal(result.state["collapsed"], [True, False])


def test_batch_copies_are_independent():
    game = make(2, capacity=100, max_harvest=10, levels=11)
    state = game.reset(3, RNG)
    result = game.step(state, np.array([[0, 0], [10, 10], [5, 0]]), RNG)
    # R = 100, 80, 95 -> 100, 80 + 80 * 0.2 = 96, 95 + 95 * 0.05 = 99.75
    np.testing.assert_allclose(result.state["stock"], [100, 96, 99.75])
    np.testing.assert_allclose(result.rewards, [[0, 0], [10, 10], [5, 0]])


def test_cooperation_sustainable_share():
    # stock 100, K 100, N 4: share = (100 - 50) / 4 = 12.5 -> harvests 0..10 all cooperative
    game = make(4, capacity=100, max_harvest=10, levels=11)
    state = game.reset(1, RNG)
    np.testing.assert_array_equal(game.cooperation(state, np.array([[0, 5, 10, 10]])), [[1, 1, 1, 1]])
    # stock 70: share = 20 / 4 = 5 -> harvest 5 ok, 6 not
    game = make(4, capacity=100, initial_stock=70, max_harvest=10, levels=11)
    state = game.reset(1, RNG)
    np.testing.assert_array_equal(game.cooperation(state, np.array([[5, 6, 0, 10]])), [[1, 0, 1, 0]])
    # stock 40 (below K/2): share 0 -> only harvesting nothing counts
    game = make(4, capacity=100, initial_stock=40, max_harvest=10, levels=11)
    state = game.reset(1, RNG)
    np.testing.assert_array_equal(game.cooperation(state, np.array([[0, 1, 0, 10]])), [[1, 0, 1, 0]])


def test_observation_and_global_state():
    game = make(3, capacity=100, max_harvest=10, levels=11)
    state = game.reset(1, RNG)
    obs = game.observe(state)
    assert obs.shape == (1, 3, game.obs_dim) and obs.dtype == np.float32
    np.testing.assert_allclose(obs[0, 0], [1, 0, 0, 1])
    state = game.step(state, np.array([[2, 4, 6]]), RNG).state
    # R = 88 -> 88 + 88 * 0.12 = 98.56
    obs = game.observe(state)
    np.testing.assert_allclose(obs[0, 0], [0.9856, 0.2, 0.5, 0], rtol=1e-6)
    np.testing.assert_allclose(obs[0, 2], [0.9856, 0.6, 0.3, 0], rtol=1e-6)
    gs = game.global_state(state)
    assert gs.shape == (1, game.state_dim)
    np.testing.assert_allclose(gs[0], [0.9856, 0.2, 0.4, 0.6, 0], rtol=1e-6)


def test_step_does_not_mutate_input():
    game = make(3)
    state = game.reset(4, RNG)
    before = copy.deepcopy(state)
    game.step(state, np.full((4, 3), 10), RNG)
    for key in before:
        np.testing.assert_array_equal(before[key], state[key])


def test_single_agent_allowed():
    game = make(1)
    state = game.step(game.reset(1, RNG), np.array([[10]]), RNG).state
    assert game.observe(state).shape == (1, 1, 4)
    assert "fisher 1 of 1" in game.rules_text(0)


def test_text():
    game = make(2, capacity=100, max_harvest=10, levels=11)
    state = game.reset(1, RNG)
    rules = game.rules_text(0)
    assert "harvest 10" in rules and "100" in rules
    state = game.step(state, np.array([[10, 3]]), RNG).state
    text = game.situation_text(state, 0, 0)
    assert "harvest 0" in text and "caught 10" in text and "fisher 2 caught 3" in text


def test_validation():
    with pytest.raises(ValidationError, match="initial_stock"):
        CommonsConfig(capacity=100, initial_stock=150)
    with pytest.raises(ValidationError, match="initial_stock"):
        CommonsConfig(initial_stock=0)
    with pytest.raises(ValidationError, match="collapse_threshold"):
        CommonsConfig(capacity=10, collapse_threshold=10)
    with pytest.raises(ValidationError):
        CommonsConfig(levels=1)
    with pytest.raises(ValidationError):
        CommonsConfig(growth_rate=0)
    with pytest.raises(ValidationError):
        CommonsConfig(max_harvest=-1)
    with pytest.raises(ValidationError):
        CommonsConfig(capacity=0)
    with pytest.raises(ValidationError):
        CommonsConfig(typo=3)
    with pytest.raises(ValueError, match="at least 1"):
        make(0)


def test_random_batch_stays_finite_and_legal():
    rng = np.random.default_rng(2)
    game = make(5, capacity=100, max_harvest=10, levels=11, growth_rate=1.5)
    state = game.reset(64, rng)
    for _ in range(50):
        mask = game.action_mask(state)
        assert mask.shape == (64, 5, game.num_actions) and (mask.sum(axis=-1) > 0).all()
        actions = np.argmax(rng.random(mask.shape) * mask, axis=-1)
        legal, illegal = sanitize_actions(actions, mask)
        assert not illegal.any()
        result = game.step(state, legal, rng)
        assert np.isfinite(result.rewards).all() and (result.rewards >= 0).all()
        # never harvest more than was there
        assert (result.rewards.sum(axis=1) <= state["stock"] + 1e-6).all()
        assert ((result.state["stock"] >= 0) & (result.state["stock"] <= 100)).all()
        # a collapse is final
        assert (result.terminated >= state["collapsed"]).all()
        coop = game.cooperation(state, legal)
        assert set(np.unique(coop)) <= {0.0, 1.0}
        assert np.isfinite(game.observe(result.state)).all()
        state = result.state
