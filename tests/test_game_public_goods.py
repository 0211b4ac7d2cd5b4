"""Public goods game: arithmetic by hand, punishment, masking, batching, validation."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from pydantic import ValidationError

from mas.games.base import sanitize_actions
from mas.games.public_goods import PublicGoodsConfig, PublicGoodsGame

RNG = np.random.default_rng(0)


def make(n: int = 3, **kwargs) -> PublicGoodsGame:
    return PublicGoodsGame(PublicGoodsConfig(**kwargs), n)


def test_amounts_and_action_names():
    game = make(3, endowment=10, levels=5)
    assert game.amounts.tolist() == [0, 2.5, 5, 7.5, 10]
    assert game.num_actions == 5
    assert game.action_names(0) == ["contribute 0", "contribute 2.5", "contribute 5", "contribute 7.5", "contribute 10"]
    assert game.punishment is False
    assert game.PUNISH_NOBODY == 0


def test_contribution_rewards_by_hand():
    # N=3, endowment 10, multiplier 1.5, contributions 0 / 5 / 10: pot 15 -> 22.5, share 7.5
    game = make(3, endowment=10, levels=3, multiplier=1.5)
    state = game.reset(1, RNG)
    result = game.step(state, np.array([[0, 1, 2]]), RNG)
    assert result.rewards.dtype == np.float32
    np.testing.assert_allclose(result.rewards[0], [10 - 0 + 7.5, 10 - 5 + 7.5, 10 - 10 + 7.5])  # 17.5, 12.5, 7.5
    assert not result.terminated.any()
    assert game.summary(result.state, 0) == {"phase": "contribute", "last_contributions": [0.0, 5.0, 10.0]}
    np.testing.assert_allclose(game.cooperation(state, np.array([[0, 1, 2]]))[0], [0, 0.5, 1])


def test_summary_before_first_round():
    game = make(3)
    state = game.reset(2, RNG)
    assert game.summary(state, 1) == {"phase": "contribute", "last_contributions": None}


def test_observation_and_global_state():
    game = make(3, endowment=10, levels=3, multiplier=1.5)
    state = game.reset(1, RNG)
    obs = game.observe(state)
    assert obs.shape == (1, 3, game.obs_dim) and obs.dtype == np.float32
    # [phase, own, others' mean, first]
    np.testing.assert_allclose(obs[0, 0], [0, 0, 0, 1])
    state = game.step(state, np.array([[0, 1, 2]]), RNG).state
    obs = game.observe(state)
    np.testing.assert_allclose(obs[0, 0], [0, 0.0, 0.75, 0])  # others gave 0.5 and 1.0
    np.testing.assert_allclose(obs[0, 1], [0, 0.5, 0.5, 0])  # others gave 0 and 1.0
    np.testing.assert_allclose(obs[0, 2], [0, 1.0, 0.25, 0])
    gs = game.global_state(state)
    assert gs.shape == (1, game.state_dim)
    np.testing.assert_allclose(gs[0], [0, 0, 0.5, 1, 0])


def test_batch_copies_are_independent():
    game = make(4, endowment=8, levels=3, multiplier=2)  # amounts 0, 4, 8
    state = game.reset(3, RNG)
    actions = np.array([[2, 2, 2, 2], [0, 0, 0, 0], [2, 0, 0, 0]])
    rewards = game.step(state, actions, RNG).rewards
    # all give 8: pot 32 -> 64, share 16 each
    np.testing.assert_allclose(rewards[0], [16, 16, 16, 16])
    # nobody gives: keep 8
    np.testing.assert_allclose(rewards[1], [8, 8, 8, 8])
    # one gives 8: pot 8 -> 16, share 4; giver 0 + 4, others 8 + 4
    np.testing.assert_allclose(rewards[2], [4, 12, 12, 12])


def test_punishment_phase_costs_fines_and_masks():
    game = make(3, endowment=10, levels=3, multiplier=1.5, punishment=True, punish_cost=1, punish_fine=3)
    assert game.num_actions == 4  # max(levels=3, N+1=4)
    state = game.reset(1, RNG)
    mask = game.action_mask(state)
    assert mask.shape == (1, 3, 4) and mask.dtype == np.int8
    np.testing.assert_array_equal(mask[0], [[1, 1, 1, 0]] * 3)  # index 3 unused when contributing

    state = game.step(state, np.array([[0, 1, 2]]), RNG).state
    assert game.summary(state, 0)["phase"] == "punish"
    mask = game.action_mask(state)[0]
    # nobody + the two others; own index (1 + i) is illegal
    np.testing.assert_array_equal(mask, [[1, 0, 1, 1], [1, 1, 0, 1], [1, 1, 1, 0]])
    actions = np.array([[0, 1, 2]])
    assert np.isnan(game.cooperation(state, actions)).all()

    # agent 0 punishes nobody; agents 1 and 2 both punish agent 0
    before = copy.deepcopy(state)
    result = game.step(state, np.array([[0, 1, 1]]), RNG)
    # agent 0: fined twice -> -6; agents 1, 2: pay 1 each
    np.testing.assert_allclose(result.rewards[0], [-6, -1, -1])
    for key in before:
        np.testing.assert_array_equal(before[key], state[key])
    after = result.state
    assert game.summary(after, 0) == {"phase": "contribute", "last_contributions": [0.0, 5.0, 10.0]}
    np.testing.assert_array_equal(game.action_mask(after)[0], [[1, 1, 1, 0]] * 3)

    # agent 2 punishes agent 1, agent 1 punishes agent 2 (action 3)
    state = game.step(after, np.array([[2, 2, 2]]), RNG).state
    rewards = game.step(state, np.array([[0, 3, 2]]), RNG).rewards
    np.testing.assert_allclose(rewards[0], [0, -1 - 3, -1 - 3])


def test_punishment_action_names():
    game = make(3, levels=3, punishment=True)  # amounts 0, 5, 10; 4 actions
    names = game.action_names(1)
    assert len(names) == 4
    assert names[0] == "contribute 0 / punish nobody"
    assert "punish player 1" in names[1]
    assert "punish player 2" not in " ".join(names)  # cannot punish oneself
    assert names[3] == "punish player 3"
    assert "(unused)" in make(4, levels=2, punishment=True).action_names(1)  # index 2 = self, not a contribution


def test_mixed_phase_batch():
    game = make(2, endowment=10, levels=2, multiplier=1.0, punishment=True, punish_cost=2, punish_fine=5)
    punish_state = game.step(game.reset(2, RNG), np.array([[1, 0], [1, 1]]), RNG).state
    contribute_state = game.step(punish_state, np.zeros((2, 2), dtype=np.int64), RNG).state
    # copy 0 in the punish phase, copy 1 in the contribute phase
    mixed = {key: np.concatenate([punish_state[key][:1], contribute_state[key][1:]]) for key in punish_state}
    # copy 0: agent 0 punishes agent 1 (action 2); copy 1: both give 10
    result = game.step(mixed, np.array([[2, 0], [1, 1]]), RNG)
    np.testing.assert_allclose(result.rewards[0], [-2, -5])
    np.testing.assert_allclose(result.rewards[1], [10, 10])  # 10 - 10 + 1.0 * 20 / 2
    assert game.summary(result.state, 0)["phase"] == "contribute"
    assert game.summary(result.state, 1)["phase"] == "punish"


def test_step_does_not_mutate_input():
    game = make(3, punishment=True)
    state = game.reset(4, RNG)
    before = copy.deepcopy(state)
    game.step(state, np.full((4, 3), 4), RNG)
    for key in before:
        np.testing.assert_array_equal(before[key], state[key])


def test_text_mentions_actions():
    game = make(3, punishment=True)
    state = game.reset(1, RNG)
    assert "contribute 2.5" in game.rules_text(0)
    assert "punish" in game.rules_text(0)
    text = game.situation_text(state, 0, 0)
    assert "contribute 10" in text and "punish player" not in text
    state = game.step(state, np.array([[0, 2, 4]]), RNG).state
    text = game.situation_text(state, 0, 0)
    assert "punish player 2" in text and "punish player 1" not in text


def test_validation():
    with pytest.raises(ValueError, match="at least 2 players"):
        make(1)
    with pytest.raises(ValidationError):
        PublicGoodsConfig(levels=1)
    with pytest.raises(ValidationError):
        PublicGoodsConfig(endowment=0)
    with pytest.raises(ValidationError):
        PublicGoodsConfig(multiplier=-1)
    with pytest.raises(ValidationError):
        PublicGoodsConfig(punish_cost=-0.5)
    with pytest.raises(ValidationError):
        PublicGoodsConfig(bogus=1)
    with pytest.raises(ValidationError):
        PublicGoodsConfig(kind="commons")


@pytest.mark.parametrize("punishment", [False, True])
def test_random_batch_stays_finite_and_legal(punishment):
    rng = np.random.default_rng(1)
    game = make(5, levels=4, punishment=punishment)
    state = game.reset(64, rng)
    for _ in range(50):
        mask = game.action_mask(state)
        assert mask.shape == (64, 5, game.num_actions)
        assert (mask.sum(axis=-1) > 0).all()
        # draw uniformly among the legal actions
        actions = np.argmax(rng.random(mask.shape) * mask, axis=-1)
        legal, illegal = sanitize_actions(actions, mask)
        assert not illegal.any()
        result = game.step(state, legal, rng)
        assert result.rewards.shape == (64, 5) and np.isfinite(result.rewards).all()
        coop = game.cooperation(state, legal)
        assert coop.shape == (64, 5)
        finite = coop[np.isfinite(coop)]
        assert ((finite >= 0) & (finite <= 1)).all()
        obs = game.observe(result.state)
        assert obs.shape == (64, 5, game.obs_dim) and np.isfinite(obs).all()
        assert game.global_state(result.state).shape == (64, game.state_dim)
        state = result.state


def test_fewer_levels_than_agents_without_punishment_validates_and_plays() -> None:
    # the punish phase's names (one per other agent) were built even with punishment off,
    # overflowing the action list when levels <= agents
    import mas

    scenario = mas.scenario.parse_scenario({
        "name": "pg", "game": {"kind": "public_goods", "levels": 3}, "rounds": 2,
        "agents": [{"id": "a", "count": 4, "policy": "conditional_cooperator"}],
    })
    from mas.episode import EpisodeEngine

    info = EpisodeEngine(scenario).info
    assert [name.split()[0] for name in info.action_labels(0, {"phase": "contribute"})] == ["contribute"] * 3
    assert len(mas.run(scenario, episodes=1, seed=0)) == 1
