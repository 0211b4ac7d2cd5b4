"""Social optimum, commons sustainability, bargaining and signalling against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mas.analysis import game_metrics as gm
from mas.analysis.load import load_run
from mas.analysis.summary import summarize


def test_commons_optimum_by_hand() -> None:
    """K=100, r=1, one fisher taking 0, 25 or 50, start full.

    Horizon 2: take 50 (50 left regrows to 75), then 50: total 100. Horizon 3: 50, 50
    (25 left regrows to 25 + 25 * 0.75 = 43.75), then all 43.75: total 143.75.
    """
    amounts = np.array([0.0, 25.0, 50.0])
    common = dict(start_stock=100.0, capacity=100.0, growth_rate=1.0, amounts=amounts, n_agents=1, collapse_threshold=5.0)
    assert gm.commons_optimum(horizon=1, **common) == pytest.approx(50.0)
    assert gm.commons_optimum(horizon=2, **common) == pytest.approx(100.0)
    assert gm.commons_optimum(horizon=3, **common) == pytest.approx(143.75)


def test_commons_optimum_counts_the_collapse_round_and_then_stops() -> None:
    """Two fishers of up to 60 each from 100: taking all 100 collapses the stock (the
    round's catch counts, nothing after); over two rounds 50 + 75 = 125 beats it."""
    common = dict(start_stock=100.0, capacity=100.0, growth_rate=1.0, amounts=np.array([0.0, 25.0, 50.0]), n_agents=2,
                  collapse_threshold=5.0)
    assert gm.commons_optimum(horizon=1, **common) == pytest.approx(100.0)
    assert gm.commons_optimum(horizon=2, **common) == pytest.approx(125.0)


def test_matrix_and_public_goods_optima() -> None:
    pd_table = np.array([[[3, 3], [0, 5]], [[5, 0], [1, 1]]], dtype=float)
    assert gm.matrix_optimum_per_round(pd_table) == 6.0
    assert gm.public_goods_optimum_per_round(4, 20.0, 1.6) == 128.0  # everyone contributes: 4 * 20 * 1.6
    assert gm.public_goods_optimum_per_round(4, 20.0, 0.8) == 80.0  # m < 1: keeping is best
    assert gm.round_limit({"continuation": 0.9, "max": 50}) == 50 and gm.round_limit(10) == 10


def _commons_states() -> pd.DataFrame:
    rows = [
        # episode 0: from 100, the fishers take 20 + 20 (surplus above K/2 is 50: fine) -> 90 after regrowth
        (0, 0, 0, 90.0, False, [20.0, 20.0]),
        # from 90 they take 30 + 15 = 45 > surplus 40: over-harvest; the stock then collapses
        (0, 1, 1, 60.0, False, [30.0, 15.0]),
        (0, 2, 2, 3.0, True, [40.0, 17.0]),
        # episode 1: 60 from 100 is over the surplus of 50
        (1, 0, 0, 64.0, False, [30.0, 30.0]),
    ]
    return pd.DataFrame(rows, columns=["episode", "step", "round", "stock", "collapsed", "last_harvests"])


def test_stock_collapse_and_over_harvest() -> None:
    states = _commons_states()
    trajectories = gm.stock_trajectories(states, 100.0)
    assert list(trajectories[trajectories.episode == 0]["stock"]) == [100.0, 90.0, 60.0, 3.0]
    assert list(trajectories[trajectories.episode == 0]["rounds_played"]) == [0, 1, 2, 3]
    collapse = gm.time_to_collapse(states)
    assert collapse[0] == 3.0 and math.isnan(collapse[1])
    over = gm.over_harvest(states, start_stock=100.0, capacity=100.0)
    assert list(over["stock_before"]) == [100.0, 90.0, 60.0, 100.0]
    assert list(over["over_harvest"]) == [False, True, True, True]


def test_bargaining_outcomes() -> None:
    states = pd.DataFrame({
        "episode": [0, 0, 1, 2], "step": [0, 1, 0, 0], "round": [0, 1, 0, 0],
        "offers_made": [1, 1, 2, 1], "agreed": [False, True, True, False],
        "shares": [None, [6.0, 4.0], [4.5, 4.5], None],
    })
    out = gm.bargaining_outcomes(states, pie=10.0).set_index("episode")
    assert out.loc[0, "efficiency"] == 1.0 and out.loc[0, "fairness"] == pytest.approx(0.8)  # 1 - |6 - 4| / 10
    assert out.loc[1, "efficiency"] == pytest.approx(0.9) and out.loc[1, "fairness"] == 1.0
    assert not out.loc[2, "agreed"] and out.loc[2, "efficiency"] == 0.0 and math.isnan(out.loc[2, "fairness"])


def test_signalling_rounds_pair_the_word_with_its_target_and_success() -> None:
    states = pd.DataFrame({
        "episode": [0, 0, 0, 0], "step": [0, 1, 2, 3], "round": [0, 1, 2, 3],
        # after a signal step: the target shown and the word said; after a pick step: the next target
        "phase": ["pick", "signal", "pick", "signal"], "target": ["red", "blue", "blue", "red"],
        "signal": ["blip", None, "blop", None], "last_success": [math.nan, 1.0, 1.0, 0.5],
    })
    rounds = gm.signalling_rounds(states)
    assert list(rounds["target"]) == ["red", "blue"] and list(rounds["signal"]) == ["blip", "blop"]
    assert list(rounds["success"]) == [1.0, 0.5]


def test_summary_of_a_commons_run_is_consistent_with_its_store(commons_run) -> None:
    run = load_run(commons_run)
    summary = summarize(run)
    overview = summary.overview
    # welfare is the sum of returns; the optimum is at least what was caught
    assert overview["social welfare"].mean == pytest.approx(run.episodes.groupby("episode")["return"].sum().mean())
    assert 0 < overview["welfare / optimum"].mean <= 1.0
    survived = ~run.states.groupby("episode")["collapsed"].any()
    assert overview["survival rate"] == pytest.approx(survived.mean())
    # cooperation in the commons means asking for at most the sustainable share
    assert overview["cooperation rate"].mean == pytest.approx(
        run.steps.groupby("episode")["cooperation"].mean().mean())
    assert summary.agents.loc["steward_0", "cooperation"] == 1.0  # sustainable harvesters always are


def test_summary_of_signalling_and_bargaining_runs(signalling_run, bargaining_run) -> None:
    signalling = summarize(load_run(signalling_run)).overview
    # the honest speaker names every target with its own word: the signal carries all of H(target)
    assert signalling["I(target; signal) bits"] == pytest.approx(signalling["H(target) bits"])
    assert signalling["I(target; message) bits"] == 0.0  # its text message never changes
    bargaining = summarize(load_run(bargaining_run))
    outcomes = bargaining.tables["bargaining outcomes"]
    assert bargaining.overview["agreement rate"] == outcomes["agreed"].mean()
    assert bargaining.overview["bargaining efficiency"].mean == pytest.approx(outcomes["efficiency"].mean())
