"""MAPPO and its IPPO ablation learn the signalling game; seeds fix the whole curve."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

import mas  # noqa: E402
from mas.store import RunStore  # noqa: E402
from mas.training.run import train  # noqa: E402


def curve(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return [{k: v for k, v in row.items() if k != "wall_s"} for row in csv.DictReader(f)]


def test_mappo_solves_the_signalling_game_on_a_cpu_budget(tmp_path):
    # 3 targets, 6 words, speaker + listener; 8 of 8 seeds reached success 1.0 by 26k steps
    scenario = mas.load_scenario("signalling_mappo")
    result = train(scenario, "mappo", 30_000, 0, tmp_path / "run", device="cpu", eval_episodes=64, final_episodes=4)
    assert result.final_eval["eval_success"] >= 0.95
    # the runner plays the checkpoints; the transcript shows the emergent code as words
    with RunStore.open(result.eval_run) as store:
        steps, states = store.frame("steps"), store.frame("states")
    picks = steps[steps.action_name.str.startswith("pick ")]
    assert len(picks) == 4 * 5 and picks.reward.mean() >= 0.95
    said = [json.loads(s) for s in states.summary if json.loads(s)["phase"] == "pick"]  # after each "say" step
    code = {(s["target"], s["signal"]) for s in said}
    targets = {t for t, _ in code}
    assert len(targets) == 3 and len(code) == 3  # one word per target: a code, not a pooling
    assert len({w for _, w in code}) == 3 and all(w in ["blip", "blop", "blup", "blep", "blap", "glip"] for _, w in code)


def test_ippo_with_separate_actors_also_solves_it(tmp_path):
    scenario = mas.load_scenario("signalling_mappo")
    result = train(scenario, "ippo", 30_000, 1, tmp_path / "run", device="cpu", eval_episodes=64, final_episodes=0,
                   overrides={"shared_actor": False}, tensorboard=False)
    assert result.final_eval["eval_success"] >= 0.95
    from mas.training.checkpoint import build_learner, load_checkpoint

    learner = build_learner(load_checkpoint(result.checkpoint), __import__("torch").device("cpu"))
    assert learner.config.centralised_critic is False and learner.actor.heads == 2


def test_same_seed_gives_the_same_curve_and_another_seed_another(tmp_path):
    scenario = mas.load_scenario("signalling_mappo")
    runs = [train(scenario, "mappo", 3_000, seed, tmp_path / f"run{i}", device="cpu", eval_every=1_000, final_episodes=0, tensorboard=False)
            for i, seed in enumerate([4, 4, 5])]
    first, again, other = (curve(r.curves) for r in runs)
    assert len(first) >= 4 and first == again
    assert first != other
