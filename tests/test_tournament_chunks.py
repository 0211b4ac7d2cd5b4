"""Batched tournaments go out in chunks (one slice per worker) and stream into the store
a transaction at a time: the stored tournament is the same however it is cut."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from mas.tournament import load_tournament, parse_tournament, run_tournament
from mas.tournament import executors, store
from mas.tournament.executors import chunk_sizes
from tests.test_tournament_run import CLASSIC, dump


def small_classic():
    data = copy.deepcopy(load_tournament(CLASSIC).to_dict())
    data.update(rounds=30, repetitions=2)  # 156 matches
    return parse_tournament(data)


@pytest.mark.parametrize("total, workers", [(7260, 1), (7260, 2), (20100, 2), (20100, 0), (156, 2), (1100, 3), (1, 4), (50000, 4)])
def test_chunks_are_slices_a_multiple_of_the_workers_the_last_ones_staggered(total: int, workers: int) -> None:
    sizes = chunk_sizes(total, workers)
    assert sum(sizes) == total
    assert max(sizes) <= executors.MAX_COPIES
    per = max(workers, 1)
    if total // per > executors.FINE_BELOW:  # large: one slice a worker unless it passes MAX_COPIES
        assert len(sizes) % per == 0
        assert len(sizes) >= per * -(-total // (per * executors.MAX_COPIES))
        head, last = sizes[: len(sizes) - per], sizes[len(sizes) - per :]
        assert all(abs(s - sizes[0]) <= 1 for s in head + last[:1])
        # each last slice STAGGER larger than the one before: the workers finish one after another
        assert all(abs(b / a - (1 + executors.STAGGER * (k + 1)) / (1 + executors.STAGGER * k)) < 0.01
                   for k, (a, b) in enumerate(zip(last, last[1:])))
    else:
        assert max(sizes) - min(sizes) <= 1


def test_streamed_in_small_chunks_and_transactions_the_store_equals_one_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tournament = small_classic()
    run_tournament(tournament, tmp_path / "whole", backend="serial")  # 156 matches: one batch, two transactions
    played: list[int] = []
    play_many = executors.MatchPlayer.play_many

    def counting(self, matches):
        played.append(len(matches))
        return play_many(self, matches)

    monkeypatch.setattr(executors, "MAX_COPIES", 20)  # chunks of at most 20 matches
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
