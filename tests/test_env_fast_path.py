"""The single-copy fast path of the PettingZoo env: states seen before reuse their arrays
(`Game.observe_key`), steps seen before are memoised (`mas.state_memo`), plain actions skip
the general parsing; results stay the same."""

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


def _episode(env, rng: np.random.Generator, odd: bool) -> list:
    """Every step's outputs and the engine's state after it (`odd`: some illegal or
    unusual action values among the plain ones)."""
    unusual = [7, -1, None, np.int64(1), 1.0, True, {"action": 1}, "x", 2**70]
    out = []
    while env.agents:
        actions = {}
        for agent in env.agents:
            actions[agent] = unusual[int(rng.integers(len(unusual)))] if odd and rng.random() < 0.3 else int(rng.integers(2))
        obs, rewards, terms, truncs, infos = env.step(actions)
        engine = env.engine
        out.append(({a: (o["observation"].tolist(), o["action_mask"].tolist()) for a, o in obs.items()}, rewards, terms,
                    truncs, infos, {k: v.tolist() for k, v in engine.state.items()}, env.last_actions,
                    engine.last_rewards.tolist(), env.round, env.steps, bool(engine.active[0]), env.state().tolist()))
    return out


def _memo_moves(env) -> int:
    return sum(len(node.moves) for node in env.engine._seen.nodes.values())


def test_memoised_steps_equal_the_general_step() -> None:
    for memory in (1, 3):
        scenario = _pd(40).model_copy(update={"game": _pd().game.model_copy(update={"memory": memory})})
        for odd in (False, True):
            fast, slow = mas.make_env(scenario, seed=2), mas.make_env(scenario, seed=2)
            slow.engine._seen = None  # nothing remembered: every step through `EpisodeEngine.step`
            slow.engine._refresh()
            for episode in range(3):
                rng = np.random.default_rng(episode)
                assert _episode(fast, rng, odd) == _episode(slow, np.random.default_rng(episode), odd)
                fast.reset(), slow.reset()
            assert _memo_moves(fast) > 0  # the fast env did take memoised steps
            assert fast.engine.state["played"].tolist() == [0]


def test_memoised_state_counts_rounds_and_is_shared_read_only() -> None:
    env = mas.make_env(_pd(12), seed=0)
    for _ in range(5):
        env.step({"alice": 0, "bob": 1})
    state = env.engine.state
    assert state["played"].tolist() == [5] and state["history"].tolist() == [[[0, 1]]]
    assert not state["history"].flags.writeable  # shared by every visit of the state
    # PD, memory 1: 5 states, and at most the 4 joint actions from each
    assert len(env.engine._seen) <= 5 and _memo_moves(env) <= 4 * 5


def test_memo_starts_over_at_its_limit(monkeypatch) -> None:
    import mas.state_memo

    monkeypatch.setattr(mas.state_memo, "LIMIT", 6)
    scenario = _pd(60).model_copy(update={"game": _pd().game.model_copy(update={"memory": 3})})
    fast, slow = mas.make_env(scenario, seed=1), mas.make_env(scenario, seed=1)
    slow.engine._seen = None
    slow.engine._refresh()
    assert _episode(fast, np.random.default_rng(4), False) == _episode(slow, np.random.default_rng(4), False)
    assert len(fast.engine._seen) <= 6 and _memo_moves(fast) <= 6
