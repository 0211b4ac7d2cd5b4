"""The summary `mas run` prints, computed from the runner's results (mas.analysis.run_summary)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from mas.analysis.run_summary import summarise_run, usage_totals
from mas.runner import run
from mas.scenario import parse_scenario
from mas.store import EpisodeRecord
from tests.conftest import PD


def test_per_agent_returns_and_cooperation_of_a_real_run() -> None:
    data = copy.deepcopy(PD)
    data["agents"] = [{"id": "a", "policy": "tit_for_tat"}, {"id": "b", "policy": "always_defect"}]
    scenario = parse_scenario(data)
    results = run(scenario, 3, seed=4)
    summary = summarise_run(scenario, results)
    assert summary.episodes == 3 and summary.rounds.mean == 6 and summary.terminated == 0
    assert summary.has_cooperation and not summary.has_usage
    a, b = summary.agents
    assert (a.agent, a.policy, b.policy) == ("a", "tit_for_tat", "always_defect")
    # tit for tat cooperates once, then defects; always_defect never cooperates
    assert a.returns.mean == pytest.approx(np.mean([r.returns["a"] for r in results])) == 5.0
    assert b.cooperation.mean == 0.0 and a.cooperation.mean == pytest.approx(1 / 6)
    assert a.returns.n == 3 and a.usage is None


def test_usage_is_summed_over_episodes_per_agent() -> None:
    counts = {"tokens": 10, "decisions": 2, "outputs": 2, "invalid": 1, "fallbacks": 0}
    results = [EpisodeRecord(episode=e, seed=0, usage={"llm": dict(counts)}) for e in range(3)]
    assert usage_totals(results) == {"llm": {"tokens": 30, "decisions": 6, "outputs": 6, "invalid": 3, "fallbacks": 0}}
    assert usage_totals([EpisodeRecord(episode=0, seed=0)]) == {}
