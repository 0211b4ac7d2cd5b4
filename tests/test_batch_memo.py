"""Memoised training steps (`EpisodeEngine.memoise_steps`, `mas.batch_memo`) are the engine's
steps: the same transitions, states, observations and masks as stepping the game, for every
reactive scripted opponent; refused where a policy keeps memory; left for the general step
when an action is illegal."""

from __future__ import annotations

import numpy as np
import pytest

from mas.episode import EpisodeEngine
from mas.scenario import parse_scenario
from mas.vector import VectorEnv

PD = {"kind": "normal_form", "actions": ["C", "D"], "cooperate": "C", "defect": "D",
      "payoffs": {"C,C": [3, 3], "C,D": [0, 5], "D,C": [5, 0], "D,D": [1, 1]}, "memory": 2}


def scenario(opponent: str | None, rounds: int = 5):
    agents = [{"id": "me", "policy": "iql"}, {"id": "them", "policy": opponent or "iql"}]
    return parse_scenario({"name": "pd", "game": PD, "rounds": rounds, "agents": agents})


def engines(opponent: str | None, copies: int) -> tuple[EpisodeEngine, EpisodeEngine]:
    external = ["me"] if opponent else ["me", "them"]
    pair = [EpisodeEngine(scenario(opponent), copies, external=external, seed=1, auto_reset=True, batch_policies=True)
            for _ in range(2)]
    for engine in pair:
        engine.reset(np.random.default_rng(5))
    return pair[0], pair[1]


def assert_same(a, b) -> None:  # noqa: ANN001
    for name in ("active", "episodes", "rounds", "steps", "actions", "illegal", "rewards", "cooperation",
                 "terminated", "truncated"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert dict(a.final_state).keys() == dict(b.final_state).keys()
    for key in b.final_state:
        np.testing.assert_array_equal(a.final_state[key], b.final_state[key], err_msg=key)


@pytest.mark.parametrize("opponent", ["tit_for_tat", "suspicious_tit_for_tat", "pavlov", "always_defect", None])
def test_memoised_steps_are_the_engine_steps(opponent):
    memo, plain = engines(opponent, 6)
    assert memo.memoise_steps() is True
    width = 1 if opponent else 2
    draws = np.random.default_rng(0).integers(0, 2, size=(40, 6, width))
    for actions in draws:
        assert_same(memo.step(actions), plain.step(actions))
        assert memo.state_ids is not None
        for name in ("observations", "mask", "played", "last_actions", "rounds", "steps", "episodes", "active"):
            np.testing.assert_array_equal(getattr(memo, name), getattr(plain, name), err_msg=name)
        for key in plain.state:
            np.testing.assert_array_equal(memo.state[key], plain.state[key], err_msg=key)
    # few states, each stepped by the game once per joint action: 1 + 4 + 16 histories of two rounds
    assert len(memo.memo) <= 21


def test_a_policy_with_memory_is_not_memoised():
    memo, _ = engines("grim_trigger", 3)
    assert memo.memoise_steps() is False
    assert memo.state_ids is None


def test_an_illegal_action_goes_back_to_the_general_step():
    memo, plain = engines("tit_for_tat", 4)
    memo.memoise_steps()
    actions = np.array([[0], [7], [1], [-1]])  # out of range: replaced by the first legal action
    moved = memo.step(actions)
    assert_same(moved, plain.step(actions))
    assert moved.illegal[:, 0].tolist() == [False, True, False, True]
    assert memo.state_ids is None  # stepping the game from here (until the next reset)
    later = np.array([[1], [0], [0], [1]])
    for _ in range(7):  # across the episodes' ends
        assert_same(memo.step(later), plain.step(later))
    memo.reset(np.random.default_rng(5))
    assert memo.state_ids is not None


def test_tabular_vector_steps_carry_ids_and_see_the_same():
    """A tabular env's memoised steps equal its steps without the memo, and each id always
    shows the same observation."""
    envs = [VectorEnv(scenario("tit_for_tat", rounds=4), ["me"], 5, seed=2) for _ in range(2)]
    for env in envs:
        env.reset()
    envs[0].use_tabular_steps()
    envs[1].tabular = True  # numpy steps, the engine stepping the game
    seen: dict[int, bytes] = {}
    for actions in np.random.default_rng(1).integers(0, 2, size=(30, 5, 1)):
        memo, plain = (env.step(actions) for env in envs)
        assert plain.ids is None and memo.ids is not None and memo.all_legal
        for name in ("obs", "mask", "rewards", "terminated", "truncated", "final_obs", "final_mask",
                     "finished_returns", "cooperation"):
            np.testing.assert_array_equal(getattr(memo, name), getattr(plain, name), err_msg=name)
        for ids, obs in ((memo.ids, memo.obs), (memo.final_ids, memo.final_obs)):
            for i, row in zip(ids.tolist(), obs):
                assert seen.setdefault(i, row.tobytes()) == row.tobytes()
