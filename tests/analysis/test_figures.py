"""Every figure function draws a non-empty image with the expected labels from stored runs."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mas.analysis import communication as comm
from mas.analysis import figures as figs
from mas.analysis import game_metrics as gm
from mas.analysis import metrics as m
from mas.analysis import plots
from mas.analysis.load import load_result, load_run


def _pixels(fig) -> np.ndarray:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=60)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("L"), dtype=float)


def _check(fig, xlabel: str, ylabel: str) -> None:
    ax = fig.axes[0] if len(fig.axes) == 1 or ylabel != "vocabulary (distinct words)" else fig.axes[1]
    assert xlabel in ax.get_xlabel() and ylabel in ax.get_ylabel()
    pixels = _pixels(fig)
    assert pixels.size > 10_000 and pixels.std() > 5  # drawn, not a blank canvas


def test_cooperation_and_returns(pd_talk_run: Path) -> None:
    run = load_run(pd_talk_run)
    _check(plots.plot_cooperation_over_rounds({"pd": m.cooperation_by_round(run.steps)}), "round", "cooperation rate (fraction)")
    returns = figs._returns_table(run)
    fig = plots.plot_agent_returns({"pd": returns})
    _check(fig, "return per episode", "agent")
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["alice", "bob"]


def test_stock_figure_marks_the_sustainable_level(commons_run: Path) -> None:
    run = load_run(commons_run)
    fig = plots.plot_stock({"commons": gm.stock_trajectories(run.states, 100.0)}, 100.0, 5.0)
    _check(fig, "rounds played", "resource stock (units)")
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert "max. sustainable yield level (K/2)" in labels and "collapse threshold" in labels


def test_communication_figures(pd_talk_run: Path) -> None:
    run = load_run(pd_talk_run)
    talk = comm.talk_matrix(run.messages, ["alice", "bob"])
    fig = plots.plot_talk_graph(talk)
    assert "messages delivered" in fig.axes[0].get_title() and _pixels(fig).std() > 5
    # one arrow per direction, the wider one for more messages
    fig = plots.plot_messages_over_time({"pd": comm.vocabulary_over_time(run.messages)})
    _check(fig, "round", "vocabulary (distinct words)")
    assert fig.axes[0].get_ylabel() == "message length (words)"


def test_heatmap_ranking_and_population(tournament_dir: Path) -> None:
    from mas.analysis import tournaments as tn

    t = load_result(tournament_dir)
    fig = plots.plot_heatmap(t.payoff, "mean score per match", "Payoff", "opponent", "entrant")
    _check(fig, "opponent", "entrant")
    assert fig.axes[1].get_ylabel() == "mean score per match"  # the colour bar is labelled
    _check(plots.plot_ranking(tn.ranking_table(t)), "score per match", "player")
    _check(plots.plot_population_shares(t.ecology), "generation", "population share (fraction)")


def test_training_curve_figure_with_band() -> None:
    import pandas as pd

    band = pd.DataFrame({"step": [0, 10, 20], "mean": [1.0, 2.0, 3.0], "low": [0.5, 1.5, 2.5], "high": [1.5, 2.5, 3.5], "n": 3})
    fig = plots.plot_training_curves({"a": band, "b": band.assign(mean=band["mean"] + 1)}, "episode return", "Return")
    _check(fig, "environment steps", "episode return")
    assert "3 seeds, 95% band" in fig.axes[0].get_title()
    assert len(fig.axes[0].collections) == 2  # one shaded band per curve


def test_a_rate_band_stays_inside_its_range() -> None:
    import pandas as pd

    # two seeds: the Student-t band of a cooperation rate reaches far outside [0, 1]
    wide = pd.DataFrame({"step": [10, 20], "mean": [0.8, 0.35], "low": [0.16, -2.2], "high": [1.4, 2.9], "n": 2})
    fig = plots.plot_training_curves({"a": wide}, "cooperation rate", "Cooperation", bounds=(0.0, 1.0))
    (band,) = fig.axes[0].collections
    ys = np.concatenate([path.vertices[:, 1] for path in band.get_paths()])
    assert ys.min() >= 0.0 and ys.max() <= 1.0
    low, high = fig.axes[0].get_ylim()
    assert -0.05 < low < 0.0 and 1.0 < high < 1.05


def test_standard_figures_of_each_kind_of_result(pd_talk_run: Path, commons_run: Path, tournament_dir: Path) -> None:
    assert set(figs.figures_for([load_run(pd_talk_run)])) == {
        "returns", "cooperation_over_rounds", "cooperation_by_pair", "communication_graph", "messages_over_time"}
    assert {"resource_stock", "returns"} <= set(figs.figures_for([load_run(commons_run)]))
    assert set(figs.figures_for([load_result(tournament_dir)])) == {"ranking", "payoff_matrix", "cooperation_matrix", "population_shares"}


def test_several_runs_overlay_in_one_figure(pd_talk_run: Path, commons_run: Path, tmp_path: Path) -> None:
    runs = [load_run(pd_talk_run), load_run(commons_run)]
    figures = figs.figures_for(runs, ["talk", "commons"])
    labels = figures["cooperation_over_rounds"].axes[0].get_legend_handles_labels()[1]
    assert labels == ["talk", "commons"]
    paths = figs.write_figures(runs, tmp_path / "out", ("png", "svg"), ["talk", "commons"])
    assert {p.suffix for p in paths} == {".png", ".svg"} and all(p.stat().st_size > 1000 for p in paths)
    assert (tmp_path / "out" / "returns.svg").read_text().lstrip().startswith("<?xml")


def test_figure_files_are_identical_for_the_same_run(pd_talk_run: Path, tmp_path: Path) -> None:
    run = load_run(pd_talk_run)
    first = figs.write_figures([run], tmp_path / "a", ("svg",))
    second = figs.write_figures([run], tmp_path / "b", ("svg",))
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


@pytest.mark.parametrize("stem", ["ranking", "communication_graph_x", "x_payoff_matrix"])
def test_captions_cover_prefixed_names(stem: str) -> None:
    assert figs.caption(stem)
