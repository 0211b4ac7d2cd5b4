"""The batched training env: same rules as the PettingZoo env, auto-reset, opponents."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

import mas  # noqa: E402
from mas.scenario import parse_scenario  # noqa: E402
from mas.vector import VectorEnv  # noqa: E402
from tests.conftest import PD  # noqa: E402


def pd(opponent: str = "tit_for_tat", rounds=4, **game) -> mas.scenario.Scenario:
    data = {**PD, "rounds": rounds, "game": {**PD["game"], **game}}
    data["agents"] = [{"id": "me", "policy": "iql"}, {"id": "them", "policy": opponent}]
    return parse_scenario(data)


def test_rewards_equal_the_pettingzoo_env_for_the_same_joint_actions():
    scenario = pd(rounds=6)
    env = VectorEnv(scenario, ["me", "them"], num_envs=3, seed=0)
    env.reset()
    pz = mas.make_env(scenario, seed=0)
    rng = np.random.default_rng(0)
    for _ in range(5):
        joint = rng.integers(0, 2, size=(3, 2))
        step = env.step(joint)
        _, rewards, *_ = pz.step({"me": int(joint[0, 0]), "them": int(joint[0, 1])})
        assert step.rewards[0].tolist() == [rewards["me"], rewards["them"]]
        np.testing.assert_array_equal(step.obs[0].numpy(), np.stack([pz.views()[a].observation for a in ("me", "them")]))
        np.testing.assert_array_equal(step.state[0].numpy(), pz.state())


def test_fixed_rounds_truncate_and_the_copy_starts_over():
    env = VectorEnv(pd(rounds=3), ["me"], num_envs=2, seed=0)
    first = env.reset()
    for _ in range(2):
        step = env.step(np.ones((2, 1), dtype=int))
        assert not step.truncated.any()
    step = env.step(np.ones((2, 1), dtype=int))
    assert step.truncated.all() and not step.terminated.any()
    # the final observation shows the last round; the next one is a fresh episode
    assert not np.array_equal(step.final_obs.numpy(), step.obs.numpy())
    np.testing.assert_array_equal(step.obs.numpy(), first.obs.numpy())
    # defecting against tit-for-tat: 5 then 1, 1 -> return 7 for each copy
    np.testing.assert_array_equal(step.finished_returns, [[7.0], [7.0]])


def test_scripted_opponent_acts_through_the_policy_interface_per_copy():
    env = VectorEnv(pd(rounds=10), ["me"], num_envs=2, seed=0)
    env.reset()
    # copy 0 defects once, copy 1 always cooperates; tit-for-tat answers each copy separately
    rewards = [env.step(np.array([[1], [0]])).rewards[:, 0].tolist(), env.step(np.array([[0], [0]])).rewards[:, 0].tolist()]
    assert rewards == [[5.0, 3.0], [0.0, 3.0]]  # TFT cooperated, then punished copy 0 only


def test_continuation_rounds_end_by_termination_at_about_the_right_rate():
    data = {**PD, "rounds": {"continuation": 0.8, "max": 1000}}
    data["agents"] = [{"id": "me", "policy": "iql"}, {"id": "them", "policy": "always_cooperate"}]
    env = VectorEnv(parse_scenario(data), ["me"], num_envs=500, seed=1)
    env.reset()
    ended = env.step(np.zeros((500, 1), dtype=int))
    assert not ended.truncated.any()
    assert 0.14 < ended.terminated.float().mean().item() < 0.26  # 1 - 0.8 = 0.2


def test_same_seed_same_draws_and_learner_checks():
    data = {"name": "s", "game": {"kind": "signalling"}, "rounds": 4,
            "agents": [{"id": "speaker", "policy": "mappo"}, {"id": "listener", "policy": "mappo"}]}
    scenario = parse_scenario(data)
    a, b = (VectorEnv(scenario, ["speaker", "listener"], 8, seed=5) for _ in range(2))
    np.testing.assert_array_equal(a.reset().state.numpy(), b.reset().state.numpy())
    c = VectorEnv(scenario, ["speaker", "listener"], 8, seed=6)
    assert not np.array_equal(a.reset().state.numpy(), c.reset().state.numpy())
    with pytest.raises(ValueError, match="subset"):
        VectorEnv(scenario, ["nobody"], 2, seed=0)


def test_tabular_steps_are_the_tensor_steps_as_numpy_without_the_global_state():
    def play(tabular: bool) -> list:
        env = VectorEnv(pd(rounds=3), ["me"], num_envs=4, seed=1)
        env.reset()
        if tabular:
            env.use_tabular_steps()
        rng, out = np.random.default_rng(2), []
        for _ in range(7):  # two restarts
            step = env.step(rng.integers(0, 2, size=(4, 1)))
            assert (step.state is None and step.final_state is None) if tabular else step.state is not None
            fields = ("obs", "mask", "rewards", "terminated", "truncated", "final_obs", "final_mask")
            arrays = [getattr(step, f) for f in fields]
            assert all(isinstance(a, np.ndarray) != (not tabular) for a in arrays)
            out.append([(np.asarray(a).dtype, np.asarray(a).tolist()) for a in arrays] + [step.finished_returns.tolist()])
        return out

    assert play(True) == play(False)
    env = VectorEnv(pd(), ["me"], num_envs=2, seed=0)
    env.use_tabular_steps()
    assert not isinstance(env.reset().obs, np.ndarray) and not env.tabular  # a reset goes back to tensors


def test_illegal_or_missing_actions_in_a_batch_are_replaced_and_flagged():
    from mas.episode import EpisodeEngine

    engine = EpisodeEngine(pd(), batch_size=3, external=["me", "them"])
    engine.reset(np.random.default_rng(0))
    moved = engine.step(np.array([[0, 1], [5, 0], [1, -1]]))
    assert moved.actions.tolist() == [[0, 1], [0, 0], [1, 0]]
    assert moved.illegal.tolist() == [[False, False], [True, False], [False, True]]
    moved = engine.step(np.array([[1, 1], [0, 0], [1, 0]]))
    assert not moved.illegal.any() and moved.actions.tolist() == [[1, 1], [0, 0], [1, 0]]
