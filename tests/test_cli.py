"""The `mas` command end to end, in a subprocess, as a user runs it."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PD

MAS = [sys.executable, "-m", "mas.cli"]


def mas(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "160"}
    return subprocess.run([*MAS, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_run_prints_summary_and_writes_run_dir(tmp_path: Path) -> None:
    result = mas("run", "scenarios/prisoners_dilemma.yaml", "--episodes", "20", "--seed", "1", "--no-progress", "--out", str(tmp_path / "pd"))
    assert result.returncode == 0, result.stderr
    assert "20 episodes, seed 1" in result.stdout
    assert "alice" in result.stdout and "tit_for_tat" in result.stdout and "cooperation" in result.stdout
    assert (tmp_path / "pd" / "run.sqlite").is_file()


def test_default_run_dir_is_under_runs(tmp_path: Path) -> None:
    scenario = Path("scenarios/stag_hunt.yaml").resolve()
    result = mas("run", str(scenario), "--episodes", "2", "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (run_dir,) = list((tmp_path / "runs").iterdir())
    assert run_dir.name.startswith("stag_hunt-") and (run_dir / "run.sqlite").is_file()


def test_progress_bar_is_shown(tmp_path: Path) -> None:
    result = mas("run", "prisoners_dilemma", "--episodes", "3", "--out", str(tmp_path / "r"))
    assert result.returncode == 0
    assert "3/3" in result.stderr and "episodes" in result.stderr


def test_validate_ok_and_every_problem(tmp_path: Path) -> None:
    ok = mas("validate", "scenarios/commons.yaml", "signalling")
    assert ok.returncode == 0 and ok.stdout.count(": ok") == 2
    data = copy.deepcopy(PD)
    data["roundz"] = data.pop("rounds")
    data["agents"][1]["policy"] = "grim"
    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps(data))
    bad = mas("validate", str(path))
    assert bad.returncode == 1
    lines = bad.stdout.strip().splitlines()
    assert any("roundz: unknown key 'roundz' (did you mean 'rounds'?)" in line for line in lines)
    assert any("agents.1.policy: unknown policy 'grim'" in line and "grim_trigger" in line for line in lines)


def test_list_shows_games_scenarios_policies() -> None:
    result = mas("list")
    assert result.returncode == 0
    for name in ("normal_form", "commons", "prisoners_dilemma", "stag_hunt", "tit_for_tat", "sustainable_harvester"):
        assert name in result.stdout


def test_schema_is_json_schema() -> None:
    result = mas("schema")
    schema = json.loads(result.stdout)
    assert schema["title"] == "mas scenario" and "agents" in schema["properties"]


@pytest.mark.parametrize(
    "content, fragments",
    [
        ("name: x\ngame: {kind: normal_form\n", ["malformed YAML", "bad.yaml:"]),
        ({**PD, "colour": "red"}, ["colour: unknown key 'colour'"]),
        ({**PD, "episodes": "lots"}, ["episodes: Input should be a valid integer"]),
        ({**PD, "game": {"kind": "go"}}, ["game: unknown game 'go'", "normal_form"]),
        ({**PD, "agents": [{"id": "a", "policy": "titfortat"}, {"id": "b", "policy": "random"}]}, ["unknown policy 'titfortat'", "did you mean 'tit_for_tat'"]),
        ({**PD, "comms": {"mode": "broadcast", "topology": "ring"}}, ["comms.topology: a ring needs at least 3 agents"]),
        ({**PD, "rounds": -5}, ["rounds: Input should be greater than or equal to 1"]),
    ],
)
def test_bad_scenarios_give_one_line_errors(tmp_path: Path, content, fragments) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    result = mas("run", str(path), "--no-progress", "--out", str(tmp_path / "r"))
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["run", "prisoners_dilemma", "--episodes", "-2"], "expected a number >= 1"),
        (["run", "prisoners_dilemma", "--seed", "abc"], "expected a whole number"),
        (["run", "no_such_scenario"], "unknown scenario 'no_such_scenario'"),
        (["run", "missing.yaml"], "no such scenario file"),
        (["run"], "give a scenario file, or --resume DIR"),
        (["run", "--resume", "no_such_run"], "no_such_run: no run found"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_arguments_give_one_line_errors(args, fragment) -> None:
    assert_one_line_error(mas(*args), fragment)


def test_existing_run_dir_is_not_overwritten(tmp_path: Path) -> None:
    out = str(tmp_path / "r")
    assert mas("run", "prisoners_dilemma", "--episodes", "2", "--no-progress", "--out", out).returncode == 0
    before = (tmp_path / "r" / "run.sqlite").read_bytes()
    result = mas("run", "prisoners_dilemma", "--episodes", "2", "--no-progress", "--out", out)
    assert_one_line_error(result, "already holds a run")
    assert (tmp_path / "r" / "run.sqlite").read_bytes() == before


def test_debug_shows_traceback(tmp_path: Path) -> None:
    result = mas("--debug", "run", "no_such_scenario")
    assert result.returncode != 0 and "Traceback" in result.stderr
