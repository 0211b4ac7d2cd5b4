"""The PettingZoo adapter: any parallel env with discrete actions, many copies, MAPPO on top."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import mas  # noqa: E402
from mas.agents.rl.config import MAPPOConfig  # noqa: E402
from mas.agents.rl.mappo import MAPPO  # noqa: E402
from mas.agents.rl.pettingzoo_adapter import PettingZooVectorEnv  # noqa: E402
from mas.scenario import parse_scenario  # noqa: E402
from mas.seeding import child_seed  # noqa: E402

SIGNALLING = {"name": "s", "game": {"kind": "signalling", "targets": ["red", "green", "blue"]}, "rounds": 10,
              "agents": [{"id": "speaker", "policy": "mappo"}, {"id": "listener", "policy": "mappo"}]}


@pytest.fixture(autouse=True)
def single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def check_against_reference(make, steps: int = 30) -> None:
    """Copy 0 of the adapter sees exactly what a separately made env with its seed sees."""
    adapter = PettingZooVectorEnv(make, num_envs=3, seed=7)
    reference = make()
    observations, _ = reference.reset(seed=child_seed(7, "copy", 0, 0))
    step = adapter.reset()
    rng = np.random.default_rng(0)
    for _ in range(steps):
        legal = step.mask[0].numpy()
        actions = np.stack([[rng.choice(np.flatnonzero(legal[k])) for k in range(adapter.n_learners)] for _ in range(3)])
        expected_obs = np.stack([np.asarray(observations[a]["observation"] if isinstance(observations[a], dict) else observations[a],
                                            dtype=np.float32).reshape(-1) for a in adapter.learners])
        np.testing.assert_allclose(step.obs[0, :, : expected_obs.shape[1]].numpy(), expected_obs, rtol=1e-6)
        step = adapter.step(actions)
        observations, rewards, terms, truncs, _ = reference.step({a: int(actions[0, k]) for k, a in enumerate(adapter.learners)})
        np.testing.assert_allclose(step.rewards[0].numpy(), [rewards[a] for a in adapter.learners], rtol=1e-6)
        if not reference.agents:
            assert bool(step.terminated[0] | step.truncated[0])
            break
        assert not bool(step.terminated[0] | step.truncated[0])


def test_adapter_matches_a_plain_mas_pettingzoo_env():
    check_against_reference(lambda: mas.make_env(parse_scenario(SIGNALLING)))


def test_adapter_matches_mpe2_simple_spread():
    simple_spread = pytest.importorskip("mpe2.simple_spread_v3")
    check_against_reference(lambda: simple_spread.parallel_env(N=3, max_cycles=25))


def test_mappo_learns_to_coordinate_through_the_pettingzoo_adapter():
    # a mas env used as an external PettingZoo env: dict observations with action masks
    coordination = {"name": "c", "rounds": 5, "agents": [{"id": "a", "policy": "mappo"}, {"id": "b", "policy": "mappo"}],
                    "game": {"kind": "normal_form", "actions": ["L", "R"],
                             "payoffs": {"L,L": [1, 1], "R,R": [1, 1], "L,R": [0, 0], "R,L": [0, 0]}}}
    make = lambda: mas.make_env(parse_scenario(coordination))  # noqa: E731
    env = PettingZooVectorEnv(make, num_envs=16, seed=0)
    assert (env.obs_dim, env.num_actions, env.state_dim) == (5, 2, 5)  # state() of the env is used
    learner = MAPPO(MAPPOConfig(num_envs=16, rollout_steps=5, lr=3e-3, critic_lr=3e-3), env, torch.device("cpu"), seed=0)
    step = env.reset()
    while learner.env_steps < 4_000:
        step, _, _ = learner.collect_and_update(env, step)
    evaluation = PettingZooVectorEnv(make, num_envs=8, seed=1)
    step, total = evaluation.reset(), np.zeros((8, 2))
    for _ in range(5):
        step = evaluation.step(learner.act_batch(step, greedy=True))
        total += step.rewards.numpy()
    assert (total == 5.0).all()  # every copy matched in every round


def test_the_simple_spread_benchmark_converts_to_the_official_units_with_self_collisions():
    # the official reward counts each agent's collision with itself: -1 x 3 agents x 25 steps
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "mappo_simple_spread.py"
    spec = importlib.util.spec_from_file_location("mappo_simple_spread", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.official_units(-108.7 / 6) == pytest.approx(-183.7)  # the figure: not better than -120
    assert bench.official_units(bench.RANDOM_PER_AGENT) == pytest.approx(-231.6)
