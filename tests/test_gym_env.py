"""The Gymnasium single-agent view of a scenario: the env checker, talk steps with and
without a vocabulary, and a standard tabular Q-learning loop that learns against the
scenario's own policies."""

from __future__ import annotations

import copy
from collections import defaultdict

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import mas
from mas.scenario import parse_scenario
from tests.conftest import PD


def _pd(opponent: str, rounds: int = 10, comms: dict | None = None) -> mas.Scenario:
    data = copy.deepcopy(PD)
    data["rounds"] = rounds
    data["agents"] = [{"id": "me", "policy": "random"}, {"id": "other", "policy": opponent}]
    if comms:
        data["comms"] = comms
    return parse_scenario(data)


TALKING = {"mode": "broadcast", "talk_rounds": 1, "vocabulary": ["deal", "no"]}


@pytest.mark.filterwarnings("ignore:.*Box observation space (minimum|maximum) value")
@pytest.mark.parametrize("scenario", ["prisoners_dilemma", "prisoners_dilemma_talk", "commons", "vocabulary"])
def test_env_checker_passes(scenario: str) -> None:
    scenario = _pd("tit_for_tat", comms=TALKING) if scenario == "vocabulary" else mas.load_scenario(scenario)
    check_env(mas.make_gym_env(scenario, agent=scenario.agent_ids[0]), skip_render_check=True)


def test_talk_steps_are_played_inside_step_without_a_vocabulary() -> None:
    """prisoners_dilemma_talk has talk steps but no vocabulary: every step of the env is an
    action step, the seat stays silent, and the opponent's talk still arrives."""
    env = mas.make_gym_env("prisoners_dilemma_talk", agent="alice")
    assert env.action_space.n == 2 and env.observation_space.shape == (5,)
    _, info = env.reset(seed=0)
    assert info["talking"] is False and info["round"] == 0 and info["action_mask"].tolist() == [1, 1]
    assert env.engine.steps[0] == 1  # round 0's talk step is behind us
    assert [m.sender for m in env.engine.inboxes[0]["alice"]] == ["bob"]  # bob talked
    assert env.engine.inboxes[0]["bob"] == ()  # alice stayed silent
    *_, info = env.step(0)
    assert info["round"] == 1 and not info["talking"] and env.engine.steps[0] == 3


def test_token_actions_in_talk_steps_reach_the_others() -> None:
    env = mas.make_gym_env(_pd("tit_for_tat", comms=TALKING), agent="me")
    assert env.action_space.n == 2 + 1 + 2  # C, D, silence, deal, no
    obs, info = env.reset(seed=3)
    assert info["talking"] and info["action_mask"].tolist() == [0, 0, 1, 1, 1] and obs[-3] == 1.0
    _, reward, *_, info = env.step(3)  # say "deal"
    assert reward == 0.0 and not info["talking"] and not info["illegal_action"]
    assert [m.text for m in env.engine.inboxes[0]["other"]] == ["deal"]
    _, reward, *_, info = env.step(0)  # cooperate with tit-for-tat: 3
    assert reward == 3.0 and info["talking"]
    _, _, *_, info = env.step(1)  # a game action in a talk step: illegal, said nothing
    assert info["illegal_action"] and env.engine.inboxes[0]["other"] == ()
    _, reward, *_, info = env.step(4)  # a token in an action step: replaced by C, flagged
    assert info["illegal_action"] and reward == 3.0


def test_reset_with_a_seed_replays_the_opponents_and_chances() -> None:
    env = mas.make_gym_env(_pd("joss"), agent="me")  # joss defects at random

    def rewards(seed: int | None) -> list[float]:
        env.reset(seed=seed)
        return [env.step(0)[1] for _ in range(10)]

    first = rewards(5)
    assert rewards(5) == first
    assert any(rewards(None) != first for _ in range(5))


def _q_learning(env: mas.gym_env.MasGymEnv, episodes: int, seed: int = 0) -> dict:
    """Tabular epsilon-greedy Q-learning over the observation vector as the state."""
    q: dict = defaultdict(lambda: np.zeros(env.action_space.n))
    rng = np.random.default_rng(seed)
    alpha, gamma = 0.2, 0.9
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed if episode == 0 else None)
        epsilon = max(0.05, 1.0 - episode / (0.7 * episodes))
        done = False
        while not done:
            state = tuple(obs)
            action = int(rng.integers(env.action_space.n)) if rng.random() < epsilon else int(np.argmax(q[state]))
            obs, reward, terminated, truncated, _ = env.step(action)
            target = reward + (0.0 if terminated else gamma * q[tuple(obs)].max())  # truncation bootstraps
            q[state][action] += alpha * (target - q[state][action])
            done = terminated or truncated
    return q


def _greedy_return(env: mas.gym_env.MasGymEnv, q: dict) -> tuple[float, float]:
    obs, _ = env.reset(seed=123)
    total, cooperated, steps, done = 0.0, 0, 0, False
    while not done:
        action = int(np.argmax(q[tuple(obs)]))
        obs, reward, terminated, truncated, _ = env.step(action)
        total += reward
        cooperated += action == 0
        steps += 1
        done = terminated or truncated
    return total, cooperated / steps


@pytest.mark.parametrize(("opponent", "lowest_return", "cooperation"), [
    ("tit_for_tat", 27.0, (0.9, 1.0)),  # always defecting earns 14, cooperating 30
    ("always_defect", 10.0, (0.0, 0.0)),  # cooperating earns 0, defecting 10
])
def test_tabular_q_learning_learns_the_best_reply(opponent: str, lowest_return: float, cooperation: tuple) -> None:
    env = mas.make_gym_env(_pd(opponent), agent="me")
    q = _q_learning(env, episodes=300)
    total, rate = _greedy_return(env, q)
    assert total >= lowest_return, (opponent, total, rate)
    assert cooperation[0] <= rate <= cooperation[1], (opponent, total, rate)


def test_unknown_seat_is_a_one_line_error() -> None:
    with pytest.raises(ValueError, match="agent 'carol' is not in scenario 'prisoners_dilemma'; agents: alice, bob"):
        mas.make_gym_env("prisoners_dilemma", agent="carol")
