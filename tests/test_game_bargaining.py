"""Alternating-offers bargaining: hand-computed splits, deadlines and masks."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from pydantic import ValidationError

from mas.games.bargaining import BargainingConfig, BargainingGame

G = BargainingGame
RNG = np.random.default_rng(0)


def make(**kwargs) -> BargainingGame:
    return BargainingGame(BargainingConfig(**kwargs), 2)


def joint(mover: int, action: int, batch: int = 1) -> np.ndarray:
    """Joint actions where `mover` plays `action` and the other seat waits."""
    actions = np.zeros((batch, 2), dtype=np.int64)
    actions[:, mover] = action
    return actions


def legal(mask_row: np.ndarray) -> set[int]:
    return {int(i) for i in np.flatnonzero(mask_row)}


def test_sizes_and_names():
    game = make(units=10)
    assert (G.WAIT, G.ACCEPT, G.REJECT, G.OFFER0) == (0, 1, 2, 3)
    assert game.num_actions == 14
    names = game.action_names(0)
    assert len(names) == 14
    assert names[:3] == ["wait", "accept", "reject"]
    assert names[G.OFFER0 + 3].startswith("offer 3")
    state = game.reset(5, RNG)
    assert game.observe(state).shape == (5, 2, game.obs_dim)
    assert game.global_state(state).shape == (5, game.state_dim)
    assert game.observe(state).dtype == np.float32
    assert game.cooperation(state, np.zeros((5, 2), dtype=np.int64)) is None


def test_first_offer_accepted_splits_pie_exactly():
    game = make(pie=10, units=10)
    state = game.reset(1, RNG)
    state = game.step(state, joint(0, G.OFFER0 + 3), RNG).state
    result = game.step(state, joint(1, G.ACCEPT), RNG)
    np.testing.assert_allclose(result.rewards[0], [7.0, 3.0])
    assert result.rewards.dtype == np.float32
    assert result.terminated[0]
    summary = game.summary(result.state, 0)
    assert summary["agreed"] is True
    assert summary["offer"] == 3
    assert summary["offers_made"] == 1
    assert summary["shares"] == pytest.approx([7.0, 3.0])


def test_units_scale_to_pie():
    game = make(pie=100, units=4)
    state = game.reset(1, RNG)
    state = game.step(state, joint(0, G.OFFER0 + 1), RNG).state
    result = game.step(state, joint(1, G.ACCEPT), RNG)
    np.testing.assert_allclose(result.rewards[0], [75.0, 25.0])


def test_discounted_split_at_third_offer():
    game = make(pie=10, units=10, discount=0.9, max_offers=4)
    state = game.reset(1, RNG)
    state = game.step(state, joint(0, G.OFFER0 + 2), RNG).state  # offer 1 by seat 0
    state = game.step(state, joint(1, G.OFFER0 + 3), RNG).state  # offer 2 by seat 1 (counter)
    state = game.step(state, joint(0, G.OFFER0 + 4), RNG).state  # offer 3 by seat 0, 4 units to seat 1
    result = game.step(state, joint(1, G.ACCEPT), RNG)
    pie = 10 * 0.81
    np.testing.assert_allclose(result.rewards[0], [0.6 * pie, 0.4 * pie], rtol=1e-6)
    assert result.terminated[0]
    assert game.summary(result.state, 0)["offers_made"] == 3


def test_counter_offer_does_not_end_or_pay():
    game = make()
    state = game.reset(1, RNG)
    r1 = game.step(state, joint(0, G.OFFER0 + 5), RNG)
    r2 = game.step(r1.state, joint(1, G.OFFER0 + 6), RNG)
    for r in (r1, r2):
        assert not r.terminated[0]
        np.testing.assert_array_equal(r.rewards, 0.0)
    summary = game.summary(r2.state, 0)
    assert summary == {"offers_made": 2, "mover": 0, "offer": 6, "agreed": False, "shares": None}


def test_ultimatum_responder_accepts_or_rejects():
    game = make(max_offers=1, disagreement=1.5)
    state = game.reset(1, RNG)
    mask = game.action_mask(state)
    assert legal(mask[0, 0]) == set(range(G.OFFER0, game.num_actions))
    assert legal(mask[0, 1]) == {G.WAIT}
    state = game.step(state, joint(0, G.OFFER0 + 1), RNG).state
    mask = game.action_mask(state)
    assert legal(mask[0, 1]) == {G.ACCEPT, G.REJECT}
    assert legal(mask[0, 0]) == {G.WAIT}
    result = game.step(state, joint(1, G.REJECT), RNG)
    np.testing.assert_allclose(result.rewards[0], [1.5, 1.5])
    assert result.terminated[0]
    summary = game.summary(result.state, 0)
    assert summary["agreed"] is False
    assert summary["shares"] == pytest.approx([1.5, 1.5])


def test_masks_alternate_and_deadline_forbids_counter_offers():
    game = make(max_offers=3)
    state = game.reset(1, RNG)
    offers = set(range(G.OFFER0, game.num_actions))
    expected_mover = [0, 1, 0, 1]
    for t in range(3):
        mask = game.action_mask(state)
        mover = expected_mover[t]
        assert legal(mask[0, 1 - mover]) == {G.WAIT}
        if t == 0:
            assert legal(mask[0, mover]) == offers
        else:
            assert legal(mask[0, mover]) == offers | {G.ACCEPT}
        assert game.summary(state, 0)["mover"] == mover
        state = game.step(state, joint(mover, G.OFFER0 + 5), RNG).state
    # Three offers made: the deadline. Seat 1 may only accept or reject.
    mask = game.action_mask(state)
    assert legal(mask[0, 1]) == {G.ACCEPT, G.REJECT}
    assert legal(mask[0, 0]) == {G.WAIT}
    obs = game.observe(state)
    assert obs[0, 1, 4] == 1.0 and obs[0, 0, 4] == 1.0  # deadline flag
    result = game.step(state, joint(1, G.REJECT), RNG)
    assert result.terminated[0]
    np.testing.assert_allclose(result.rewards[0], [0.0, 0.0])
    # After the end both may only wait.
    mask = game.action_mask(result.state)
    assert legal(mask[0, 0]) == {G.WAIT} and legal(mask[0, 1]) == {G.WAIT}


def test_batch_mixes_outcomes_vectorised():
    game = make(pie=10, units=10, max_offers=2)
    state = game.reset(3, RNG)
    actions = np.zeros((3, 2), dtype=np.int64)
    actions[:, 0] = G.OFFER0 + np.array([3, 5, 10])
    state = game.step(state, actions, RNG).state
    # copy 0 accepts, copy 1 counter-offers, copy 2 accepts everything
    actions = np.zeros((3, 2), dtype=np.int64)
    actions[:, 1] = [G.ACCEPT, G.OFFER0 + 4, G.ACCEPT]
    result = game.step(state, actions, RNG)
    np.testing.assert_allclose(result.rewards, [[7, 3], [0, 0], [0, 10]])
    np.testing.assert_array_equal(result.terminated, [True, False, True])
    mask = game.action_mask(result.state)
    assert legal(mask[1, 0]) == {G.ACCEPT, G.REJECT}  # copy 1 is at its deadline
    assert legal(mask[0, 0]) == {G.WAIT}


def test_observation_frames_offer_for_viewer():
    game = make(units=10)
    state = game.reset(1, RNG)
    state = game.step(state, joint(0, G.OFFER0 + 3), RNG).state
    obs = game.observe(state)[0]
    # [my turn, has offer, my share if accepted, offers/max, deadline, pie left]
    np.testing.assert_allclose(obs[1], [1.0, 1.0, 0.3, 0.25, 0.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(obs[0], [0.0, 1.0, 0.7, 0.25, 0.0, 1.0], rtol=1e-6)


def test_step_does_not_mutate_input():
    game = make()
    state = game.reset(4, RNG)
    state = game.step(state, joint(0, G.OFFER0 + 2, batch=4), RNG).state
    before = copy.deepcopy(state)
    game.step(state, joint(1, G.ACCEPT, batch=4), RNG)
    for key, value in before.items():
        np.testing.assert_array_equal(state[key], value)


def test_text_mentions_amounts_and_remaining_offers():
    game = make(pie=10, units=10, discount=0.9, max_offers=4)
    state = game.reset(1, RNG)
    assert "first offer" in game.situation_text(state, 0, 0)
    state = game.step(state, joint(0, G.OFFER0 + 3), RNG).state
    text = game.situation_text(state, 0, 1)
    assert "offers you 3 of 10" in text and "3 more" in text
    assert "wait" in game.situation_text(state, 0, 0)
    assert "0.9" in game.rules_text(0)


def test_config_validation():
    with pytest.raises(ValueError, match="n_agents"):
        BargainingGame(BargainingConfig(), 3)
    with pytest.raises(ValidationError):
        BargainingConfig(pie=0)
    with pytest.raises(ValidationError):
        BargainingConfig(discount=1.5)
    with pytest.raises(ValidationError):
        BargainingConfig(max_offers=0)
    with pytest.raises(ValidationError):
        BargainingConfig(units=0)
    with pytest.raises(ValidationError):
        BargainingConfig(colour="red")
