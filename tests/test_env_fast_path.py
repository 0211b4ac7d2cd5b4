"""The single-copy fast path of the PettingZoo env: states seen before reuse their arrays
(`Game.observe_key`), plain actions skip the general parsing; results stay the same."""

from __future__ import annotations

import numpy as np

import mas
from mas.env import _as_action


def _pd(rounds: int = 30):
    return mas.load_scenario("prisoners_dilemma").model_copy(update={"rounds": rounds})


def test_cached_observations_equal_fresh_ones_and_are_not_shared() -> None:
    env = mas.make_env(_pd(), seed=3)
    game, rng = env.game, np.random.default_rng(0)
    previous = None
    while env.agents:
        obs, *_ = env.step({a: int(rng.integers(2)) for a in env.agents})
        fresh = game.observe(env.engine.state)[0]
        fresh_mask = game.action_mask(env.engine.state)[0]
        for i, agent in enumerate(env.possible_agents):
            np.testing.assert_array_equal(obs[agent]["observation"], fresh[i])
            np.testing.assert_array_equal(obs[agent]["action_mask"], fresh_mask[i])
            assert obs[agent]["observation"].flags.writeable  # the caller's own copy
        if previous is not None:
            assert not np.shares_memory(previous["alice"]["observation"], obs["alice"]["observation"])
        previous = obs
    assert not env.engine.observations.flags.writeable  # the engine's cached arrays are never changed
    assert 0 < len(env.engine._seen) <= 5  # PD with memory 1: the start and the 4 joint actions


def test_fast_action_parsing_matches_the_general_rules() -> None:
    assert _as_action(np.int64(1)) == 1
    assert _as_action({"action": 1, "message": ""}) == 1
    assert _as_action(None) == -1 and _as_action("x") == -1 and _as_action(2**70) == -1
    env = mas.make_env(_pd(), seed=0)
    _, _, _, _, infos = env.step({"alice": 7, "bob": np.int64(1)})
    assert infos["alice"]["illegal_action"] and not infos["bob"]["illegal_action"]
    assert env.last_actions == {"alice": 0, "bob": 1}  # illegal: the first legal action


def test_same_seed_same_episode_with_and_without_the_cache() -> None:
    def play(cache: bool) -> list:
        env = mas.make_env(_pd(12), seed=5)
        if not cache:
            env.engine._seen = None
            env.engine._refresh()
        rng, out = np.random.default_rng(1), []
        while env.agents:
            obs, rewards, terms, truncs, infos = env.step({a: int(rng.integers(-1, 3)) for a in env.agents})
            out.append((obs["bob"]["observation"].tolist(), rewards, truncs, infos))
        return out

    assert play(True) == play(False)
