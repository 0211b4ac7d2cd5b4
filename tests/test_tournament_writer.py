"""The chunk writer stores finished chunks on its own thread: in order, every chunk put
is written before the block ends (also when the caller fails), and a failed write reaches
the caller as that error."""

from __future__ import annotations

import copy
import sqlite3
import threading
from pathlib import Path

import pytest

from mas.tournament import load_tournament, parse_tournament
from mas.tournament.play import MatchBatch, MatchPlayer
from mas.tournament.schedule import build_schedule
from mas.tournament.store import TournamentStore
from mas.tournament.writer import ChunkWriter
from tests.test_tournament_run import CLASSIC


@pytest.fixture(scope="module")
def played() -> tuple[object, MatchBatch]:
    data = copy.deepcopy(load_tournament(CLASSIC).to_dict())
    data.update(rounds=20, repetitions=2)  # 156 matches
    tournament = parse_tournament(data)
    return tournament, MatchPlayer(tournament).play_many(build_schedule(tournament))


def new_store(path: Path, tournament) -> TournamentStore:
    return TournamentStore.create(path, tournament.to_dict(), tournament.spec.seed, {})


def chunks(batch: MatchBatch, sizes: list[int]) -> list[MatchBatch]:
    out, start = [], 0
    for size in sizes:
        out.append(MatchBatch.of(list(batch)[start : start + size]))
        start += size
    return out


def rows(path: Path) -> tuple[list[tuple], list[tuple]]:
    db = sqlite3.connect(path / "tournament.sqlite")
    try:
        return (db.execute("SELECT * FROM matches ORDER BY match").fetchall(),
                db.execute("SELECT * FROM scores ORDER BY match, seat").fetchall())
    finally:
        db.close()


def test_chunks_are_stored_in_order_as_a_direct_write_stores_them(tmp_path: Path, played) -> None:
    tournament, batch = played
    with new_store(tmp_path / "direct", tournament) as store:
        store.write_matches(batch)
    written: list[tuple[str, int]] = []
    with new_store(tmp_path / "threaded", tournament) as store:
        with ChunkWriter(store, lambda n: written.append((threading.current_thread().name, n)), depth=1) as writer:
            for chunk in chunks(batch, [50, 6, 100]):
                writer.put(chunk)
    assert rows(tmp_path / "threaded") == rows(tmp_path / "direct") and len(rows(tmp_path / "direct")[0]) == 156
    assert written == [("mas-chunk-writer", 50), ("mas-chunk-writer", 6), ("mas-chunk-writer", 100)]


def test_a_failing_caller_still_gets_every_chunk_it_put_stored(tmp_path: Path, played) -> None:
    tournament, batch = played
    first, second, _ = chunks(batch, [40, 40, 76])
    with new_store(tmp_path / "t", tournament) as store:
        with pytest.raises(KeyboardInterrupt):
            with ChunkWriter(store, depth=2) as writer:
                writer.put(first)
                writer.put(second)
                raise KeyboardInterrupt  # Ctrl-C, or a worker that died
        assert store.done_matches() == set(first.match.tolist()) | set(second.match.tolist())


def test_a_failed_write_is_raised_to_the_caller_and_drops_the_chunks_after_it(tmp_path: Path, played) -> None:
    tournament, batch = played
    first, second, third = chunks(batch, [40, 40, 76])
    with new_store(tmp_path / "t", tournament) as store:
        with pytest.raises(sqlite3.IntegrityError):  # the same matches twice: the store refuses the second
            with ChunkWriter(store, depth=1) as writer:
                writer.put(first)
                writer.put(first)
                writer.put(second)  # may be queued before the failure shows: never written after it
        assert store.done_matches() == set(first.match.tolist())
        puts = 0
        with pytest.raises(sqlite3.IntegrityError):  # put itself raises once the failure is known
            with ChunkWriter(store, depth=1) as writer:
                writer.put(first)
                for puts in range(1, 10_000):
                    writer.put(third)  # queued behind the failing chunk: dropped, then refused
        assert 0 < puts < 9_999  # raised by a put, not by the block's end
        assert store.done_matches() == set(first.match.tolist())


def test_put_waits_while_depth_chunks_wait_to_be_written(tmp_path: Path, played) -> None:
    tournament, batch = played
    parts = chunks(batch, [30, 30, 30, 66])
    release = threading.Event()
    with new_store(tmp_path / "t", tournament) as store:
        with ChunkWriter(store, lambda n: release.wait(), depth=1) as writer:
            writer.put(parts[0])  # written, then the writer waits in on_written
            writer.put(parts[1])  # waits in the queue: depth 1 is full
            blocked = threading.Thread(target=writer.put, args=(parts[2],))
            blocked.start()
            blocked.join(timeout=0.3)
            assert blocked.is_alive()  # held back until the writer moves on
            release.set()
            blocked.join()
            writer.put(parts[3])
        assert len(store.done_matches()) == 156


def test_depth_below_one_is_refused(tmp_path: Path, played) -> None:
    tournament, _ = played
    with new_store(tmp_path / "t", tournament) as store, pytest.raises(ValueError, match="depth"):
        ChunkWriter(store, depth=0)
