"""The main job of `mas run`: per-step callbacks, the live feed, progress lines, the report
and figures written into the run directory, and the README's first command kept true."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from rich.console import Console

import mas
from mas.analysis.load import load_run
from mas.live import FEED_ROUNDS, RunProgress
from mas.overrides import load_with_sets
from mas.runner import run

ROOT = Path(__file__).resolve().parents[1]
MAS = [sys.executable, "-m", "mas.cli"]
# a fast scripted scenario in which both agents talk before every round
TALK = ["prisoners_dilemma_talk", "--set", "rounds=3", "--episodes", "1"]


def mas_cli(*args: str, report: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "160"}
    if report:
        env.pop("MAS_NO_REPORT", None)
    return subprocess.run([*MAS, *args], capture_output=True, text=True, env=env, timeout=300)


def test_on_step_gets_every_step_in_order_with_the_stored_records(tmp_path: Path) -> None:
    scenario = mas.load_scenario("prisoners_dilemma_talk")
    events = []
    run(scenario, 3, 5, out_dir=tmp_path / "r", on_step=events.append)
    stored = load_run(tmp_path / "r")
    for episode in range(3):
        mine = [e for e in events if e.episode == episode]
        rounds = int(stored.episodes[stored.episodes["episode"] == episode]["rounds"].iloc[0])
        assert [e.step for e in mine] == list(range(2 * rounds))  # a talk and an action step per round
        assert [e.talking for e in mine] == [True, False] * rounds
        assert [e.round for e in mine] == [r for r in range(rounds) for _ in (0, 1)]
    assert [e.episode for e in events] == sorted(e.episode for e in events)
    fed = [(r.episode, r.step, r.agent, r.action_name, r.reward) for e in events for r in e.records]
    kept = list(stored.steps[["episode", "step", "agent", "action_name", "reward"]].itertuples(index=False, name=None))
    assert fed == [(int(a), int(b), c, d, float(f)) for a, b, c, d, f in kept]
    said = [(m.episode, m.step, m.sender, m.text) for e in events for m in e.transition.messages[0]]
    assert said == list(stored.messages[["episode", "step", "sender", "text"]].itertuples(index=False, name=None))


def test_feed_prints_each_rounds_messages_then_actions(tmp_path: Path) -> None:
    result = mas_cli("run", *TALK, "--feed", "--out", str(tmp_path / "r"))
    assert result.returncode == 0, result.stderr
    feed = "\n" + result.stderr
    cursor = 0
    for game_round in (1, 2, 3):  # each round in order: its header, what each said, what each did
        for expected in (f"\nround {game_round}/3\n", f"  alice → bob: Round {game_round}: I will play C.\n",
                         "  bob → alice: Cross me once and I defect forever.\n", "  alice C (+3)   bob C (+3)\n"):
            found = feed.find(expected, cursor)
            assert found >= 0, (expected, feed[cursor:])
            cursor = found + len(expected)
    assert "round 4/3" not in feed
    assert feed.count("bob → alice: Cross me once") == 3  # said in the talk and the action step: shown once a round
    assert "→" not in result.stdout and "alice" in result.stdout  # the feed stays off stdout; the summary is there


def test_without_a_terminal_progress_lines_per_round_and_no_feed(tmp_path: Path) -> None:
    result = mas_cli("run", "prisoners_dilemma", "--set", "rounds=10", "--episodes", "2", "--out", str(tmp_path / "r"))
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert "→" not in result.stderr
    # 20 rounds: a line at every 10% (two rounds), then the closing line
    percents = [int(m.group(1)) for line in lines for m in [re.search(r"\((\d+)%\)", line)] if m]
    assert percents == [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    assert lines[0].startswith("prisoners_dilemma: playing 2 episode(s) of 10 rounds")
    assert lines[1].startswith("prisoners_dilemma: episode 1/2, round 2/10 (10%)")
    assert lines[-1].startswith("prisoners_dilemma: done: 2 of 2 episodes")


def test_json_keeps_stdout_pure_and_names_the_report(tmp_path: Path) -> None:
    result = mas_cli("run", *TALK, "--json", "--feed", "--out", str(tmp_path / "r"), report=True)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["report"] == str(tmp_path / "r" / "report.html")
    assert "alice → bob" in result.stderr


def test_main_job_writes_report_and_figures_and_says_what_next(tmp_path: Path) -> None:
    out = tmp_path / "r"
    result = mas_cli("run", *TALK, "--out", str(out), report=True)
    assert result.returncode == 0, result.stderr
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Round 2: I will play C." in html and "Cross me once" in html
    assert {"returns.png", "communication_graph.png", "cooperation_over_rounds.png"} <= {p.name for p in (out / "figures").iterdir()}
    assert f"mas report {out} --open" in result.stdout
    assert "mas run prisoners_dilemma_talk --seeds 0-4" in result.stdout and "mas tournament" in result.stdout
    assert "mas transcript" not in result.stdout  # no LLM agents: nothing for the transcript
    skipped = mas_cli("run", *TALK, "--out", str(tmp_path / "quiet"), "--no-report", report=True)
    assert skipped.returncode == 0 and not (tmp_path / "quiet" / "report.html").exists()


def test_terminal_feed_stops_after_its_round_limit(tmp_path: Path) -> None:
    scenario = load_with_sets("prisoners_dilemma_talk", [f"rounds={FEED_ROUNDS + 5}"])
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120, no_color=True)
    with RunProgress(scenario, 1, console=console) as live:
        run(scenario, 1, 0, on_step=live.on_step, on_episode=live.on_episode)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", buffer.getvalue())  # without the terminal's styles
    assert f"round {FEED_ROUNDS}/{FEED_ROUNDS + 5}" in text and f"round {FEED_ROUNDS + 1}/" not in text
    assert f"the feed stops after {FEED_ROUNDS} rounds" in text
    assert text.count("alice → bob: Round 1: I will play C.") == 1  # said in the talk and the action step: shown once


def test_readme_first_command_is_the_flagship_and_ci_runs_it() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first = next(line.strip() for line in readme.splitlines() if line.startswith("    python3 -m venv"))
    job = first.split(" && ")[-1]
    assert job.startswith(".venv/bin/mas run flagship")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    ci_line = next(line for line in ci.splitlines() if line.startswith("python3 -m venv"))
    assert ci_line.split(" && ")[-1].startswith(job + " ")  # the same main job, plus only CI's own options
    scenario = mas.load_scenario("flagship")
    policies = [a.policy.type for a in scenario.agents]
    assert policies.count("llm") == 2 and len(policies) > 2 and scenario.comms.mode != "off"
    assert any(a.policy.type != "llm" and a.policy.message for a in scenario.agents)
