"""The conventions of a command-line tool: --version, a quiet exit on a closed pipe,
--debug anywhere, --json output that parses, validate on tournament files, a fast `mas
list`, shell completion. Each test runs `mas` in a subprocess, as a user does."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import mas as mas_api
from mas import registry
from tests.test_cli import MAS, assert_one_line_error, mas

ROOT = Path(__file__).resolve().parent.parent

TINY_TOURNAMENT = {
    "name": "tiny",
    "scenario": "prisoners_dilemma",
    "rounds": 5,
    "repetitions": 1,
    "seed": 3,
    "self_play": True,
    "format": {"kind": "ecological", "dynamics": "replicator", "generations": 10},
    "entrants": [
        {"name": "tft", "policy": "tit_for_tat"},
        {"name": "alld", "policy": "always_defect"},
        {"name": "allc", "policy": "always_cooperate"},
    ],
}


def strict_json(text: str) -> dict:
    """Parse JSON and refuse NaN/Infinity, which other JSON readers reject."""
    def refuse(constant: str) -> None:
        raise AssertionError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def test_version_prints_the_package_version() -> None:
    declared = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    result = mas("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"mas {declared}\n"


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["schema"], 141),
        (["list", "--json"], 141),
        (["--version"], 141),
        (["completion", "bash"], 141),
        # rich prints the summary table and handles the closed pipe itself, as the Python docs
        # recommend (exit 1, no message)
        (["run", "prisoners_dilemma", "--episodes", "2", "--no-progress"], 1),
    ],
    ids=["schema", "list", "version", "completion", "run"],
)
def test_closed_pipe_exits_quietly(tmp_path: Path, args: list[str], code: int) -> None:
    # `mas schema | head -1`, made deterministic: nobody reads the pipe at all
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run([*MAS, *args], stdout=write_end, stderr=subprocess.PIPE, text=True, cwd=tmp_path, timeout=120)
    finally:
        os.close(write_end)
    assert result.stderr == ""
    assert result.returncode == code


def test_debug_is_accepted_after_the_subcommand(tmp_path: Path) -> None:
    for args in (["run", "nope.yaml", "--debug"], ["--debug", "run", "nope.yaml"]):
        result = mas(*args, cwd=tmp_path)
        assert result.returncode != 0
        assert "Traceback" in result.stderr and "ScenarioError: nope.yaml: no such scenario file" in result.stderr
    assert_one_line_error(mas("run", "nope.yaml", cwd=tmp_path), "nope.yaml: no such scenario file")


def test_run_and_compare_json(tmp_path: Path) -> None:
    runs = []
    for name in ("prisoners_dilemma", "stag_hunt"):
        out = tmp_path / name
        result = mas("run", name, "--episodes", "3", "--seed", "2", "--json", "--out", str(out))
        assert result.returncode == 0, result.stderr
        data = strict_json(result.stdout)
        assert data["scenario"] == name and data["episodes"] == 3 and data["seed"] == 2
        assert data["run_dir"] == str(out) and (out / "run.sqlite").is_file()
        assert [a["id"] for a in data["agents"]] == [a.id for a in mas_api.load_scenario(name).agents]
        ret = data["agents"][0]["return"]
        assert ret["n"] == 3 and ret["low"] <= ret["mean"] <= ret["high"]
        assert "3/3" in result.stderr  # progress stays on stderr
        runs.append(out)

    result = mas("compare", *map(str, runs), "--json")
    assert result.returncode == 0, result.stderr
    data = strict_json(result.stdout)
    assert [r["label"] for r in data["runs"]] == ["prisoners_dilemma", "stag_hunt"]
    cooperation = data["runs"][0]["metrics"]["cooperation rate"]
    assert set(cooperation) == {"mean", "low", "high", "n"} and 0 <= cooperation["mean"] <= 1


def test_tournament_json(tmp_path: Path) -> None:
    file = tmp_path / "tiny.yaml"
    file.write_text(yaml.safe_dump(TINY_TOURNAMENT))
    result = mas("tournament", str(file), "--backend", "serial", "--no-progress", "--json", "--out", str(tmp_path / "t"))
    assert result.returncode == 0, result.stderr
    data = strict_json(result.stdout)
    assert data["tournament"] == "tiny" and data["matches"] == data["played_now"] == 6
    assert data["entrants"] == ["tft", "alld", "allc"]
    # PD over 5 rounds, row entrant's mean score: tit for tat meets always-defect: 0 + 4 * 1
    payoff = dict(zip(data["entrants"], data["payoff"]))
    assert payoff["tft"][1] == 4 and payoff["alld"][0] == 9 and payoff["allc"][2] == 15
    assert {r["entrant"] for r in data["ranking"]} == {"tft", "alld", "allc"}
    assert [r["rank"] for r in data["ranking"]] == sorted(r["rank"] for r in data["ranking"])
    assert all(r["elo"] is None for r in data["ranking"])  # not a competitive game: no Elo, as in the table
    assert abs(sum(r["share"] for r in data["ranking"]) - 1) < 1e-6  # ecological: final shares


def test_list_json_and_text_agree() -> None:
    as_json = mas("list", "--json")
    assert as_json.returncode == 0, as_json.stderr
    data = strict_json(as_json.stdout)
    assert set(data) == {"games", "scenarios", "tournaments", "policies"}
    assert {e["name"] for e in data["scenarios"]} == set(registry.builtin_scenarios())
    assert {e["name"] for e in data["tournaments"]} >= {"axelrod_classic", "llm_personas"}
    assert {e["name"] for e in data["policies"]} == set(registry.POLICIES)
    text = mas("list").stdout
    for entries in data.values():
        for entry in entries:
            assert re.search(rf"^  {re.escape(entry['name'])}\s+{re.escape(entry['description'])}$", text, re.M), entry


def test_list_imports_no_heavy_modules() -> None:
    # `mas list` took 9 s on two cores when it imported torch to read docstrings
    heavy = ["torch", "transformers", "matplotlib", "pandas", "scipy", "pydantic", "mas.scenario"]
    code = (
        "import sys, contextlib, io\n"
        "from mas.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['list']) == 0\n"
        f"print([m for m in {heavy!r} if m in sys.modules])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_list_descriptions_match_the_imported_docstrings() -> None:
    # registry.doc_line reads the source; importing gives the truth
    import importlib

    def first_line(doc: str | None) -> str:
        lines = (doc or "").strip().splitlines()
        return lines[0].strip() if lines else ""

    for _, game in registry.GAMES.values():
        module = game.partition(":")[0]
        assert registry.doc_line(module) == first_line(importlib.import_module(module).__doc__)
    for name, (spec, cls, extra) in registry.POLICIES.items():
        expected = first_line(registry.load_attr(cls, extra).__doc__) or first_line(registry.load_attr(spec).__doc__)
        assert (registry.doc_line(cls) or registry.doc_line(spec)) == expected, name


def test_validate_accepts_tournament_files(tmp_path: Path) -> None:
    file = tmp_path / "tiny.yaml"
    file.write_text(yaml.safe_dump(TINY_TOURNAMENT))
    ok = mas("validate", "axelrod_classic", "scenarios/tournaments/llm_personas.yaml", str(file), "prisoners_dilemma")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    lines = ok.stdout.splitlines()
    assert lines[0] == "axelrod_classic: ok (tournament, ecological, 12 entrants, game normal_form)"
    assert lines[2] == f"{file}: ok (tournament, ecological, 3 entrants, game normal_form)"
    assert lines[3].startswith("prisoners_dilemma: ok (normal_form")

    bad = dict(TINY_TOURNAMENT, format="roundrobin", entrants=[{"name": "a", "policy": "tit_for_tatt"}, {"name": "b", "policy": "pavlov"}])
    file.write_text(yaml.safe_dump(bad))
    result = mas("validate", str(file))
    assert result.returncode == 1
    assert "entrants.0.policy: unknown policy 'tit_for_tatt' (did you mean 'tit_for_tat'?)" in result.stdout
    assert "format: unknown format 'roundrobin' (did you mean 'round_robin'?)" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_completion_scripts_complete_commands_and_options(tmp_path: Path) -> None:
    bash = mas("completion", "bash")
    assert bash.returncode == 0, bash.stderr
    script = tmp_path / "mas.bash"
    script.write_text(bash.stdout)
    probe = (
        f"source {script}\n"
        "COMP_WORDS=(mas tour); COMP_CWORD=1; _shtab_mas; echo \"[${COMPREPLY[*]}]\"\n"
        "COMP_WORDS=(mas run --epi); COMP_CWORD=2; _shtab_mas; echo \"[${COMPREPLY[*]}]\"\n"
        "complete -p mas\n"
    )
    completed = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=30)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines()[:2] == ["[tournament]", "[--episodes]"]
    assert "_shtab_mas" in completed.stdout.splitlines()[2]

    zsh = mas("completion", "zsh")
    assert zsh.returncode == 0 and zsh.stdout.startswith("#compdef mas")
    assert "--episodes" in zsh.stdout and "tournament" in zsh.stdout
