"""Readers for `mas train` curves and `mas tournament` stores, on files the real code writes."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mas.analysis import training as tr
from mas.analysis import tournaments as tn
from mas.analysis.figures import figures_for
from mas.analysis.load import load_result, load_run
from mas.errors import StoreError


def _write_curves(path: Path, steps: list[int], returns: dict[str, list[float]], seed: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame({"step": steps, "seed": seed, **{f"return/{a}": v for a, v in returns.items()}})
    frame.to_csv(path / "curves.csv", index=False)


def test_seeds_in_subdirectories_give_a_band(tmp_path: Path) -> None:
    _write_curves(tmp_path / "s1", [100, 200], {"a": [8.0, 10.0], "b": [12.0, 10.0]}, seed=1)
    _write_curves(tmp_path / "s2", [100, 200], {"a": [14.0, 14.0], "b": [14.0, 14.0]}, seed=2)
    curves = tr.read_curves(tmp_path)
    assert curves["curve"].nunique() == 2
    # the return curve is the mean over the learners' return/<agent> columns
    assert list(curves[curves.curve == 0]["episode_return_mean"]) == [10.0, 10.0]
    band = tr.band(curves, "episode_return_mean").set_index("step")
    # seeds give 10 and 14: mean 12, sd 2*sqrt(2), t(0.975, 1) = 12.7062 -> half-width 12.7062 * 2
    assert band.loc[100, "mean"] == 12.0 and band.loc[100, "n"] == 2
    assert band.loc[100, "high"] - 12.0 == pytest.approx(12.7062047 * 2, rel=1e-6)
    assert tr.final_value(curves, "episode_return_mean") == 12.0


def test_band_interpolates_seeds_logged_at_different_steps(tmp_path: Path) -> None:
    _write_curves(tmp_path / "s1", [0, 10], {"a": [0.0, 10.0]}, seed=1)
    _write_curves(tmp_path / "s2", [0, 5, 10], {"a": [0.0, 10.0, 10.0]}, seed=2)
    band = tr.band(tr.read_curves(tmp_path), "episode_return_mean", points=3).set_index("step")
    assert list(band.index) == [0.0, 5.0, 10.0]
    assert band.loc[5.0, "mean"] == pytest.approx(7.5)  # 5 (interpolated) and 10


def test_bad_curve_files_are_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "curves.csv").write_text("episode,return\n1,2\n")
    with pytest.raises(StoreError, match=r"curves.csv: training-curve CSV has no 'step' column"):
        tr.read_curves(tmp_path / "a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "curves.csv").write_bytes(b"")
    with pytest.raises(StoreError, match="not a readable training-curve CSV"):
        load_run(tmp_path / "b")


def test_tensorboard_scalars_are_read_when_there_is_no_csv(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    torch_tb = pytest.importorskip("torch.utils.tensorboard")
    writer = torch_tb.SummaryWriter(log_dir=str(tmp_path / "tb"))
    for step, value in [(10, 1.0), (20, 3.0)]:
        writer.add_scalar("episode_return_mean", value, step)
    writer.close()
    curves = tr.read_curves(tmp_path)
    assert list(curves["step"]) == [10, 20] and list(curves["episode_return_mean"]) == [1.0, 3.0]


def test_a_real_training_run_loads_with_curves_and_evaluation_episodes(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    import mas
    from mas.training.run import train

    out = tmp_path / "train"
    train(mas.load_scenario("prisoners_dilemma"), "iql", steps=800, seed=1, out_dir=out, final_episodes=2, eval_episodes=2,
          tensorboard=False)
    run = load_result(out)
    assert len(run.training) > 0 and "episode_return_mean" in run.training.columns
    assert run.episodes["episode"].nunique() == 2  # the trained agents' final episodes (eval/run.sqlite)
    assert run.training["step"].max() == 800
    figures = figures_for([run])
    assert {"training_return", "returns"} <= set(figures)
    assert figures["training_return"].axes[0].get_xlabel() == "environment steps"


# ----- tournaments ---------------------------------------------------------------------------
def test_tournament_tables_by_hand(tournament_dir: Path) -> None:
    """10 rounds, T5 R3 P1 S0: tit-for-tat vs always-defect scores 0 + 9 = 9 (the defector
    5 + 9 = 14), always-defect vs always-cooperate 50 vs 0, cooperators together 30 each.
    With self-play (both seats count) per appearance: TFT (9 + 30 + 30 + 30) / 4 = 24.75,
    always-cooperate (30 + 0 + 60) / 4 = 22.5, always-defect (14 + 50 + 20) / 4 = 21."""
    t = load_result(tournament_dir)
    assert isinstance(t, tn.Tournament) and not t.computed
    assert list(t.ratings["name"]) == ["tit_for_tat", "always_cooperate", "always_defect"]
    assert list(t.ratings["mean"]) == pytest.approx([24.75, 22.5, 21.0])
    assert t.payoff.loc["tit_for_tat", "always_defect"] == 9.0 and t.payoff.loc["always_defect", "tit_for_tat"] == 14.0
    assert t.payoff.loc["always_defect", "always_cooperate"] == 50.0
    coop = tn.cooperation_matrix(t)
    assert coop.loc["tit_for_tat", "always_defect"] == pytest.approx(0.1)
    assert coop.loc["always_defect"].max() == 0.0 and coop.loc["always_cooperate"].min() == 1.0
    assert t.ecological and len(t.ecology) == 31  # generations 0..30, stored by the tournament
    assert np.allclose(t.ecology.sum(axis=1), 1.0)


def test_stopped_tournament_is_rated_from_its_matches(tournament_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "stopped"
    shutil.copytree(tournament_dir, copy)
    db = sqlite3.connect(copy / tn.DB_NAME)
    with db:
        for table in ("ratings", "payoff", "ecology"):
            db.execute(f"DELETE FROM {table}")
    db.close()
    t = tn.load_tournament(copy)
    assert t.computed
    assert list(t.ratings["mean"]) == pytest.approx([24.75, 22.5, 21.0])
    assert t.payoff.loc["tit_for_tat", "always_defect"] == 9.0
    # no stored ecology: the tournament's replicator dynamics run on the payoff matrix
    assert len(t.ecology) == tn.ECOLOGY_GENERATIONS + 1
    assert t.ecology.iloc[0].tolist() == pytest.approx([1 / 3] * 3)


def test_damaged_tournament_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / tn.DB_NAME).write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(StoreError, match="not a readable tournament database"):
        load_result(tmp_path)
    with pytest.raises(StoreError, match="is a tournament, not a run"):
        load_run(tmp_path)
