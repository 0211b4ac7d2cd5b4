"""Exact baselines (mas solve) as reference lines on return figures and as a report table."""

from __future__ import annotations

from pathlib import Path

import pytest

import mas
from mas.analysis import figures as figs
from mas.analysis.baselines import scenario_baselines
from mas.analysis.load import load_result, load_run
from mas.analysis.report import build_report
from mas.runner import run
from tests.test_cli import mas as mas_cli


def reference_lines(fig, vertical: bool = False) -> dict[str, float]:
    """The figure's reference lines: legend label -> the level they mark."""
    out = {}
    for line in fig.axes[0].lines:
        data = line.get_xdata() if vertical else line.get_ydata()
        if len(data) == 2 and data[0] == data[1] and not line.get_label().startswith("_"):
            out[line.get_label()] = float(data[0])
    return out


@pytest.fixture(scope="module")
def pd_tft_training(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("train") / "pd"
    result = mas_cli("train", "pd_iql_vs_tft", "--steps", "800", "--seed", "0", "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


def test_training_return_has_the_best_response_and_social_optimum_lines(pd_tft_training: Path) -> None:
    figures = figs.figures_for([load_result(pd_tft_training)])
    lines = reference_lines(figures["training_return"])
    # 20 rounds against tit-for-tat: cooperate 19 rounds, defect in the last: 3 * 19 + 5
    assert lines == {"best response of learner to tft (tit_for_tat): 62": 62.0,
                     "social optimum, equal share per agent: 60": 60.0}
    assert "best response of learner to tft (tit_for_tat): 62" in figures["training_return"].axes[0].get_legend_handles_labels()[1]
    # the evaluation episodes' per-agent returns get them too, as vertical lines
    assert reference_lines(figures["returns"], vertical=True) == lines


def test_report_lists_the_baselines(pd_tft_training: Path) -> None:
    html = build_report(load_run(pd_tft_training))
    table = html[html.index("<h3>Exact baselines</h3>"):]
    table = table[: table.index("</table>")]
    assert "<td>best response of learner to tft (tit_for_tat)</td><td>62</td><td>3.1</td>" in table
    assert "<td>social optimum, equal share per agent</td><td>60</td><td>3</td>" in table
    assert "plan C x19, D x1" in table


def test_a_run_against_a_random_player_gets_both_best_responses(tmp_path: Path) -> None:
    scenario = mas.load_scenario("prisoners_dilemma")  # 10 rounds, tit-for-tat against random (p 0.5)
    run(scenario, episodes=2, seed=1, out_dir=tmp_path / "run")
    lines = reference_lines(figs.run_figures({"pd": load_run(tmp_path / "run")})["returns"], vertical=True)
    assert lines == {
        "best response of bob to alice (tit_for_tat): 32": 32.0,  # 3 * 9 + 5
        "best response of alice to bob (random): 30": 30.0,  # always defect: 10 * (5 + 1) / 2
        "social optimum, equal share per agent: 30": 30.0,
    }


def test_no_baselines_no_lines_and_no_table(commons_run: Path) -> None:
    run_ = load_run(commons_run)
    assert scenario_baselines(run_.meta["scenario"]) == []
    assert reference_lines(figs.run_figures({"c": run_})["returns"], vertical=True) == {}
    assert "Exact baselines" not in build_report(run_)


def test_maze_baseline_is_the_shortest_path_return() -> None:
    data = mas.load_scenario("grid_maze").model_dump(mode="json")
    (maze,) = scenario_baselines(data)
    # 10 steps at -0.01 each, the last one also reaches the goal (+1)
    assert maze.label == "shortest path to the goal" and maze.value == pytest.approx(0.9)


def test_a_stored_scenario_that_does_not_load_gives_no_baselines() -> None:
    assert scenario_baselines({"name": "x", "game": {"kind": "no_such_game"}, "agents": []}) == []
    assert scenario_baselines({}) == []
