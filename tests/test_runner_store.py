"""The runner and the run store: determinism, atomic episodes, readable DataFrames."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

import mas
from mas.agents.scripted import TitForTat
from mas.errors import StoreError
from mas.runner import run
from mas.store import RunStore
from tests.conftest import FAST_BUILTIN, PD


def _dump(run_dir: Path) -> dict[str, list]:
    """Every table except the creation time and package versions."""
    db = sqlite3.connect(run_dir / "run.sqlite")
    out = {}
    for table in ("agents", "episodes", "returns", "steps", "states", "messages", "decisions"):
        out[table] = db.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
    out["meta"] = db.execute("SELECT * FROM meta WHERE key NOT IN ('created', 'versions') ORDER BY key").fetchall()
    db.close()
    return out


@pytest.mark.parametrize("name", FAST_BUILTIN)
def test_same_seed_same_store(name: str, tmp_path: Path) -> None:
    scenario = mas.load_scenario(name)
    run(scenario, episodes=3, seed=11, out_dir=tmp_path / "a")
    run(scenario, episodes=3, seed=11, out_dir=tmp_path / "b")
    assert _dump(tmp_path / "a") == _dump(tmp_path / "b")


@pytest.mark.parametrize("name", ["prisoners_dilemma", "commons", "signalling", "prisoners_dilemma_talk", "coordination"])
def test_different_seeds_differ_where_random(name: str, tmp_path: Path) -> None:
    scenario = mas.load_scenario(name)
    run(scenario, episodes=3, seed=1, out_dir=tmp_path / "a")
    run(scenario, episodes=3, seed=2, out_dir=tmp_path / "b")
    assert _dump(tmp_path / "a")["steps"] != _dump(tmp_path / "b")["steps"]


def test_store_contents_of_a_known_match(tmp_path: Path) -> None:
    """TFT vs alternator for 6 rounds: TFT C C D C D C, alternator C D C D C D."""
    from tests.conftest import PD

    scenario = mas.scenario.parse_scenario(PD)
    run(scenario, episodes=1, seed=0, out_dir=tmp_path / "r")
    data = mas.load_run(tmp_path / "r")
    steps = data.steps.sort_values(["step", "agent"])
    assert "".join(steps[steps.agent == "a"].action_name) == "CCDCDC"
    assert "".join(steps[steps.agent == "b"].action_name) == "CDCDCD"
    # payoffs: (C,C)=3,3 (C,D)=0,5 (D,C)=5,0 (C,D)=0,5 (D,C)=5,0 (C,D)=0,5
    returns = data.episodes.set_index("agent")["return"]
    assert returns["a"] == 13 and returns["b"] == 18
    assert data.episodes.set_index("agent")["cooperation"]["a"] == pytest.approx(4 / 6)
    assert data.meta["scenario"]["name"] == "pd" and data.meta["seed"] == "0"


def test_messages_are_stored_with_round_and_sender(tmp_path: Path) -> None:
    run(mas.load_scenario("prisoners_dilemma_talk"), episodes=1, seed=7, out_dir=tmp_path / "r")
    messages = mas.load_run(tmp_path / "r").messages
    assert len(messages) > 0
    first = messages.iloc[0]
    assert first.sender == "alice" and first.recipient == "bob" and first["round"] == 0
    assert first.text == "Round 1: I will play C."


def test_commons_states_hold_the_stock(tmp_path: Path) -> None:
    run(mas.load_scenario("commons"), episodes=1, seed=0, out_dir=tmp_path / "r")
    states = mas.load_run(tmp_path / "r").states
    assert "stock" in states.columns
    assert (states.stock <= 100).all() and (states.stock >= 0).all()


def test_crash_mid_episode_keeps_finished_episodes(tmp_path: Path, monkeypatch) -> None:
    """A failure in episode 2 leaves episodes 0 and 1 complete and nothing of episode 2."""
    calls = {"n": 0}
    original = TitForTat.act

    def failing(self, views):
        if views[0].round == 0:
            calls["n"] += 1
        if calls["n"] == 3 and views[0].round == 4:
            raise RuntimeError("policy crashed")
        return original(self, views)

    monkeypatch.setattr(TitForTat, "act", failing)
    with pytest.raises(RuntimeError):
        run(mas.load_scenario("prisoners_dilemma"), episodes=5, seed=0, out_dir=tmp_path / "r")
    with RunStore.open(tmp_path / "r") as store:
        assert store.episodes_done() == [0, 1]
        assert {row[0] for row in store.query("SELECT DISTINCT episode FROM steps")} == {0, 1}
        assert store.query("SELECT COUNT(*) FROM steps")[0][0] == 2 * 10 * 2


def test_refuses_to_overwrite_a_run(tmp_path: Path) -> None:
    scenario = mas.load_scenario("prisoners_dilemma")
    run(scenario, episodes=1, seed=0, out_dir=tmp_path / "r")
    with pytest.raises(StoreError, match="already holds a run"):
        run(scenario, episodes=1, seed=0, out_dir=tmp_path / "r")
    assert len(mas.load_run(tmp_path / "r").episodes) == 2  # untouched


def test_missing_and_corrupt_stores(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no run found"):
        RunStore.open(tmp_path)
    (tmp_path / "run.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a readable run database"):
        RunStore.open(tmp_path)


def test_schema_version_is_checked(tmp_path: Path) -> None:
    run(mas.load_scenario("prisoners_dilemma"), episodes=1, seed=0, out_dir=tmp_path / "r")
    db = sqlite3.connect(tmp_path / "r" / "run.sqlite")
    with db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.close()
    with pytest.raises(StoreError, match="schema version 99"):
        RunStore.open(tmp_path / "r")


def test_resolved_scenario_is_stored(tmp_path: Path) -> None:
    run(mas.load_scenario("commons"), episodes=1, seed=0, out_dir=tmp_path / "r")
    meta = mas.load_run(tmp_path / "r").meta
    assert len(meta["scenario"]["agents"]) == 8  # counts expanded
    assert json.loads(json.dumps(meta["scenario"]))["game"]["kind"] == "commons"


# ----- resume, locks, failed runs, kill -9 ---------------------------------------------
# a talk game of random length with a random player: messages, steps and seeds all show
SLOW_TALK = {
    "name": "slow_talk",
    "game": PD["game"],
    "rounds": {"continuation": 0.998, "max": 1500},
    "agents": [{"id": "a", "policy": {"type": "tit_for_tat", "message": "Round $round: I will play $action."}},
               {"id": "b", "policy": {"type": "random", "p": 0.5}}],
    "comms": {"mode": "broadcast", "talk_rounds": 1},
    "episodes": 8,
    "seed": 3,
}


def test_resume_plays_only_the_missing_episodes(tmp_path: Path, monkeypatch) -> None:
    import mas.runner

    scenario = mas.scenario.parse_scenario({**PD, "agents": [{"id": "a", "policy": "tit_for_tat"}, {"id": "b", "policy": "random"}]})
    whole = run(scenario, episodes=6, seed=4, out_dir=tmp_path / "whole")
    original = mas.runner.play_episode
    played: list[int] = []
    crash = [True]

    def crashing(engine, episode, seed, on_step=None):
        if episode == 3 and crash:  # once: the run dies in its fourth episode
            crash.clear()
            raise RuntimeError("killed")
        played.append(episode)
        return original(engine, episode, seed, on_step)

    monkeypatch.setattr(mas.runner, "play_episode", crashing)
    with pytest.raises(RuntimeError):
        run(scenario, episodes=6, seed=4, out_dir=tmp_path / "r")
    assert played == [0, 1, 2] and not crash
    played.clear()
    resumed = run(scenario, episodes=6, seed=4, out_dir=tmp_path / "r", resume=True)
    assert played == [3, 4, 5]  # nothing stored is played again
    assert _dump(tmp_path / "r") == _dump(tmp_path / "whole")
    assert [(r.episode, r.seed, r.rounds, r.returns, r.cooperation) for r in resumed] == [
        (r.episode, r.seed, r.rounds, r.returns, r.cooperation) for r in whole]
    played.clear()
    assert len(run(scenario, episodes=6, seed=4, out_dir=tmp_path / "r", resume=True)) == 6 and played == []


def test_resume_refuses_another_scenario_seed_or_count(tmp_path: Path) -> None:
    from mas.runner import stored_run

    scenario = mas.scenario.parse_scenario(PD)
    run(scenario, episodes=2, seed=4, out_dir=tmp_path / "r")
    before = _dump(tmp_path / "r")
    assert stored_run(tmp_path / "r") == (scenario, 4, 2)
    other = mas.scenario.parse_scenario({**PD, "rounds": 7})
    for args, message in [
        ((other, 2, 4), r"holds a different scenario \(rounds differs\)"),
        ((scenario, 2, 5), "was started with seed 4, not 5"),
        ((scenario, 3, 4), "was started with 2 episodes, not 3"),
    ]:
        with pytest.raises(StoreError, match=message):
            run(*args, out_dir=tmp_path / "r", resume=True)
    with pytest.raises(StoreError, match="no run found"):
        run(scenario, 2, 4, out_dir=tmp_path / "none", resume=True)
    assert _dump(tmp_path / "r") == before


def test_a_run_directory_in_use_is_refused(tmp_path: Path) -> None:
    import os

    from mas.rundir import locked

    scenario = mas.scenario.parse_scenario(PD)
    run(scenario, episodes=1, seed=0, out_dir=tmp_path / "r")
    with locked(tmp_path / "r"), locked(tmp_path / "new", create=True):
        for out, resume in [(tmp_path / "r", True), (tmp_path / "new", False)]:
            with pytest.raises(StoreError, match=f"run directory {out} is in use by pid {os.getpid()}"):
                run(scenario, episodes=1, seed=0, out_dir=out, resume=resume)
    assert not (tmp_path / "new" / "run.sqlite").exists()
    run(scenario, episodes=1, seed=0, out_dir=tmp_path / "new")  # released with the block


def test_a_failed_run_leaves_nothing_that_blocks_its_directory(tmp_path: Path) -> None:
    from mas.errors import MasError

    dead = {"type": "llm", "backend": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m", "max_retries": 0, "timeout": 2}}
    failing = mas.scenario.parse_scenario({**PD, "agents": [PD["agents"][0], {"id": "b", "policy": dead}]})
    with pytest.raises(MasError, match="127.0.0.1:9"):
        run(failing, episodes=2, seed=0, out_dir=tmp_path / "r")
    assert not (tmp_path / "r").exists()  # the store held nothing: removed with its directory
    scenario = mas.scenario.parse_scenario(PD)
    run(scenario, episodes=2, seed=0, out_dir=tmp_path / "r")
    # a run killed before its first episode leaves an empty store: it is replaced, never one with episodes
    RunStore.create(tmp_path / "empty", scenario.to_dict(), 0, [("a", {}, ""), ("b", {}, "")]).close()
    run(scenario, episodes=2, seed=0, out_dir=tmp_path / "empty")
    assert _dump(tmp_path / "empty") == _dump(tmp_path / "r")


def test_kill_minus_nine_of_mas_run_then_resume_equals_an_uninterrupted_run(tmp_path: Path, write_scenario) -> None:
    import random
    import subprocess
    import sys

    from tests import faults

    file = write_scenario(SLOW_TALK)
    killed = tmp_path / "killed"
    command = [sys.executable, "-m", "mas.cli", "run", str(file), "--no-progress", "--out", str(killed)]
    resume = [sys.executable, "-m", "mas.cli", "run", "--resume", str(killed), "--no-progress"]
    draw = random.Random(17)  # kill points: after a seeded number of episodes and a seeded delay
    first = faults.kill_at(command, killed / "run.sqlite", "episodes", draw.randint(1, 2), draw.uniform(0, 0.15))
    second = faults.kill_at(resume, killed / "run.sqlite", "episodes", first + draw.randint(1, 2), draw.uniform(0, 0.15))
    assert 1 <= first < second < 8, f"{first}, then {second} of 8 episodes stored when killed"
    result = subprocess.run(resume, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "8 episodes, seed 3" in result.stdout
    run(mas.scenario.parse_scenario(SLOW_TALK), episodes=8, seed=3, out_dir=tmp_path / "whole")
    after = _dump(killed)
    assert [row[0] for row in after["episodes"]] == list(range(8))  # nothing lost, nothing twice
    assert after == _dump(tmp_path / "whole")


def test_a_run_directory_named_like_a_uri_query_is_read_back(tmp_path: Path, monkeypatch, capsys) -> None:
    # '?', '#', '%20' and a space in a name: an unescaped file: URI opened (and created)
    # 'runs/we' instead of the run, so compare failed and left a stray empty file
    from mas.agents.llm.wrappers import _recorded_calls
    from mas.cli import main

    monkeypatch.chdir(tmp_path)
    name = "runs/we?ird#na%20me x"
    assert main(["run", "prisoners_dilemma", "--episodes", "2", "--seed", "0", "--out", name, "--no-progress"]) == 0
    assert mas.load_run(name).episodes["episode"].nunique() == 2
    assert RunStore.open(Path(name)).episodes_done() == [0, 1]
    with pytest.raises(StoreError, match="recorded no LLM calls"):  # read, and found a scripted run
        _recorded_calls(Path(name))
    other = "runs/#b?c=%41"
    assert main(["run", "prisoners_dilemma", "--episodes", "3", "--out", other, "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["compare", name, other]) == 0
    table = capsys.readouterr().out
    assert "episodes" in table and " 2 " in table and " 3 " in table
    assert main(["report", name]) == 0 and (tmp_path / name / "report.html").is_file()
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["#b?c=%41", "we?ird#na%20me x"]  # no stray file
