"""Storing finished chunks on a thread of their own, so the process that schedules a
tournament keeps receiving results while earlier ones are written.

Why: the workers finish one after another, and writing a chunk of 18,000 matches takes
about 0.14 s. Written in the receiving loop, a chunk that arrives during that write waits
for it, and so does the ranking's bootstrap, which can start only once the last chunk is
in: both workers sat idle for about 0.1 s of a 1.4 s run on two cores. With the writer
on its own thread the bootstrap starts the moment the last chunk arrives. SQLite runs
its statements with the GIL released, so the writing overlaps the receiving.

    with ChunkWriter(store, on_written) as writer:
        for batch in executor.play(pending):
            writer.put(batch)          # returns at once, unless `depth` chunks wait
    # every chunk put is written here, or the writer's error is raised

Chunks are written in the order they were put, each as `TournamentStore.write_matches`
writes it (up to `WRITE_BATCH` matches a transaction). The store's connection belongs to
the writer thread while the `with` block lasts: the caller does not touch the store then.
When the caller's loop fails (a worker died, Ctrl-C), the block still writes every chunk
already put before the error goes on, so nothing received is lost. When a write fails
(a full disk), `put` raises that error, and the block's end raises it too.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from types import TracebackType

from mas.tournament.play import MatchBatch
from mas.tournament.store import TournamentStore


class ChunkWriter:
    """Writes `MatchBatch`es to `store` on a thread, in order.

    Args:
        store: the open, writable tournament store (its connection made with
            `threads=True`).
        on_written: called on the writer thread with the number of matches of each chunk
            once it is committed.
        depth: the most chunks waiting to be written; `put` blocks beyond it, so a writer
            slower than the workers holds back the results (memory stays bounded).
    """

    def __init__(self, store: TournamentStore, on_written: Callable[[int], None] | None = None, depth: int = 4) -> None:
        if depth < 1:
            raise ValueError(f"depth: at least 1, got {depth}")
        self._store, self._on_written = store, on_written
        self._queue: queue.Queue[MatchBatch | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="mas-chunk-writer", daemon=True)

    def __enter__(self) -> "ChunkWriter":
        self._thread.start()
        return self

    def put(self, batch: MatchBatch) -> None:
        """Queue `batch` to be written; raises the writer's error if a write failed."""
        self._raise_failure()
        self._queue.put(batch)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self._queue.put(None)  # after every chunk put: they are written first
        self._thread.join()
        if kind is None:
            self._raise_failure()

    def _raise_failure(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while (batch := self._queue.get()) is not None:
            if self._error is not None:
                continue  # a write failed: the rest are dropped, the caller is told on its next put
            try:
                self._store.write_matches(batch)
                if self._on_written is not None:
                    self._on_written(len(batch))
            except BaseException as error:  # noqa: BLE001 - handed to the caller's thread
                self._error = error
