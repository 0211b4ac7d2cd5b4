"""The LLM as world model (`mas.agents.llm.world_model`): predictions before acting, scored
against what happened; a planner on them; `mas worldmodel` over a stored run."""

from __future__ import annotations

import copy
import json
import math
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mas
from mas.agents.llm.world_model import expected_payoffs, score, score_predictions
from mas.errors import ScenarioError
from mas.runner import run
from mas.scenario import parse_scenario
from tests.conftest import PD
from tests.fake_backend import FAKE_CONFIG, installed

RANDOMS = [{"id": "a", "policy": "random"}, {"id": "b", "policy": "random"}]
OUTCOME_PROBS = {"0": 0.1, "1": 0.1, "3": 0.6, "5": 0.2}


def _rule(text: str, candidate: str) -> float:
    """Predictions: bob plays C with 0.7; own payoff by OUTCOME_PROBS; actions: C with 0.9."""
    last = text.rstrip().split("\n")[-1]
    if "what will bob play" in last:
        return {"C": 0.7, "D": 0.3}[candidate]
    if "what payoff" in last:
        return OUTCOME_PROBS[candidate]
    return {"C": 0.9, "D": 0.1}[candidate]


def _scenario(world_model, rounds: int = 3, other: str = "tit_for_tat") -> dict:
    data = copy.deepcopy(PD)
    data["rounds"] = rounds
    data["agents"] = [
        {"id": "alice", "policy": {"type": "llm", "backend": FAKE_CONFIG, "choice": "argmax", "world_model": world_model}},
        {"id": "bob", "policy": other},
    ]
    return data


def test_a_hand_made_prediction_is_scored_by_hand() -> None:
    prediction = {"labels": ["C", "D"], "probs": [0.8, 0.2]}
    assert score(prediction, "D") == ("C", 0.2, False, pytest.approx(-math.log(0.2)))
    assert score(prediction, "C") == ("C", 0.8, True, pytest.approx(-math.log(0.8)))
    info = mas.make_env(parse_scenario(PD)).engine.info
    decisions = [(0, 0, 0, "a", {"b": prediction}), (0, 1, 1, "a", {"b": prediction, "outcome": {"labels": ["0", "1", "3", "5"], "probs": [0.1, 0.2, 0.3, 0.4]}})]
    actions = {(0, 0, "b"): 0, (0, 1, "b"): 1}
    rewards = {(0, 1, "a"): 1.0}
    records = score_predictions(decisions, info, ["a", "b"], actions, rewards, {})
    assert [(r.target, r.actual, r.correct) for r in records] == [("b", "C", True), ("b", "D", False), ("outcome", "1", False)]
    assert np.mean([r.correct for r in records]) == pytest.approx(1 / 3)
    assert [r.log_loss for r in records] == pytest.approx([-math.log(0.8), -math.log(0.2), -math.log(0.2)])


def test_live_predictions_are_stored_and_scored(tmp_path: Path) -> None:
    with installed(_rule):
        run(parse_scenario(_scenario({"predict": ["actions", "outcome"]})), 1, 0, tmp_path / "run")
    db = sqlite3.connect(tmp_path / "run" / "run.sqlite")
    rows = db.execute("SELECT round, target, predicted, actual, probability, correct, log_loss, source FROM predictions "
                      "ORDER BY round, target").fetchall()
    # alice plays C (0.9), so tit for tat plays C every round; both agents get 3
    expected = []
    for r in range(3):
        expected += [(r, "bob", "C", "C", pytest.approx(0.7), 1, pytest.approx(-math.log(0.7)), "live"),
                     (r, "outcome", "3", "3", pytest.approx(0.6), 1, pytest.approx(-math.log(0.6)), "live")]
    assert rows == expected
    record = json.loads(db.execute("SELECT record FROM decisions LIMIT 1").fetchone()[0])
    assert record["predictions"]["bob"] == {"labels": ["C", "D"], "probs": [pytest.approx(0.7), pytest.approx(0.3)]}


def test_the_planner_plays_the_best_expected_payoff_under_its_predictions(tmp_path: Path) -> None:
    with installed(_rule):
        run(parse_scenario(_scenario({"plan": True}, rounds=2, other="always_cooperate")), 1, 0, tmp_path / "run")
    db = sqlite3.connect(tmp_path / "run" / "run.sqlite")
    actions = [r[0] for r in db.execute("SELECT action_name FROM steps WHERE agent = 'alice' ORDER BY step")]
    assert actions == ["D", "D"]  # E[C] = 0.7*3 = 2.1 < E[D] = 0.7*5 + 0.3*1 = 3.8, though the action scores favour C
    record = json.loads(db.execute("SELECT record FROM decisions LIMIT 1").fetchone()[0])
    assert record["expected_payoffs"] == {"C": pytest.approx(2.1), "D": pytest.approx(3.8)} and record["mode"] == "plan"


def test_expected_payoffs_by_hand_in_the_stag_hunt_and_the_commons() -> None:
    hunt = {"kind": "normal_form", "actions": ["Stag", "Hare"],
            "payoffs": {"Stag,Stag": [4, 4], "Stag,Hare": [0, 3], "Hare,Stag": [3, 0], "Hare,Hare": [3, 3]}}
    info = mas.make_env(parse_scenario({**PD, "game": hunt, "agents": RANDOMS})).engine.info
    assert expected_payoffs(info, 0, {}, [0, 1], {1: [0.9, 0.1]}) == pytest.approx([3.6, 3.0])
    assert expected_payoffs(info, 0, {}, [0, 1], {1: [0.5, 0.5]}) == pytest.approx([2.0, 3.0])
    commons = {"kind": "commons", "capacity": 100, "max_harvest": 10, "levels": 3}
    info = mas.make_env(parse_scenario({**PD, "game": commons, "agents": RANDOMS})).engine.info
    # stock 12: asking 10 against a certain 10 is rationed to 6; against 0, 10
    values = expected_payoffs(info, 0, {"stock": 12.0}, [0, 1, 2], {1: [0.5, 0.0, 0.5]})
    assert values == pytest.approx([0.0, 0.5 * 5 + 0.5 * 12 * 5 / 15, 0.5 * 10 + 0.5 * 6])


@pytest.mark.parametrize(("world_model", "game", "message"), [
    ({"predict": ["outcome"], "plan": True}, None, "plan: true needs 'actions' in predict"),
    ({"predict": ["weather"]}, None, "world_model.predict"),
    ({"predict": ["outcome"]}, {"kind": "bargaining"}, "no small set of outcomes to predict"),
    ({"plan": True}, {"kind": "bargaining"}, "world_model.plan: this game's payoffs cannot be computed"),
])
def test_bad_world_model_options_are_one_line_errors(world_model, game, message) -> None:
    data = _scenario(world_model)
    if game is not None:
        data["game"] = game
        data["agents"][1]["policy"] = "fair_bargainer"
    with pytest.raises(ScenarioError) as err:
        parse_scenario(data)
    assert message in str(err.value) and "\n" not in str(err.value).strip()


def test_world_model_true_predicts_the_others_actions_on_the_embedded_model(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    data = _scenario(True, rounds=2)
    data["agents"][0]["policy"].pop("backend")
    run(parse_scenario(data), 1, 0, tmp_path / "run")
    rows = sqlite3.connect(tmp_path / "run" / "run.sqlite").execute(
        "SELECT target, probability, log_loss FROM predictions ORDER BY step").fetchall()
    assert [r[0] for r in rows] == ["bob", "bob"]
    assert all(0 < p < 1 and loss == pytest.approx(-math.log(p)) for _, p, loss in rows)


def test_a_stored_run_is_scored_by_another_model_and_the_live_rows_stay(tmp_path: Path) -> None:
    from mas.agents.llm.config import OpenAIBackendConfig
    from mas.agents.llm.world_model_eval import evaluate_run, summarise

    with installed(_rule):
        run(parse_scenario(_scenario({"predict": ["actions"]})), 1, 0, tmp_path / "run")
    with installed(lambda text, c: {"C": 0.25, "D": 0.75}[c]):  # a second model that expects defection
        config = OpenAIBackendConfig(**{k: v for k, v in FAKE_CONFIG.items() if k != "kind"})
        for _ in range(2):  # rerunning replaces its rows
            records = evaluate_run(tmp_path / "run", config, ["actions"])
    table = summarise(records)
    assert table[["agent", "target", "predictions", "accuracy"]].values.tolist() == [["alice", "bob", 3, 0.0]]
    assert table["log_loss"].iloc[0] == pytest.approx(-math.log(0.25))
    db = sqlite3.connect(tmp_path / "run" / "run.sqlite")
    assert db.execute("SELECT source, COUNT(*) FROM predictions GROUP BY source ORDER BY source").fetchall() == [
        ("eval:rule", 3), ("live", 3)]


@pytest.mark.parametrize(("args", "message"), [
    (["--backend", "{\"kind\": \"nope\"}"], "--backend: not a backend config"),
    (["--predict", "weather"], "--predict: weather is not one of"),
    ([], "no stored LLM action decisions"),
])
def test_worldmodel_cli_errors_are_one_line(tmp_path: Path, args: list, message: str) -> None:
    run(parse_scenario(PD), 1, 0, tmp_path / "run")
    done = subprocess.run([sys.executable, "-m", "mas.cli", "worldmodel", str(tmp_path / "run"), *args],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_plots_draw_prediction_scores_and_the_reward_model_per_agent(tmp_path: Path) -> None:
    from mas.analysis.figures import run_figures
    from mas.analysis.load import load_run

    data = _scenario({"predict": ["actions"]})
    data["reward_model"] = {"prompt": "Fair? {text}", "answer": "Yes", "on": "outcome", "backend": FAKE_CONFIG}
    with installed(lambda text, c: {"C": 0.7, "D": 0.3, "Yes": 0.5}[c]):
        run(parse_scenario(data), 2, 0, tmp_path / "run")
    figures = run_figures({"run": load_run(tmp_path / "run")})
    accuracy = figures["world_model_accuracy"].axes[0]
    assert [line.get_label() for line in accuracy.get_lines()] == ["alice"]
    assert list(accuracy.get_lines()[0].get_ydata()) == [1.0, 1.0, 1.0]  # bob (tit for tat) played C, predicted C
    judged = figures["reward_model"].axes[0]
    assert {line.get_label() for line in judged.get_lines()} == {"alice", "bob"}
    assert list(judged.get_lines()[0].get_ydata()) == pytest.approx([0.5] * 3)


def test_a_version_2_store_is_read_and_migrated_when_scores_are_added(tmp_path: Path) -> None:
    from mas.store import RunStore

    run(parse_scenario(PD), 1, 0, tmp_path / "run")
    db = sqlite3.connect(tmp_path / "run" / "run.sqlite")
    with db:  # the shape schema 2 wrote
        db.execute("DROP TABLE predictions")
        db.execute("ALTER TABLE steps DROP COLUMN reward_model")
        db.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    db.close()
    with RunStore.open(tmp_path / "run") as old:
        assert old.frame("predictions").empty and "reward_model" not in old.frame("steps").columns
    with RunStore.open_for_update(tmp_path / "run") as store:
        assert store.schema_version == 3
        assert store.frame("predictions").empty and store.frame("steps")["reward_model"].isna().all()
