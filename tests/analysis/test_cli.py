"""`mas plot`, `mas report` and `mas compare` as a user runs them; bad input is one line."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from mas.cli import main


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _one_line_error(capsys: pytest.CaptureFixture, *fragments: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    for fragment in fragments:
        assert fragment in err[0], err[0]


def test_plot_writes_png_and_svg_into_the_run_directory(pd_talk_run: Path, capsys: pytest.CaptureFixture) -> None:
    before = _digest(pd_talk_run / "run.sqlite")
    assert main(["plot", str(pd_talk_run)]) == 0
    out = pd_talk_run / "figures"
    assert {p.name for p in out.iterdir()} >= {"returns.png", "returns.svg", "cooperation_over_rounds.png", "communication_graph.svg"}
    assert "written to" in capsys.readouterr().out
    assert _digest(pd_talk_run / "run.sqlite") == before  # analysis never touches the store


def test_plot_of_several_runs_and_a_tournament(pd_talk_run: Path, commons_run: Path, tournament_dir: Path, tmp_path: Path) -> None:
    assert main(["plot", str(pd_talk_run), str(commons_run), "--out", str(tmp_path / "both"), "--format", "png"]) == 0
    assert {p.suffix for p in (tmp_path / "both").iterdir()} == {".png"}
    assert (tmp_path / "both" / "resource_stock.png").is_file()
    assert main(["plot", str(tournament_dir), "--out", str(tmp_path / "t"), "--format", "svg"]) == 0
    assert {p.stem for p in (tmp_path / "t").iterdir()} == {"ranking", "payoff_matrix", "cooperation_matrix", "population_shares"}


def test_plot_missing_empty_or_corrupt_run_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["plot", str(tmp_path / "nowhere")]) == 1
    _one_line_error(capsys, "nowhere", "no such run directory")
    (tmp_path / "empty").mkdir()
    assert main(["plot", str(tmp_path / "empty")]) == 1
    _one_line_error(capsys, "no run found", "run.sqlite")
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "run.sqlite").write_bytes(os.urandom(4096))
    assert main(["plot", str(corrupt)]) == 1
    _one_line_error(capsys, "corrupt/run.sqlite", "not a readable run database")


def test_plot_of_a_run_with_damaged_tables_is_one_line(pd_talk_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "run.sqlite").write_bytes((pd_talk_run / "run.sqlite").read_bytes())
    db = sqlite3.connect(damaged / "run.sqlite")
    db.execute("DROP TABLE steps")
    db.commit()
    db.close()
    assert main(["plot", str(damaged)]) == 1
    _one_line_error(capsys, "damaged run database", "steps")


def test_bad_format_is_a_usage_error(pd_talk_run: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["plot", str(pd_talk_run), "--format", "png,gif"])
    assert exit_info.value.code == 2
    _one_line_error(capsys, "--format", "png, svg, pdf")


def test_figure_path_blocked_by_a_file_is_one_line(pd_talk_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "taken").write_text("a file where the figure directory should go")
    assert main(["plot", str(pd_talk_run), "--out", str(tmp_path / "taken")]) == 1
    _one_line_error(capsys, "cannot write figures")


def test_report_opens_in_the_users_browser(pd_talk_run: Path, tmp_path: Path) -> None:
    """--open goes through Python's webbrowser, which honours $BROWSER: a script stands in
    for the browser and records the address it was given."""
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\necho "$1" > {opened}\n')
    browser.chmod(0o755)
    env = {**os.environ, "BROWSER": str(browser)}
    report = tmp_path / "r" / "report.html"
    done = subprocess.run([sys.executable, "-m", "mas.cli", "report", str(pd_talk_run), "--out", str(report), "--open"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert report.is_file() and f"report written to {report}" in done.stdout
    assert opened.read_text().strip() == report.resolve().as_uri()


def test_report_defaults_into_the_run_directory(tournament_dir: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["report", str(tournament_dir)]) == 0
    page = (tournament_dir / "report.html").read_text()
    assert "tournament report" in page and "Ranking" in page


def test_compare_prints_metrics_side_by_side(pd_talk_run: Path, commons_run: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    assert main(["compare", str(pd_talk_run), str(commons_run), "--plot", str(tmp_path / "figs"), "--format", "png"]) == 0
    out = capsys.readouterr().out
    for text in ("2 runs compared", "cooperation rate", "social welfare", "promise keeping", "survival rate"):
        assert text in out, text
    assert (tmp_path / "figs" / "returns.png").is_file()


def test_compare_of_one_run_given_twice_fills_both_columns(pd_talk_run: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["compare", str(pd_talk_run), str(pd_talk_run), "--json"]) == 0
    import json

    labels = [entry["label"] for entry in json.loads(capsys.readouterr().out)["runs"]]
    assert labels == [pd_talk_run.name, f"{pd_talk_run.name} (2)"]
    assert main(["compare", str(pd_talk_run), str(pd_talk_run)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "cooperation rate" in line)
    cells = [c.strip() for c in row.split("│") if c.strip()]
    assert len(cells) == 3 and cells[1] == cells[2] and cells[1] not in ("", "—"), cells


def test_compare_refuses_a_tournament(tournament_dir: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["compare", str(tournament_dir)]) == 1
    _one_line_error(capsys, "is a tournament, not a run")


def test_same_seed_gives_the_same_metrics(tmp_path: Path) -> None:
    """A seed fixes a run, so it fixes every metric computed from it."""
    import mas
    from mas.analysis.load import load_run
    from mas.analysis.summary import compare
    from mas.runner import run

    scenario = mas.load_scenario("prisoners_dilemma")
    for name, seed in (("a", 4), ("b", 4), ("c", 5)):
        run(scenario, episodes=6, seed=seed, out_dir=tmp_path / name)
    table = compare([load_run(tmp_path / n) for n in "abc"], ["a", "b", "c"])
    assert table["a"].tolist() == table["b"].tolist()
    assert table["a"].tolist() != table["c"].tolist()


def test_import_mas_and_the_readers_stay_light() -> None:
    """Loading runs and computing metrics never imports matplotlib (only figures do)."""
    code = ("import sys, mas; from mas.analysis import load, summary, metrics, communication, game_metrics, training, tournaments; "
            "assert 'matplotlib' not in sys.modules and 'jinja2' not in sys.modules, 'heavy import'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_run_without_finished_episodes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A run killed during its first episode has a store but no episodes: plot says so in one
    line; report and compare still work and show nothing made up."""
    import mas
    from mas.store import RunStore

    scenario = mas.load_scenario("commons")
    RunStore.create(tmp_path / "empty", scenario.to_dict(), 0, [(a.id, {"type": "random"}, "") for a in scenario.agents]).close()
    assert main(["plot", str(tmp_path / "empty")]) == 1
    _one_line_error(capsys, "nothing to plot yet")
    assert main(["report", str(tmp_path / "empty")]) == 0
    page = (tmp_path / "empty" / "report.html").read_text()
    assert "<td>episodes</td><td class=\"num\">0</td>" in page and 'class="episode"' not in page
