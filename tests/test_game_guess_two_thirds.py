"""Guess two-thirds of the average: the closest to 2/3 of the mean shares the prize; the
grid and bounds are checked; a scenario runs through the engine and stores the rounds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mas import registry
from mas.analysis.load import load_run
from mas.errors import MasError
from mas.runner import run
from mas.scenario import parse_scenario


def game(n: int = 3, **fields):
    config = registry.game_config_model("guess_two_thirds").model_validate({"kind": "guess_two_thirds", **fields})
    return registry.make_game(config, n)


def test_the_closest_to_two_thirds_of_the_mean_wins_and_ties_share() -> None:
    g = game(3)
    state = g.reset(2, np.random.default_rng(0))
    # copy 0: 0, 30, 60 -> mean 30, target 20: 30 is 10 away, 0 is 20 away -> seat 1 wins alone
    # copy 1: 10, 10, 70 -> mean 30, target 20: seats 0 and 1 tie at 10 away -> 0.5 each
    result = g.step(state, np.array([[0, 30, 60], [10, 10, 70]]), np.random.default_rng(0))
    assert result.rewards.tolist() == [[0.0, 1.0, 0.0], [0.5, 0.5, 0.0]]
    assert g.summary(result.state, 0) == {"mean": 30.0, "target": 20.0}
    obs = g.observe(result.state)
    assert obs.shape == (2, 3, 5) and obs[0, 1].tolist() == pytest.approx([0.3, 0.3, 0.2, 1.0, 0.0])


def test_the_grid_sets_the_numbers_and_bad_grids_are_named() -> None:
    g = game(2, grid=5)
    assert g.num_actions == 21 and g.action_names(0)[:3] == ["0", "5", "10"]
    result = g.step(g.reset(1, np.random.default_rng(0)), np.array([[20, 2]]), np.random.default_rng(0))  # 100 and 10
    assert result.rewards.tolist() == [[0.0, 1.0]]  # target 36.7: 10 is closer than 100
    with pytest.raises(ValueError, match="grid: 7 must divide maximum=100"):
        game(2, grid=7)
    with pytest.raises(ValueError, match="fraction"):
        game(2, fraction=1.5)


def test_a_scenario_runs_and_stores_the_round_means(tmp_path: Path) -> None:
    scenario = parse_scenario({"name": "g23", "game": {"kind": "guess_two_thirds", "grid": 10}, "rounds": 3,
                               "agents": [{"id": "p", "count": 4, "policy": "random"}], "episodes": 1})
    run(scenario, 1, 0, out_dir=tmp_path / "r")
    loaded = load_run(tmp_path / "r")
    assert set(loaded.steps["action_name"].astype(float)) <= set(range(0, 101, 10))
    assert len(loaded.steps) == 12
    with pytest.raises(MasError, match="grid"):
        parse_scenario({"name": "bad", "game": {"kind": "guess_two_thirds", "grid": 3}, "agents": [{"id": "p", "count": 2, "policy": "random"}]})
