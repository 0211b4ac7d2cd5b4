"""A disk that refuses writes (full, or a file size limit) is a one-line error, and the
store keeps every episode or match written before it, complete."""

from __future__ import annotations

import os
import resource
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import mas
from mas.runner import run
from mas.errors import StoreError
from mas.records import EpisodeRecord, StateRecord
from mas.store import RunStore
from mas.tournament.store import TournamentStore

pytestmark = pytest.mark.skipif(not hasattr(resource, "RLIMIT_FSIZE"), reason="needs RLIMIT_FSIZE (POSIX)")


def mas_with_file_limit(limit: int, *args: str) -> subprocess.CompletedProcess:
    """`mas ARGS` in a process whose files cannot grow past `limit` bytes: writes beyond
    it fail with EFBIG (SIGXFSZ ignored), as on a full disk."""

    def limit_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", "mas.cli", *args], capture_output=True, text=True,
                          preexec_fn=limit_files, env=env, timeout=120)


def assert_disk_full_error(result: subprocess.CompletedProcess, kept: str) -> None:
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "the disk is full" in lines[0] and kept in lines[0], lines[0]


def test_a_run_that_fills_the_disk_keeps_its_complete_episodes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = mas_with_file_limit(400_000, "run", "prisoners_dilemma", "--episodes", "5000", "--out", str(out), "--no-progress")
    assert_disk_full_error(result, "every episode already written is kept, the episode in flight is lost")
    with RunStore.open(out) as store:
        assert store.query("PRAGMA integrity_check") == [("ok",)]
        done = store.episodes_done()
        assert 0 < len(done) < 5000 and done == list(range(len(done)))
        # every stored episode is whole (10 rounds x 2 agents), and no row of a lost one remains
        per_episode = store.query("SELECT episode, COUNT(*) FROM steps GROUP BY episode")
        assert per_episode == [(e, 20) for e in done]
        assert store.query("SELECT COUNT(DISTINCT episode) FROM returns WHERE episode NOT IN (SELECT episode FROM episodes)") == [(0,)]
        assert store.query("SELECT COUNT(*) FROM states WHERE episode NOT IN (SELECT episode FROM episodes)") == [(0,)]


def test_a_store_the_disk_cannot_hold_at_all_is_removed_and_does_not_block_the_out_dir(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = mas_with_file_limit(20_000, "run", "prisoners_dilemma", "--episodes", "2", "--out", str(out), "--no-progress")
    assert_disk_full_error(result, "nothing was stored")
    assert not out.exists() or list(out.iterdir()) == []  # the run made the directory: it is gone again
    run(mas.load_scenario("prisoners_dilemma"), 2, 0, out_dir=out)  # with room, the same --out works
    assert RunStore.open(out).episodes_done() == [0, 1]


def test_a_tournament_that_fills_the_disk_keeps_its_finished_matches(tmp_path: Path) -> None:
    # the classic roster at 30 repetitions: 2,340 matches, committed `WRITE_BATCH` at a time
    text = Path("scenarios/tournaments/axelrod_classic.yaml").read_text()
    text = text.replace("scenario: ../prisoners_dilemma.yaml", f"scenario: {Path('scenarios/prisoners_dilemma.yaml').resolve()}")
    (tmp_path / "big.yaml").write_text(text.replace("\nrepetitions: 5\n", "\nrepetitions: 30\n"))
    out = tmp_path / "t"
    result = mas_with_file_limit(1_000_000, "tournament", str(tmp_path / "big.yaml"), "--backend", "serial",
                                 "--out", str(out), "--no-progress")
    assert_disk_full_error(result, "every match already written is kept, the matches in flight are lost")
    with TournamentStore.open(out) as store:
        matches = store.done_matches()
        assert matches
        seats = dict(store.query("SELECT match, COUNT(*) FROM scores GROUP BY match"))
        assert set(seats) == matches and set(seats.values()) == {2}
    assert sqlite3.connect(out / "tournament.sqlite").execute("PRAGMA integrity_check").fetchone() == ("ok",)



def test_sqlite_full_is_the_same_one_line_error(tmp_path: Path) -> None:
    # SQLITE_FULL ("database or disk is full", what ENOSPC becomes), made real by a page limit
    store = RunStore.create(tmp_path / "r", {"name": "x"}, 0, [("a", {"type": "random"}, "")])
    store.write_episode(EpisodeRecord(episode=0, seed=0, returns={"a": 1.0}))
    pages = store.query("PRAGMA page_count")[0][0]
    store.query(f"PRAGMA max_page_count = {pages}")
    big = EpisodeRecord(episode=1, seed=0, returns={"a": 1.0}, state_records=tuple(StateRecord(1, s, s, {"x": "x" * 1000}) for s in range(100)))
    with pytest.raises(StoreError, match="disk is full.*every episode already written is kept") as error:
        store.write_episode(big)
    assert "database or disk is full" in str(error.value) and "\n" not in str(error.value)
    store.close()
    assert RunStore.open(tmp_path / "r").episodes_done() == [0]


def test_training_that_fills_the_disk_is_one_line_and_leaves_no_partial_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "train"
    result = mas_with_file_limit(3_000, "train", "prisoners_dilemma", "--algo", "iql", "--steps", "20000",
                                 "--out", str(out), "--no-progress")
    assert_disk_full_error(result, "everything written before it is kept")
    assert not list(out.glob("*.tmp"))  # a checkpoint is whole or absent, never a torn file
    header = (out / "curves.csv").read_text().splitlines()[0]
    assert header.startswith("step,seed,wall_s")
