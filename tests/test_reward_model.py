"""The LLM as reward model (`mas.reward_model`): a judge's likelihood of an answer about a
message or an outcome, weighted, stored as its own column and added to what learners train on."""

from __future__ import annotations

import copy
import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from mas.errors import ScenarioError
from mas.runner import run
from mas.scenario import parse_scenario
from tests.conftest import PD
from tests.fake_backend import FAKE_CONFIG, installed


def _honest(text: str, candidate: str) -> float:
    """The judge: a message that says "promise" is honest with probability 0.8, else 0.1."""
    p = 0.8 if "promise" in text.split("\n\n")[-1] else 0.1
    return p if candidate == "Yes" else 1 - p


def _scenario(**reward_model) -> dict:
    data = copy.deepcopy(PD)
    data["rounds"] = 3
    data["comms"] = {"mode": "broadcast", "talk_rounds": 1}
    data["agents"] = [
        {"id": "a", "policy": {"type": "always_cooperate", "message": "I promise to cooperate"}},
        {"id": "b", "policy": {"type": "always_defect", "message": "whatever"}},
    ]
    data["reward_model"] = {"prompt": "Is this message honest? {text}", "answer": "Yes", "backend": FAKE_CONFIG, **reward_model}
    return data


def test_message_judgements_are_their_own_column_weighted_and_the_game_reward_is_kept(tmp_path: Path) -> None:
    with installed(_honest) as judge:
        run(parse_scenario(_scenario(weight=0.5)), episodes=1, seed=0, out_dir=tmp_path / "run")
    rows = sqlite3.connect(tmp_path / "run" / "run.sqlite").execute(
        "SELECT agent, reward, reward_model FROM steps ORDER BY step, agent").fetchall()
    # a says its message in the talk step: one judgement a round
    assert rows == [("a", 0.0, pytest.approx(0.4)), ("b", 5.0, pytest.approx(0.05))] * 3
    assert sum(judge.score_calls) == 2  # two distinct texts, each judged once (cached)


def test_versus_normalises_and_agents_limits_who_is_paid(tmp_path: Path) -> None:
    def judge(text: str, candidate: str) -> float:
        return {"Yes": 0.2, "No": 0.6}.get(candidate, 0.0)

    with installed(judge):
        run(parse_scenario(_scenario(versus=["No"], agents=["a"], on="outcome")), 1, 0, tmp_path / "run")
    values = sqlite3.connect(tmp_path / "run" / "run.sqlite").execute(
        "SELECT agent, reward_model FROM steps ORDER BY step, agent").fetchall()
    assert values == [("a", pytest.approx(0.25)), ("b", 0.0)] * 3  # 0.2 / (0.2 + 0.6)


def test_without_a_reward_model_the_column_is_null_and_the_scenario_is_stored_as_before(tmp_path: Path) -> None:
    run(parse_scenario(PD), 1, 0, tmp_path / "run")
    db = sqlite3.connect(tmp_path / "run" / "run.sqlite")
    assert {r[0] for r in db.execute("SELECT reward_model FROM steps")} == {None}
    assert "reward_model" not in db.execute("SELECT value FROM meta WHERE key = 'scenario'").fetchone()[0]


@pytest.mark.parametrize(("change", "message"), [
    ({"agents": ["zed"]}, "reward_model.agents: ['zed'] are not agents of the scenario"),
    ({"weight": float("nan")}, "reward_model.weight"),
    ({"on": "mood"}, "reward_model.on"),
    ({"versus": ["Yes"]}, "must not repeat the answer"),
])
def test_bad_reward_model_options_are_one_line_errors(change: dict, message: str) -> None:
    with pytest.raises(ScenarioError) as err:
        parse_scenario(_scenario(**change))
    assert message in str(err.value)


def _learner_scenario(weight: float, algo: str) -> dict:
    data = copy.deepcopy(PD)
    data["rounds"] = 10
    data["agents"] = [{"id": "me", "policy": {"type": algo}}, {"id": "them", "policy": "always_cooperate"}]
    data["reward_model"] = {"prompt": "Was this round kind? {text}", "answer": "Yes", "on": "outcome",
                            "weight": weight, "agents": ["me"], "backend": FAKE_CONFIG}
    return data


def _kind(text: str, candidate: str) -> float:
    """The judge calls a round kind when the learner cooperated."""
    return 0.999 if "me played C" in text else 0.001


@pytest.mark.parametrize("algo", ["iql", "mappo"])
def test_learners_train_on_the_reward_models_component(tmp_path: Path, algo: str) -> None:
    pytest.importorskip("torch")
    from mas.training.run import train

    results = {}
    with installed(_kind):
        for weight in (0.0, 10.0):
            scenario = parse_scenario(_learner_scenario(weight, algo))
            results[weight] = train(scenario, algo, 8_000, 0, tmp_path / f"{algo}{weight}", device="cpu",
                                    final_episodes=0, tensorboard=False).final_eval
    # the game alone: defect against a cooperator (5 a round); a kind judge worth 10: cooperate (3 + ~10)
    assert results[0.0]["eval_cooperation/me"] == 0.0
    assert results[10.0]["eval_cooperation/me"] == 1.0
    assert results[10.0]["eval_return/me"] == pytest.approx(10 * (3 + 9.99), rel=1e-3)


def test_the_pettingzoo_env_pays_the_judged_component_on_its_fast_path() -> None:
    # comms off, every seat external, fixed rounds: the env's memoised single-copy step,
    # which must not skip the judge
    import mas

    data = _learner_scenario(2.0, "iql")
    data["agents"][0]["policy"] = "always_cooperate"
    with installed(_kind):
        env = mas.make_env(parse_scenario(data), seed=0)
        env.reset(seed=0)
        paid = [env.step({"me": 0, "them": 0})[1]["me"] for _ in range(3)]
    assert paid == [pytest.approx(3 + 2 * 0.999)] * 3


def test_components_skip_silent_agents_and_finished_copies() -> None:
    from mas.reward_model import RewardModel, RewardModelConfig
    from tests.fake_backend import RuleBackend

    config = RewardModelConfig(prompt="Honest?", answer="Yes", weight=2.0)
    model = RewardModel(config, ["a", "b"], backend=RuleBackend(_honest))
    words = [{"a": ["I promise"], "b": []}, {"a": ["I promise"]}]
    out = model.components(words, np.zeros((2, 2), dtype=np.int64), np.zeros((2, 2)), [["C", "D"]] * 2,
                           active=np.array([True, False]))
    assert out.tolist() == [[pytest.approx(1.6), 0.0], [0.0, 0.0]]


def test_the_embedded_model_judges_with_its_likelihood_of_the_answer() -> None:
    pytest.importorskip("transformers")
    from mas.agents.llm.backend import ScoreRequest
    from mas.agents.llm.factory import get_backend
    from mas.reward_model import RewardModel, RewardModelConfig, judge_messages

    config = RewardModelConfig(prompt="Is this message honest? Answer Yes or No.\n{text}", answer="Yes", versus=["No"])
    model = RewardModel(config, ["a"])
    texts = ["I will cooperate, I promise.", "I will cooperate, I promise."]
    p = model.probabilities(texts)
    [direct] = get_backend(config.backend).score([ScoreRequest(judge_messages(config, texts[0]), ("Yes", "No"))])
    yes, no = (math.exp(v) for v in direct.logprobs)
    assert p == [pytest.approx(yes / (yes + no), rel=1e-4)] * 2 and 0 < p[0] < 1
