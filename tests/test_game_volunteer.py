"""The volunteer's dilemma, added as one module plus one registry line: its rules, and that
tit-for-tat, LLM agents, IQL, MAPPO, the metrics and the report play or read it with no
other edit (everything below reaches the game only through the registry)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import mas
from mas import registry
from mas.env import MasParallelEnv
from mas.errors import ScenarioError
from mas.episode import EpisodeEngine
from mas.scenario import parse_scenario

GAME = {"kind": "volunteers_dilemma", "benefit": 3, "cost": 1}


def scenario(agents: list, rounds: int = 6, **game) -> dict:
    return {"name": "vd", "game": {**GAME, **game}, "rounds": rounds, "comms": {"mode": "off"},
            "agents": [{"id": f"p{i}", "policy": p} if not isinstance(p, dict) or "id" not in p else p for i, p in enumerate(agents)]}


def test_rewards_one_volunteer_is_enough_and_nobody_gets_nothing() -> None:
    game = registry.make_game(registry.game_config_model("volunteers_dilemma").model_validate(GAME), 3)
    state = game.reset(3, np.random.default_rng(0))
    actions = np.array([[0, 1, 1], [0, 0, 0], [1, 1, 1]])  # one volunteer, all, nobody
    result = game.step(state, actions, np.random.default_rng(0))
    assert result.rewards.tolist() == [[2, 3, 3], [2, 2, 2], [0, 0, 0]]
    assert game.cooperation(state, actions).tolist() == [[1, 0, 0], [1, 1, 1], [0, 0, 0]]
    assert game.social_optimum() == 3 * 3 - 1
    assert game.observe(result.state)[0, 1].tolist() == [0.0, 0.5, 1.0, 0.0]  # abstained; 1 of 2 others volunteered
    assert game.summary(result.state, 0) == {"volunteers": 1}


def test_bad_parameters_are_one_line_errors(write_scenario) -> None:
    with pytest.raises(ScenarioError, match="cost must be below benefit=3"):
        mas.load_scenario(write_scenario(scenario(["tit_for_tat", "tit_for_tat"], cost=3)))


def _actions(tmp_path: Path, agents: list, rounds: int = 5, seed: int = 0) -> list[list[int]]:
    """Each round's joint action (seat order) of one episode played by `mas run`'s runner."""
    from mas.analysis.load import load_run
    from mas.runner import run

    out = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
    run(parse_scenario(scenario(agents, rounds)), 1, seed, out)
    steps = load_run(out).steps
    order = {f"p{i}": i for i in range(len(agents))}
    steps = steps.assign(seat=steps["agent"].map(order)).sort_values(["step", "seat"])
    return [group["action"].astype(int).tolist() for _, group in steps.groupby("step")]


def test_tit_for_tat_plays_it_and_answers_the_group(tmp_path: Path) -> None:
    # among volunteers it keeps volunteering; once somebody abstains it abstains the next round
    assert _actions(tmp_path, ["tit_for_tat", "always_cooperate", "always_cooperate"]) == [[0, 0, 0]] * 5
    played = _actions(tmp_path, ["tit_for_tat", "always_cooperate", "always_defect"])
    assert [row[0] for row in played] == [0, 1, 1, 1, 1]
    # tolerating half of the others abstaining, it keeps volunteering
    tolerant = {"type": "tit_for_tat", "tolerance": 0.5}
    assert [row[0] for row in _actions(tmp_path, [tolerant, "always_cooperate", "always_defect"])] == [0] * 5
    # grim trigger never volunteers again once someone abstained
    played = _actions(tmp_path, ["grim_trigger", "always_defect"], rounds=4)
    assert [row[0] for row in played] == [0, 1, 1, 1]


def test_the_built_in_scenario_runs_and_its_metrics_and_report_build(tmp_path: Path) -> None:
    from mas.analysis.load import load_run
    from mas.analysis.report import build_report
    from mas.analysis.summary import summarize
    from mas.runner import run

    run(mas.load_scenario("volunteers_dilemma"), 2, 1, tmp_path / "run")
    stored = load_run(tmp_path / "run")
    summary = summarize(stored)
    coop = stored.steps.groupby("episode")["cooperation"].mean()
    assert summary.overview["cooperation rate"].mean == pytest.approx(float(coop.mean()))
    assert 0 < summary.overview["cooperation rate"].mean < 1
    ratio = summary.overview["welfare / optimum"].mean
    assert 0 < ratio <= 1  # the optimum is the game's own: one volunteer each round
    page = build_report(stored)
    assert "cooperation rate" in page and "volunteers_dilemma" in page


def test_an_llm_agent_validates_and_its_prompt_renders_without_a_model() -> None:
    sc = parse_scenario(scenario([{"type": "llm", "mode": "generate", "fallback_action": "abstain"}, "tit_for_tat"]))
    env = MasParallelEnv(sc)
    (policy,) = [g.policy for g in EpisodeEngine(sc).groups[0] if g.policy.needs_text]
    env.reset(seed=0)
    view = env.views(text=True)["p0"]
    turn = policy._start(view)
    system, user = policy.prompts.render(policy._context(turn, talking=False))
    assert "volunteer's dilemma" in system["content"]
    assert user["content"].endswith("Choose whether to volunteer this round. Reply with exactly one of: volunteer, abstain.")
    with pytest.raises(Exception, match="fallback_action 'nobody' is not an action"):
        parse_scenario(scenario([{"type": "llm", "fallback_action": "nobody"}, "tit_for_tat"]))


@pytest.mark.parametrize("algo, policy, steps", [("iql", {"type": "iql", "gamma": 0.5}, 2_000), ("mappo", {"type": "mappo"}, 4_000)])
def test_learners_train_on_it(tmp_path: Path, algo: str, policy: dict, steps: int) -> None:
    pytest.importorskip("torch")
    from mas.training.run import train

    # against a player who never volunteers, volunteering (3 - 1) beats nobody doing it (0)
    data = scenario([{"id": "me", "policy": policy}, {"id": "them", "policy": "always_defect"}], rounds=10)
    result = train(parse_scenario(data), algo, steps, 0, tmp_path / "run", device="cpu", final_episodes=0, tensorboard=False)
    assert result.final_eval["eval_cooperation/me"] == 1.0
    assert result.final_eval["eval_return/me"] == 2.0 * 10
