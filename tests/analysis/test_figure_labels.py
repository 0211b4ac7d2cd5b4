"""What figures say: cell numbers in plain notation, titles naming the scenario and the
policies, llm-ppo's KL and entropy curves, and captions naming each ecology model."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mas.analysis import figures as figs
from mas.analysis import plots
from mas.analysis.load import load_result, load_run
from mas.analysis.report import build_report


@pytest.mark.parametrize(("value", "text"), [(297.4, "297"), (1264.0, "1264"), (29.74, "29.7"), (2.974, "2.97"),
                                             (0.3, "0.30"), (-1.5, "-1.50"), (0.0, "0.00")])
def test_cell_numbers_are_plain(value: float, text: str) -> None:
    assert plots.cell_label(value) == text


def test_heatmap_cells_never_use_exponents() -> None:
    matrix = pd.DataFrame([[297.4, 0.3], [12.34, -1.5]], index=["a", "b"], columns=["a", "b"])
    fig = plots.plot_heatmap(matrix, "score", "Payoff", "opponent", "entrant")
    assert sorted(t.get_text() for t in fig.axes[0].texts) == sorted(["297", "0.30", "12.3", "-1.50"])
    assert fig.get_figwidth() >= 7 and fig.get_figheight() >= 6  # readable when shown full width


def test_run_figures_name_the_scenario_and_policies(pd_talk_run: Path, commons_run: Path) -> None:
    figures = figs.figures_for([load_run(pd_talk_run)])
    assert figures and all(f.get_suptitle() == "prisoners_dilemma_talk: tit_for_tat vs grim_trigger" for f in figures.values())
    commons = figs.figures_for([load_run(commons_run)])
    assert commons["resource_stock"].get_suptitle() == "commons: 4 × sustainable_harvester, 2 × fixed_quota, 2 × random"
    overlay = figs.figures_for([load_run(pd_talk_run), load_run(commons_run)], ["talk", "fish"])
    assert overlay["returns"].get_suptitle().startswith("talk = prisoners_dilemma_talk: tit_for_tat vs grim_trigger; fish = commons")


def test_tournament_figures_name_the_tournament_and_entrants(tournament_dir: Path) -> None:
    figures = figs.figures_for([load_result(tournament_dir)])
    titles = {f.get_suptitle() for f in figures.values()}
    assert titles == {"mini (prisoners_dilemma): tit_for_tat, always_cooperate, always_defect"}


def test_llm_ppo_kl_and_entropy_curves_are_drawn(tmp_path: Path) -> None:
    """A curves.csv with the columns `mas train --algo llm-ppo` writes (two seeds)."""
    for seed in (1, 2):
        (tmp_path / f"s{seed}").mkdir()
        rows = ["step,seed,episode_return_mean,policy_loss,value_loss,entropy,kl,approx_kl,clip_frac"]
        rows += [f"{step},{seed},{1 + step / 100},0.1,0.2,{0.69 - step / 1000},{step / 10000 * seed},0.001,0.1" for step in (20, 40, 60)]
        (tmp_path / f"s{seed}" / "curves.csv").write_text("\n".join(rows) + "\n")
    figures = figs.figures_for([load_result(tmp_path)])
    assert {"training_return", "training_kl", "training_entropy"} <= set(figures)
    kl = figures["training_kl"].axes[0]
    assert kl.get_ylabel() == "KL to the base model (nats)" and "2 seeds, 95% band" in kl.get_title()
    assert list(kl.lines[0].get_ydata()) == pytest.approx([0.003, 0.006, 0.009])  # mean of the two seeds
    entropy = figures["training_entropy"].axes[0]
    assert entropy.get_ylabel() == "policy entropy (nats)" and entropy.lines[0].get_ydata()[0] == pytest.approx(0.67)
    page = build_report(load_result(tmp_path))
    assert 'id="figure-training_kl"' in page and "KL divergence of the tuned policy" in page


def _tournament(out: Path, dynamics: str) -> Path:
    from mas.tournament.run import run_tournament
    from mas.tournament.spec import parse_tournament

    spec = {
        "name": f"eco_{dynamics}", "scenario": "prisoners_dilemma", "rounds": 5, "repetitions": 1, "self_play": True, "seed": 2,
        "format": {"kind": "ecological", "dynamics": dynamics, "generations": 50, "population": 40},
        "entrants": [{"name": "tit_for_tat", "policy": "tit_for_tat"}, {"name": "always_defect", "policy": "always_defect"}],
    }
    run_tournament(parse_tournament(spec), out_dir=out, workers=1, backend="serial")
    return out


def test_ecology_captions_name_the_model(tournament_dir: Path, tmp_path: Path) -> None:
    replicator = load_result(tournament_dir)
    assert "(replicator dynamics)" in figs.caption("population_shares", replicator)
    moran = load_result(_tournament(tmp_path / "moran", "moran"))
    caption = figs.caption("population_shares", moran)
    assert "Moran process, population 40" in caption and "replicator" not in caption
    figure = figs.tournament_figures(moran)["population_shares"].axes[0]
    assert "Moran process" in figure.get_title() and figure.get_xlabel() == "birth-death step"
    page = build_report(moran)
    assert "Moran process, population 40" in page and "replicator dynamics" not in page
