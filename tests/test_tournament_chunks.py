"""Batched tournaments go out in chunks (one slice per worker) and stream into the store
a transaction at a time: the stored tournament is the same however it is cut."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mas.tournament import load_tournament, parse_tournament, run_tournament
from mas.tournament import executors, store
from mas.tournament.executors import chunk_sizes
from mas.tournament.schedule import build_schedule
from tests.test_tournament_run import CLASSIC, dump


def small_classic():
    data = copy.deepcopy(load_tournament(CLASSIC).to_dict())
    data.update(rounds=30, repetitions=2)  # 156 matches
    return parse_tournament(data)


@pytest.mark.parametrize("total, workers, rounds", [(7260, 1, 200), (7260, 2, 200), (20100, 2, 200), (20100, 0, 200), (156, 2, 200),
                                                    (156, 2, 1000), (390, 0, 30_000), (1100, 3, 200), (1, 4, 200), (3, 4, 1), (50000, 4, 200)])
def test_chunks_are_slices_a_multiple_of_the_workers_the_last_ones_staggered(total: int, workers: int, rounds: int) -> None:
    sizes = chunk_sizes(total, workers, rounds=rounds)
    assert sum(sizes) == total and min(sizes) > 0
    assert max(sizes) <= executors.MAX_COPIES
    per = min(max(workers, 1), total)
    share = -(-total // per)
    if workers and share <= executors.FINE_BELOW and rounds >= executors.FINE_ROUNDS:  # small, long matches: fine chunks
        assert len(sizes) > per and max(sizes) - min(sizes) <= 1
    else:  # one slice a worker unless it passes MAX_COPIES
        assert len(sizes) % per == 0
        assert len(sizes) >= per * -(-total // (per * executors.MAX_COPIES))
        head, last = sizes[: len(sizes) - per], sizes[len(sizes) - per :]
        assert all(abs(s - sizes[0]) <= 1 for s in head + last[:1])
        # each last slice STAGGER larger than the one before: the workers finish one after another
        if min(sizes) > 100:  # whole numbers make small slices' ratios coarse
            assert all(abs(b / a - (1 + executors.STAGGER * (k + 1)) / (1 + executors.STAGGER * k)) < 0.01
                       for k, (a, b) in enumerate(zip(last, last[1:])))


def test_chunks_stay_within_the_batch_limit_given() -> None:
    sizes = chunk_sizes(36_300, 2, 4096)
    assert sum(sizes) == 36_300 and max(sizes) <= 4096 and len(sizes) == 10
    assert chunk_sizes(36_300, 2) == chunk_sizes(36_300, 2, executors.MAX_COPIES) and len(chunk_sizes(36_300, 2)) == 2
    assert len(chunk_sizes(36_300, 1, 20_971)) == 2 and len(chunk_sizes(100_000, 2, 20_971)) == 6


def test_long_matches_play_in_smaller_batches() -> None:
    from mas.tournament.batch import MAX_ACTION_CELLS, max_copies

    data = copy.deepcopy(load_tournament(CLASSIC).to_dict())
    assert max_copies(parse_tournament(data)) == MAX_ACTION_CELLS // 400 < executors.MAX_COPIES  # 200 rounds of 2 seats
    assert max_copies(parse_tournament({**data, "rounds": 20})) == executors.MAX_COPIES  # short matches: the copy limit
    for rounds, most in ((10_000, MAX_ACTION_CELLS // 20_000), ({"continuation": 0.99, "max": 5000}, MAX_ACTION_CELLS // 10_000)):
        long = parse_tournament({**data, "rounds": rounds})
        assert max_copies(long) == most
        assert max(chunk_sizes(5000, 2, max_copies(long))) <= most


def test_streamed_in_small_chunks_and_transactions_the_store_equals_one_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tournament = small_classic()
    run_tournament(tournament, tmp_path / "whole", backend="serial")  # 156 matches: one batch, two transactions
    played: list[int] = []
    play_many = executors.MatchPlayer.play_many

    def counting(self, matches):
        played.append(len(matches))
        return play_many(self, matches)

    monkeypatch.setattr(executors, "max_copies", lambda tournament: 20)  # chunks of at most 20 matches
    monkeypatch.setattr(store, "WRITE_BATCH", 7)  # committed 7 at a time
    monkeypatch.setattr(executors.MatchPlayer, "play_many", counting)
    run_tournament(tournament, tmp_path / "chunked", backend="serial")
    assert len(played) == 8 and max(played) <= 20 and sum(played) == 156
    assert dump(tmp_path / "chunked") == dump(tmp_path / "whole")


def test_two_workers_store_what_one_batch_stores(tmp_path: Path) -> None:
    tournament = small_classic()
    run_tournament(tournament, tmp_path / "serial", backend="serial")
    run_tournament(tournament, tmp_path / "two", backend="process", workers=2)
    assert dump(tmp_path / "two") == dump(tmp_path / "serial")


def test_the_heap_is_frozen_while_results_stream_in_and_given_back_after(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    frozen_while_writing: list[int] = []
    write_matches = store.TournamentStore.write_matches

    def watching(self, results):
        frozen_while_writing.append(gc.get_freeze_count())
        return write_matches(self, results)

    monkeypatch.setattr(store.TournamentStore, "write_matches", watching)
    assert gc.get_freeze_count() == 0
    run_tournament(small_classic(), tmp_path / "run", backend="serial")
    assert frozen_while_writing and min(frozen_while_writing) > 0  # the objects alive before were left out
    assert gc.get_freeze_count() == 0  # and handed back to the collector after
    gc.freeze()  # a caller's own frozen heap is left as the caller made it
    try:
        before = gc.get_freeze_count()
        run_tournament(small_classic(), tmp_path / "again", backend="serial")
        assert gc.get_freeze_count() >= before - 100  # still frozen (less the few objects freed since)
    finally:
        gc.unfreeze()


@pytest.mark.parametrize("names", [["C", "D"], ["give", "keep", "punish"]])
def test_a_chunks_actions_encode_copy_by_copy_as_each_alone(names: list[str]) -> None:
    from mas.tournament.play import ActionCodec

    codec = ActionCodec.for_game([names, names])
    generator = np.random.default_rng(0)
    actions = generator.integers(0, len(names), size=(9, 5, 2))  # [rounds, copies, seats]
    rounds = np.array([9, 3, 0, 9, 5])  # copies that ended early: the rest is padding
    encoded = codec.encode_copies(actions, rounds)
    assert encoded == [codec.encode_array(actions[: rounds[c], c, s]) for c in range(5) for s in range(2)]
    assert [codec.decode(text) for text in encoded[4:6]] == [[], []]  # copy 2, both seats
    assert codec.decode(encoded[1]) == actions[:9, 0, 1].tolist()


def test_a_chunks_columns_give_back_the_results_they_were_made_of() -> None:
    from mas.tournament.play import MatchBatch, MatchPlayer
    from mas.tournament.schedule import build_schedule

    tournament = small_classic()
    player = MatchPlayer(tournament)
    results = [player.play(m) for m in build_schedule(tournament)[:12]]
    batch = MatchBatch.of(results)
    assert len(batch) == 12 and batch.scores.shape == (12, 2) and len(batch.actions) == 24
    assert list(batch) == results
    assert list(pickle.loads(pickle.dumps(batch))) == results  # what a worker sends back
    undefined = dataclasses.replace(results[0], cooperation=(None, 0.5))  # a game without cooperation: NULL, not NaN
    assert list(MatchBatch.of([undefined]))[0].cooperation == (None, 0.5)
    assert len(player.play_many([])) == 0 and list(MatchBatch.of([])) == []  # nothing left to play (a resumed run)


def test_the_scores_are_indexed_by_entrant_once_the_ranking_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    def indexes(out: Path) -> set[str]:
        with sqlite3.connect(out / "tournament.sqlite") as db:
            return {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'scores'")}

    seen_while_playing: list[set[str]] = []
    write_matches = store.TournamentStore.write_matches

    def watching(self, results):
        write_matches(self, results)
        seen_while_playing.append(indexes(tmp_path / "run"))

    monkeypatch.setattr(store.TournamentStore, "write_matches", watching)
    run_tournament(small_classic(), tmp_path / "run", backend="serial")
    assert seen_while_playing and all("scores_by_entrant" not in names for names in seen_while_playing)  # kept up to date by nobody
    assert "scores_by_entrant" in indexes(tmp_path / "run")
    with sqlite3.connect(tmp_path / "run" / "tournament.sqlite") as db:
        plan = " ".join(row[-1] for row in db.execute("EXPLAIN QUERY PLAN SELECT score FROM scores WHERE entrant = 3"))
    assert "scores_by_entrant" in plan


@settings(max_examples=200, deadline=None)
@given(total=st.integers(0, 60_000), workers=st.integers(0, 64), most=st.integers(1, 20_000), rounds=st.integers(1, 100_000))
def test_chunk_sizes_cover_every_match_once_within_the_limit(total: int, workers: int, most: int, rounds: int) -> None:
    sizes = chunk_sizes(total, workers, most, rounds)
    assert sum(sizes) == total and all(0 < s <= most for s in sizes)
    if total:
        busy = min(max(workers, 1), total)
        assert len(sizes) % busy == 0 or len(sizes) > busy  # every worker gets a share


def _pid_after(seconds: float) -> int:
    import os
    import time

    time.sleep(seconds)
    return os.getpid()


def test_executor_map_gives_each_call_to_the_next_free_worker() -> None:
    # a worker held up (here by a long call; in a tournament by the store's writer) takes
    # no more calls while the other is free: the other does every quick call after it
    with executors.Executor(small_classic().to_dict(), "process", workers=2) as executor:
        executor.map(_pid_after, [0.0, 0.0])  # both workers up
        pids = list(executor.map(_pid_after, [2.0] + [0.0] * 7))
    assert len(set(pids)) == 2 and pids[0] not in pids[1:]


def test_llm_entrants_play_in_the_same_fixed_blocks_on_any_workers_and_on_resume() -> None:
    # a packed model call's numbers depend on what is packed together: each match always
    # plays in the block of 32 schedule places it belongs to
    data = copy.deepcopy(load_tournament(CLASSIC).to_dict())
    data.update(repetitions=3, entrants=data["entrants"][:4] + [{"name": "llm", "policy": {
        "type": "llm", "backend": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m"}}}])
    tournament = parse_tournament(data)
    schedule = build_schedule(tournament)  # 5 entrants, self-play, 3 repetitions: 45 matches
    blocks = {w: [chunk.index.tolist() for chunk in executors._chunks(tournament.to_dict(), schedule, w)] for w in (0, 1, 2, 3)}
    assert blocks[0] == blocks[1] == blocks[2] == blocks[3] == [list(range(32)), list(range(32, 45))]
    done = set(range(0, 45, 3)) | set(range(32, 45))  # a resumed run: these are stored
    left = [chunk.index.tolist() for chunk in executors._chunks(tournament.to_dict(), schedule.without(done), 2)]
    assert left == [[m for m in range(32) if m % 3]]
