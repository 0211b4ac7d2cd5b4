"""Tabular Monte Carlo control (`update: monte_carlo`): returns by hand, and what it learns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from mas.agents.rl.monte_carlo import EpisodeTraces  # noqa: E402
from mas.scenario import load_scenario, parse_scenario  # noqa: E402
from mas.training.run import train  # noqa: E402
from tests.conftest import PD  # noqa: E402


def test_returns_by_hand_with_first_and_every_visits_and_a_bootstrapped_cut():
    # two copies, one learner, gamma 0.5. Copy 0: keys 7, 7, 9, rewards 1, 2, 4, terminated
    # (tail 0). Copy 1 ends a step earlier, cut by a limit, worth 8 after its last step.
    for first in (False, True):
        traces = EpisodeTraces(0.5, first_visit=first)
        col = lambda a, b: np.array([[a], [b]])  # noqa: E731  [B=2, L=1]
        no = np.array([False, False])
        assert len(traces.record(col(7, 3), col(1.0, 1.0), no, col(0.0, 0.0))[0]) == 0
        learners, keys, returns = traces.record(col(7, 3), col(2.0, 1.0), np.array([False, True]), col(0.0, 8.0))
        # copy 1: G1 = 1 + 0.5 * 8 = 5, G0 = 1 + 0.5 * 5 = 3.5 (key 3 twice: first visit keeps G0)
        expected = [(3, 3.5)] if first else [(3, 3.5), (3, 5.0)]
        assert list(zip(keys.tolist(), returns.tolist())) == expected and learners.tolist() == [0] * len(expected)
        learners, keys, returns = traces.record(col(9, 5), col(4.0, 0.0), np.array([True, False]), col(0.0, 0.0))
        # copy 0: G2 = 4, G1 = 2 + 2 = 4, G0 = 1 + 2 = 3
        expected = [(7, 3.0), (9, 4.0)] if first else [(7, 3.0), (7, 4.0), (9, 4.0)]
        assert list(zip(keys.tolist(), returns.tolist())) == expected
        assert traces.base == 2 and len(traces.keys) == 1  # copy 0's steps are gone, copy 1's new episode kept


def maze(visits: str):
    scenario = load_scenario("grid_maze")
    agents = [a.model_copy(update={"policy": a.policy.model_copy(update={"update": "monte_carlo", "visits": visits, "alpha": 0.1})})
              for a in scenario.agents]
    return scenario.model_copy(update={"agents": agents})


@pytest.mark.parametrize("visits", ["every", "first"])
def test_monte_carlo_control_finds_the_shortest_path_of_the_maze(tmp_path: Path, visits: str):
    """Budget: 30,000 environment steps (16 copies), alpha 0.1 (8 of 8 seeds found the
    10-step path; with alpha 0.5 or 20,000 steps some seeds keep a greedy loop)."""
    result = train(maze(visits), "iql", 30_000, 0, tmp_path / "run", device="cpu", final_episodes=0, tensorboard=False)
    assert result.final_eval["eval_return/walker"] == pytest.approx(1.0 - 0.01 * 10)  # 10 steps, the last one at the goal


@pytest.mark.parametrize(("gamma", "cooperation", "ret"), [(0.95, 1.0, 30.0), (0.1, 0.0, 5.0 + 9.0)])
def test_monte_carlo_control_cooperates_with_tit_for_tat_only_when_far_sighted(tmp_path: Path, gamma, cooperation, ret):
    # every-visit returns; with gamma 0.1 always defecting is optimal (see test_rl_iql)
    agents = [{"id": "me", "policy": {"type": "iql", "update": "monte_carlo", "gamma": gamma}}, {"id": "them", "policy": "tit_for_tat"}]
    result = train(parse_scenario({**PD, "rounds": 10, "agents": agents}), "iql", 20_000, 0, tmp_path / "run",
                   device="cpu", final_episodes=0, tensorboard=False)
    assert result.final_eval["eval_cooperation/me"] == cooperation and result.final_eval["eval_return/me"] == ret


def test_monte_carlo_is_tabular_only():
    from mas.errors import MasError

    with pytest.raises((MasError, ValueError), match="monte_carlo is implemented for the tabular variant only"):
        parse_scenario({**PD, "agents": [{"id": "a", "policy": {"type": "iql", "variant": "dqn", "update": "monte_carlo"}},
                                         {"id": "b", "policy": "tit_for_tat"}]})
