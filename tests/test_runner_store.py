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
from tests.conftest import FAST_BUILTIN


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
