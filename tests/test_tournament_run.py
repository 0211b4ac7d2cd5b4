"""Tournaments end to end: every backend gives identical results for a seed, a tournament
killed with SIGKILL resumes to exactly the results of an uninterrupted run, the store and
its loader hold what was played, and the CLI prints the ranking."""

from __future__ import annotations

import copy
import os
import random
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from mas.analysis.tournament_load import load_tournament_run
from mas.errors import StoreError
from mas.rundir import locked
from mas.tournament import TournamentError, load_tournament, parse_tournament, resume_tournament, run_tournament
from mas.tournament.schedule import build_schedule
from tests import faults
from tests.conftest import PD

CLASSIC = Path("scenarios/tournaments/axelrod_classic.yaml")

# random entrants, so that a wrong seed anywhere shows up as different results
MIXED = {
    "name": "mixed",
    "scenario": copy.deepcopy(PD),
    "rounds": 30,
    "repetitions": 2,
    "self_play": True,
    "seed": 5,
    "entrants": [
        {"name": "tft", "policy": "tit_for_tat"},
        {"name": "joss", "policy": "joss"},
        {"name": "coin", "policy": {"type": "random", "p": 0.5}},
        {"name": "gtft", "policy": {"type": "generous_tit_for_tat", "generosity": 0.3}},
        {"name": "alld", "policy": "always_defect"},
    ],
}


def dump(run_dir: Path) -> dict[str, list]:
    """Every stored row that a run's results consist of, in a canonical order."""
    db = sqlite3.connect(run_dir / "tournament.sqlite")
    try:
        return {
            table: db.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()
            for table, order in {
                "matches": "match", "scores": "match, seat", "payoff": "row, col", "ratings": "entrant",
                "ecology": "generation, entrant", "entrants": "entrant",
            }.items()
        }
    finally:
        db.close()


def test_serial_and_process_backends_give_identical_stores(tmp_path: Path) -> None:
    tournament = parse_tournament(MIXED)
    serial = run_tournament(tournament, tmp_path / "serial", backend="serial")
    parallel = run_tournament(tournament, tmp_path / "process", backend="process", workers=2)
    assert serial.matches == parallel.matches == 30
    assert dump(tmp_path / "serial") == dump(tmp_path / "process")
    other_seed = run_tournament(tournament.with_seed(6), tmp_path / "seed6", backend="serial")
    assert dump(tmp_path / "seed6")["scores"] != dump(tmp_path / "serial")["scores"]
    assert other_seed.matches == 30


def test_ray_backend_gives_the_same_results_as_processes(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    tournament = parse_tournament({**MIXED, "repetitions": 1})
    run_tournament(tournament, tmp_path / "process", backend="process", workers=2)
    run_tournament(tournament, tmp_path / "ray", backend="ray", workers=2)  # a local Ray instance, shut down after
    assert dump(tmp_path / "ray") == dump(tmp_path / "process")


def test_known_results_are_stored_and_loaded(tmp_path: Path) -> None:
    data = {**MIXED, "rounds": 200, "repetitions": 1, "format": {"kind": "ecological", "generations": 50},
            "entrants": [{"name": "tft", "policy": "tit_for_tat"}, {"name": "alld", "policy": "always_defect"}, {"name": "allc", "policy": "always_cooperate"}]}
    results = run_tournament(parse_tournament(data), tmp_path / "t", backend="serial")
    run = load_tournament_run(tmp_path / "t")
    # textbook 200-round scores (test_classic_strategies derives them)
    assert run.payoff.loc[["tft", "alld", "allc"], ["tft", "alld", "allc"]].to_numpy().tolist() == [
        [600, 199, 600], [204, 200, 1000], [600, 0, 600]]
    assert np.array_equal(results.payoff, run.payoff.to_numpy())
    assert len(run.matches) == 6 and set(run.matches["entrants"]) == {
        ("tft", "tft"), ("tft", "alld"), ("tft", "allc"), ("alld", "alld"), ("alld", "allc"), ("allc", "allc")}
    tft_vs_alld = run.scores[(run.scores["entrant"] == "tft") & (run.scores["opponents"] == ("alld",))].iloc[0]
    assert tft_vs_alld["score"] == 199 and tft_vs_alld["per_round"] == 199 / 200
    actions = run.round_actions(int(tft_vs_alld["match"]))
    tft_moves = "".join(actions[actions["entrant"] == "tft"]["action_name"])
    assert tft_moves == "C" + "D" * 199
    # means per match (self-play counts twice): tft (600 + 600 + 199 + 600) / 4 = 499.75,
    # allc (600 + 600 + 600 + 0) / 4 = 450, alld (200 + 200 + 204 + 1000) / 4 = 401
    assert run.ratings["name"].tolist() == ["tft", "allc", "alld"]
    assert run.ratings["mean"].tolist() == pytest.approx([499.75, 450, 401]) and (run.ratings["matches"] == 4).all()
    assert run.ecology.shape == (51, 3) and np.allclose(run.ecology.sum(axis=1), 1)
    assert run.meta["tournament"]["scenario"]["game"]["payoffs"]["D,C"] == [5, 0]  # resolved file stored


def test_group_and_asymmetric_tournaments(tmp_path: Path) -> None:
    entrants = [{"name": f"e{i}", "policy": "free_rider" if i % 2 else "conditional_cooperator"} for i in range(5)]
    base = {"name": "pg", "game": {"kind": "public_goods"}, "rounds": 4, "agents": [{"id": "p", "count": 3, "policy": "free_rider"}]}
    run_tournament(parse_tournament({"name": "g", "scenario": base, "entrants": entrants}), tmp_path / "g", backend="serial")
    groups = load_tournament_run(tmp_path / "g")
    assert (groups.ratings["matches"] == 3).all()  # balanced: 5 x 3 / 3 = 5 groups of three
    free_riders = groups.ratings[groups.ratings["name"].isin(["e1", "e3"])]["mean"]
    cooperators = groups.ratings[groups.ratings["name"].isin(["e0", "e2", "e4"])]["mean"]
    assert free_riders.min() > cooperators.max()  # free riding pays against conditional cooperators

    ultimatum = {"name": "u", "scenario": "ultimatum", "entrants": [
        {"name": "fair", "policy": "fair_bargainer"}, {"name": "greedy", "policy": {"type": "greedy_bargainer", "offer": 1}}]}
    run_tournament(parse_tournament(ultimatum), tmp_path / "u", backend="serial")
    seats = load_tournament_run(tmp_path / "u").matches["entrants"].tolist()
    assert sorted(seats) == [("fair", "greedy"), ("greedy", "fair")]  # each plays both sides


def test_long_ecologies_are_stored_thinned_to_1001_generations() -> None:
    from mas.tournament.run import _stored_generations

    assert _stored_generations(40).tolist() == list(range(40))
    kept = _stored_generations(100_001)
    assert len(kept) == 1001 and kept[0] == 0 and kept[-1] == 100_000 and (np.diff(kept) == 100).all()


def committed(run_dir: Path) -> int:
    return faults.committed(run_dir / "tournament.sqlite", "matches")


def test_kill_minus_nine_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    """The CLI is killed (SIGKILL, its workers left to notice) at a random point, then
    again at a random point of its resume; the second resume gives exactly the store of an
    uninterrupted run, and no worker, forkserver or resource tracker outlives a kill."""
    classic = yaml.safe_load(CLASSIC.read_text())
    # long matches: batched play is fast, and a kill must find the run still playing
    classic.update(repetitions=2, rounds=1000, scenario=str(Path("scenarios/prisoners_dilemma.yaml").resolve()))
    file = tmp_path / "classic.yaml"
    file.write_text(yaml.safe_dump(classic))
    total = len(build_schedule(load_tournament(file)))
    killed = tmp_path / "killed"
    command = [sys.executable, "-m", "mas.cli", "tournament", str(file), "--workers", "2", "--no-progress", "--out", str(killed)]
    resume = [*command[:-2], "--resume", str(killed)]
    draw = random.Random(13)  # kill points: after a seeded number of matches and a seeded delay
    first = faults.kill_at(command, killed / "tournament.sqlite", "matches", draw.randrange(5, total // 3), draw.uniform(0, 0.2))
    second = faults.kill_at(resume, killed / "tournament.sqlite", "matches", first + draw.randrange(5, 20), draw.uniform(0, 0.2))
    assert 5 <= first < second < total, f"{first}, then {second} of {total} matches committed when killed"

    resumed = subprocess.run(resume, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"({total} matches, {total - second} played now)" in " ".join(resumed.stdout.split())

    run_tournament(load_tournament(file), tmp_path / "whole", backend="serial")
    after, whole = dump(killed), dump(tmp_path / "whole")
    assert [row[0] for row in after["matches"]] == list(range(total))  # nothing lost, nothing twice
    assert after == whole


def test_a_tournament_directory_in_use_is_refused_in_one_line(tmp_path: Path) -> None:
    # two resumes of one directory at once used to play the same matches twice and end in
    # an IntegrityError; the lock file's holder is this process here
    tournament = parse_tournament({**MIXED, "repetitions": 1})
    run_tournament(tournament, tmp_path / "t", backend="serial")
    with locked(tmp_path / "t"):
        with pytest.raises(StoreError, match=f"run directory {tmp_path / 't'} is in use by pid {os.getpid()}"):
            resume_tournament(tmp_path / "t", backend="serial")
        with pytest.raises(StoreError, match="is in use by pid"):
            run_tournament(tournament, tmp_path / "t", backend="serial")
        result = subprocess.run([sys.executable, "-m", "mas.cli", "tournament", "--resume", str(tmp_path / "t"), "--no-progress"],
                                capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and result.stderr == f"mas: error: run directory {tmp_path / 't'} is in use by pid {os.getpid()}; wait for it to finish\n"
    assert resume_tournament(tmp_path / "t", backend="serial").played_now == 0  # free again once released


def test_an_empty_tournament_store_does_not_block_its_directory(tmp_path: Path) -> None:
    # what a run killed (or failed) before its first match leaves; one with matches stays refused
    from mas.tournament.store import TournamentStore

    tournament = parse_tournament({**MIXED, "repetitions": 1})
    TournamentStore.create(tmp_path / "t", {"entrants": []}, 0, {}).close()
    assert run_tournament(tournament, tmp_path / "t", backend="serial").played_now == 15
    with pytest.raises(StoreError, match="already holds a tournament"):
        run_tournament(tournament, tmp_path / "t", backend="serial")
    assert committed(tmp_path / "t") == 15


def test_resume_checks_the_file_and_seed(tmp_path: Path) -> None:
    tournament = parse_tournament({**MIXED, "repetitions": 1})
    run_tournament(tournament, tmp_path / "t", backend="serial")
    again = resume_tournament(tmp_path / "t", tournament, backend="serial")
    assert again.played_now == 0 and again.matches == 15
    with pytest.raises(TournamentError, match=r"holds a different tournament \(rounds differs"):
        resume_tournament(tmp_path / "t", parse_tournament({**MIXED, "repetitions": 1, "rounds": 31}))
    with pytest.raises(TournamentError, match="was started with seed 5, not 9"):
        resume_tournament(tmp_path / "t", seed=9)
    with pytest.raises(StoreError, match="already holds a tournament"):
        run_tournament(tournament, tmp_path / "t")


def test_a_failing_match_keeps_the_finished_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mas.errors import MasError
    from mas.tournament.play import MatchPlayer

    original = MatchPlayer.play

    def failing(self: MatchPlayer, match):  # a dead model server, say, at the eighth match
        if match.index == 7:
            raise MasError("model server at 127.0.0.1:1 refused the connection")
        return original(self, match)

    monkeypatch.setattr(MatchPlayer, "play", failing)
    tournament = parse_tournament({**MIXED, "repetitions": 1})
    # a failing match comes from a model-holding entrant, and those are played match by match
    monkeypatch.setattr("mas.tournament.executors.batchable", lambda tournament: False)
    monkeypatch.setattr("mas.tournament.play.batchable", lambda tournament: False)
    with pytest.raises(MasError, match="refused"):
        run_tournament(tournament, tmp_path / "t", backend="serial")
    assert committed(tmp_path / "t") == 7
    monkeypatch.setattr(MatchPlayer, "play", original)
    monkeypatch.undo()
    assert resume_tournament(tmp_path / "t", backend="serial").played_now == 8


def test_a_dead_model_server_is_one_line_and_stores_no_half_played_block(tmp_path: Path) -> None:
    # a real refused connection in the worker processes (nothing listens on port 9)
    dead = {"type": "llm", "backend": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m", "max_retries": 0, "timeout": 2}}
    data = {**MIXED, "repetitions": 1, "self_play": False, "entrants": [
        {"name": "tft", "policy": "tit_for_tat"}, {"name": "alld", "policy": "always_defect"}, {"name": "llm", "policy": dead}]}
    file = tmp_path / "dead.yaml"
    file.write_text(yaml.safe_dump(data))
    command = [sys.executable, "-m", "mas.cli", "tournament", str(file), "--workers", "2", "--no-progress", "--out", str(tmp_path / "r")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("mas: error: ") and "127.0.0.1:9" in line
    db = sqlite3.connect(tmp_path / "r" / "tournament.sqlite")
    stored = db.execute("SELECT match FROM matches").fetchall()
    db.close()
    assert stored == []  # the three matches play as one block (an LLM entrant's 32), lost with the model


def test_cli_prints_progress_and_the_ranking(tmp_path: Path) -> None:
    file = tmp_path / "mixed.yaml"
    file.write_text(yaml.safe_dump({**MIXED, "repetitions": 1}))
    env = {**os.environ, "COLUMNS": "160"}
    command = [sys.executable, "-m", "mas.cli", "tournament", str(file), "--backend", "serial", "--seed", "8", "--out", str(tmp_path / "r")]
    result = subprocess.run(command,
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "15/15" in result.stderr and "matches/s" in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "mixed: 5 entrants, 15 matches (1 repetition, 30 rounds, fixed seats), seed 8"
    table = [line.split() for line in lines if line.split() and line.split()[0].isdigit()]
    assert [row[0] for row in table] == ["1", "2", "3", "4", "5"] and {row[1] for row in table} == {"tft", "joss", "coin", "gtft", "alld"}
    stored = load_tournament_run(tmp_path / "r")
    assert stored.meta["seed"] == "8" and stored.ratings["name"].tolist() == [row[1] for row in table]


def test_a_ranking_that_fails_leaves_no_half_written_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the summary's other tables are written while the ranking is still being computed (its
    # bootstrap on the workers), in the same transaction: a failing ranking leaves none of it
    from mas.tournament import run as run_module

    tournament = parse_tournament({**MIXED, "repetitions": 1})
    finished = run_tournament(tournament, tmp_path / "t", backend="serial")
    before = dump(tmp_path / "t")

    def failing(*args, **kwargs):
        raise MemoryError("the bootstrap ran out of memory")

    monkeypatch.setattr(run_module, "rate", failing)
    with pytest.raises(MemoryError):
        resume_tournament(tmp_path / "t", backend="serial")
    assert dump(tmp_path / "t") == before  # payoff and ratings as the finished run left them
    monkeypatch.undo()
    assert [r.entrant for r in resume_tournament(tmp_path / "t", backend="serial").ratings] == [r.entrant for r in finished.ratings]
