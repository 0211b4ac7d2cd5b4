"""Experiments from the command line: `mas run --set` overrides, `--seeds` into one
experiment directory, and `mas plot` / `mas compare` / `mas report` across its seeds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mas.analysis.load import load_run
from mas.cli import main
from mas.errors import MasError
from mas.experiment import parse_seeds

MAS = [sys.executable, "-m", "mas.cli"]
# random-length episodes (continuation 0.9), so seeds differ; at most 6 rounds keeps it fast
FAST = ["prisoners_dilemma_talk", "--set", "rounds.max=6", "--episodes", "4", "--no-progress"]


def mas_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*MAS, *args], capture_output=True, text=True, env={**os.environ, "COLUMNS": "160"}, timeout=300)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_set_changes_fields_and_the_run_stores_the_result(tmp_path: Path) -> None:
    out = tmp_path / "r"
    result = mas_cli("run", "prisoners_dilemma_talk", "--set", "rounds=3", "--set", "agents.bob.policy=always_defect",
                     "--set", "agents.alice.policy.message=I cooperate.", "--no-progress", "--out", str(out))
    assert result.returncode == 0, result.stderr
    run = load_run(out)
    scenario = run.meta["scenario"]
    assert scenario["rounds"] == 3
    assert scenario["agents"][1]["policy"]["type"] == "always_defect"
    assert scenario["agents"][0]["policy"] == {**scenario["agents"][0]["policy"], "type": "tit_for_tat", "message": "I cooperate."}
    assert set(run.steps.loc[run.steps["agent"] == "bob", "action_name"]) == {"D"}
    assert set(run.messages.loc[run.messages["sender"] == "alice", "text"]) == {"I cooperate."}


def test_set_with_a_bad_path_is_one_line_with_did_you_mean(tmp_path: Path) -> None:
    line = one_line_error(mas_cli("run", "prisoners_dilemma_talk", "--set", "comms.topolgy=ring", "--out", str(tmp_path / "r")))
    assert "comms.topolgy" in line and "did you mean 'topology'" in line
    line = one_line_error(mas_cli("run", "prisoners_dilemma_talk", "--set", "agents.bobb.policy=always_defect"))
    assert "did you mean 'bob'" in line
    assert not (tmp_path / "r").exists()


def test_set_with_a_bad_value_is_validated_like_the_file(tmp_path: Path) -> None:
    line = one_line_error(mas_cli("run", "prisoners_dilemma_talk", "--set", "rounds=many", "--out", str(tmp_path / "r")))
    assert "--set rounds=many" in line and "rounds:" in line and "integer" in line
    line = one_line_error(mas_cli("run", "prisoners_dilemma_talk", "--set", "agents.0.policy.type=tit_for_tatt"))
    assert "unknown policy 'tit_for_tatt'" in line and "did you mean 'tit_for_tat'" in line
    assert not (tmp_path / "r").exists()


def test_parse_seeds() -> None:
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("7,0,3") == [0, 3, 7]
    assert parse_seeds("0-2, 10") == [0, 1, 2, 10]
    for bad in ("4-2", "x", "", "1-100000"):
        with pytest.raises(MasError):
            parse_seeds(bad)


@pytest.fixture(scope="module")
def experiment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("exp") / "e"
    result = mas_cli("run", *FAST, "--seeds", "0-2", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "3 seeds x 4 episodes" in result.stdout and f"mas compare {out}" in result.stdout
    return out


def test_seeds_write_one_run_per_seed_and_the_config(experiment: Path) -> None:
    config = json.loads((experiment / "experiment.json").read_text())
    assert config["seeds"] == [0, 1, 2] and config["episodes"] == 4
    assert config["overrides"] == ["rounds.max=6"] and config["scenario"]["rounds"]["max"] == 6
    assert config["source"] == "prisoners_dilemma_talk"
    runs = {seed: load_run(experiment / f"seed-{seed}") for seed in (0, 1, 2)}
    assert {seed: int(run.meta["seed"]) for seed, run in runs.items()} == {0: 0, 1: 1, 2: 2}
    assert all(run.meta["scenario"] == config["scenario"] for run in runs.values())
    assert all(run.episodes["episode"].nunique() == 4 for run in runs.values())
    lengths = [tuple(run.episodes.drop_duplicates("episode")["rounds"]) for run in runs.values()]
    assert len(set(lengths)) > 1  # the seeds are different replications


def test_compare_gives_intervals_across_seeds(experiment: Path, capsys: pytest.CaptureFixture) -> None:
    single = experiment / "seed-0"  # a single run: intervals over its episodes
    assert main(["compare", str(experiment), str(single), "--json"]) == 0
    runs = {r["label"]: r["metrics"] for r in json.loads(capsys.readouterr().out)["runs"]}
    rounds = runs["e"]["rounds per episode"]
    assert rounds["n"] == 3 and rounds["low"] < rounds["mean"] < rounds["high"]  # across the three seeds
    assert runs["seed-0"]["rounds per episode"]["n"] == 4
    assert main(["compare", str(experiment), str(single)]) == 0
    text = capsys.readouterr().out
    assert "across seeds" in text and "±" in text


def test_plot_and_report_of_an_experiment_keep_its_configuration(experiment: Path, tmp_path: Path) -> None:
    assert main(["plot", str(experiment), "--out", str(tmp_path / "figs"), "--format", "png"]) == 0
    assert {"seed_returns.png", "seed_cooperation.png"} <= {p.name for p in (tmp_path / "figs").iterdir()}
    report = tmp_path / "report.html"
    assert main(["report", str(experiment), "--out", str(report)]) == 0
    html = report.read_text(encoding="utf-8")
    assert "experiment report (3 seeds)" in html
    for fact, value in (("game", "normal_form"), ("agents", "alice (tit_for_tat), bob (grim_trigger)"), ("seeds", "0, 1, 2"),
                        ("overrides", "--set rounds.max=6")):
        assert f"<th>{fact}</th><td>{value}</td>" in html.replace("\n", "").replace("  ", ""), fact
    assert "across seeds" in html


def test_resume_finishes_an_interrupted_experiment(experiment: Path, tmp_path: Path) -> None:
    copy = tmp_path / "e"
    shutil.copytree(experiment, copy)
    shutil.rmtree(copy / "seed-2")
    result = mas_cli("run", "--resume", str(copy), "--no-progress", "--no-report")
    assert result.returncode == 0, result.stderr
    again, before = load_run(copy / "seed-2"), load_run(experiment / "seed-2")
    assert again.steps.drop(columns=[]).equals(before.steps)
    assert "3 seeds x 4 episodes" in result.stdout
