"""A seed sweep plays every seed as one copy of one engine batch, and each seed's totals
equal the one-seed run's (`mas.runner.play_episode`, what `mas run --seed S` plays)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mas.episode import EpisodeEngine
from mas.errors import MasError
from mas.runner import play_episode
from mas.scenario import load_scenario, parse_scenario
from mas.sweep import sweep


def one_by_one(scenario, seed: int):
    return play_episode(EpisodeEngine(scenario, seed=seed), 0, seed)


@pytest.mark.parametrize("name, changes", [
    ("prisoners_dilemma", {}),  # a random policy: every seed draws differently
    # continuation rounds: copies end at different rounds and are masked out while others play
    ("prisoners_dilemma", {"rounds": {"continuation": 0.8, "max": 40}}),
    # four players, a contribute and a punish step per round, a random contributor
    ("public_goods", {"rounds": 6, "agents": [{"id": "p", "count": 3, "policy": "conditional_cooperator"},
                                              {"id": "r", "policy": "random"}]}),
])
def test_every_sampled_seed_equals_its_one_seed_run(name: str, changes: dict) -> None:
    scenario = load_scenario(name)
    if changes:
        scenario = parse_scenario({**scenario.to_dict(), **changes})
    seeds = list(range(1000, 1400))
    result = sweep(scenario, seeds)
    assert result.returns.shape == (400, len(scenario.agents))
    for i in (0, 7, 133, 399):
        alone = one_by_one(scenario, seeds[i])
        assert result.returns[i].tolist() == [alone.returns[a] for a in scenario.agent_ids]
        assert result.totals.rounds[i] == alone.rounds
        assert [None if np.isnan(c) else c for c in result.totals.cooperation[i].tolist()] == \
            [alone.cooperation[a] for a in scenario.agent_ids]
    # the seeds matter: a sweep that gave every copy the same episode shows no spread
    assert len({tuple(r) for r in result.returns.tolist()}) > 10
    if "continuation" in str(changes):
        assert len(set(result.totals.rounds.tolist())) > 10


def test_a_sweep_needs_seeds() -> None:
    with pytest.raises(MasError, match="no seeds"):
        sweep(load_scenario("prisoners_dilemma"), [])


def test_cli_sweep_writes_a_row_per_seed_equal_to_its_run(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "mas.cli", "run", "prisoners_dilemma", "--sweep", "5-9,20", "--out", str(tmp_path), "--json"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["seeds"] == 6
    rows = list(csv.DictReader((tmp_path / "sweep.csv").open()))
    assert [int(r["seed"]) for r in rows] == [5, 6, 7, 8, 9, 20]
    alone = one_by_one(load_scenario("prisoners_dilemma"), 20)
    assert float(rows[-1]["return_bob"]) == alone.returns["bob"]
    assert float(rows[-1]["cooperation_alice"]) == alone.cooperation["alice"]


def test_cli_sweep_refuses_seed_and_too_many_seeds() -> None:
    for extra, message in ((["--sweep", "0-3", "--seed", "1"], "--sweep excludes --seeds, --seed"),
                           (["--sweep", "0-2000000"], "--sweep: at most 1000000 seeds")):
        run = subprocess.run([sys.executable, "-m", "mas.cli", "run", "prisoners_dilemma", *extra], capture_output=True, text=True, timeout=120)
        assert run.returncode != 0 and message in run.stderr and "Traceback" not in run.stderr
