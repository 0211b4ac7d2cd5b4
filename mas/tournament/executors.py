"""Where matches are played: in this process, in worker processes, or on a Ray cluster.

Every executor takes the resolved tournament (plain JSON data, rebuilt once per worker)
and an iterable of scheduled matches, and yields their results as they finish (`MatchBatch` columns a chunk; `execute`: `MatchResult`s), in any
order. A match's result depends only on the tournament and the match, never on the
executor or the order, so all executors give identical results for the same seed.

Work goes out in chunks of matches (`MatchPlayer.play_many`) that a worker plays as the
copies of one engine: for scripted rosters large chunks (the batch is split into one slice
per worker, `chunk_sizes`); with LLM entrants fixed blocks of the schedule (32 matches, the
same on any number of workers and on resume: a packed model call's numbers depend on what
is packed together); one match per chunk when an entrant does not play in batches (a
trained checkpoint). Only the calling process
writes the store; workers just play. At most a few chunks per worker are in flight, so an interrupted run
loses only those.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import select
import threading
import time
import math
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import numpy as np

from mas.errors import MasError, MissingExtraError
from mas.tournament.batch import MAX_COPIES, batchable, fixed_batches, max_copies
from mas.tournament.play import MatchBatch, MatchPlayer, MatchResult
from mas.tournament.schedule import Match, Schedule
from mas.tournament.spec import parse_tournament

BACKENDS = ("process", "serial", "ray")
IN_FLIGHT_PER_WORKER = 4
#: a small tournament of long matches goes out in this many chunks per worker (of at least
#: `MIN_CHUNK` matches), when a worker has at most `FINE_BELOW` matches of `FINE_ROUNDS`
#: rounds or more to play: so progress shows while each slice takes seconds. A batch costs a
#: fixed time per round, so short matches go in one slice (390 classic matches of 200
#: rounds on one worker: 4 chunks took 0.29 s, one 0.08 s)
CHUNKS_PER_WORKER = 4
MIN_CHUNK = 16
FINE_BELOW = 512
FINE_ROUNDS = 1000
#: each of the last slices (one per worker) is this much larger than the one before
#: (`chunk_sizes`): enough for the writer to store one worker's slice while the next plays.
#: With results sent as columns, 0.08 beat 0.15 on 2 workers (median of 7 trials, 7,260
#: matches: 0.385-0.413 s against 0.393-0.441 s; 36,300 matches: 1.78 s against 1.88 s)
STAGGER = 0.08


def execute(tournament_data: dict[str, Any], matches: Schedule | Iterable[Match], backend: str = "process", workers: int = 1) -> Iterator[MatchResult]:
    """Play `matches` and yield their results as they finish (see `execute_chunks`)."""
    for chunk in execute_chunks(tournament_data, matches, backend, workers):
        yield from chunk


def execute_chunks(tournament_data: dict[str, Any], matches: Schedule | Iterable[Match], backend: str = "process",
                   workers: int = 1) -> Iterator[MatchBatch]:
    """Play `matches` and yield the results of each chunk as it finishes (an `Executor`
    for just these matches)."""
    with Executor(tournament_data, backend, workers) as executor:
        yield from executor.play(matches)


class Executor:
    """Where a tournament's work runs while the `with` block lasts: `play` its matches,
    then `map` the ratings' bootstrap over the same workers.

    Args:
        tournament_data: the resolved tournament (`Tournament.to_dict()`).
        backend: "process" (a pool of worker processes), "serial" (this process) or
            "ray" (Ray tasks; the `ray` extra; `map` then runs in this process).
        workers: worker processes, or Ray actors.

    A process pool starts on entering, and its workers build their players while the
    caller does its own preparation (the schedule)."""

    def __init__(self, tournament_data: dict[str, Any], backend: str = "process", workers: int = 1) -> None:
        if backend not in BACKENDS:
            raise MasError(f"unknown backend '{backend}'; known: {', '.join(BACKENDS)}")
        self.tournament_data, self.backend, self.workers = tournament_data, backend, workers
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> "Executor":
        if self.backend == "process":
            self._pool = _start_pool(self.tournament_data, self.workers)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def play(self, matches: Schedule | Iterable[Match]) -> Iterator[MatchBatch]:
        """Play `matches` and yield the results of each chunk as it finishes."""
        chunks = _chunks(self.tournament_data, matches, 0 if self.backend == "serial" else self.workers)
        if self.backend == "serial":
            return _serial(self.tournament_data, chunks)
        if self.backend == "process":
            assert self._pool is not None, "use the Executor in a with block"
            return _processes(self._pool, chunks, self.workers)
        return _ray(self.tournament_data, chunks, self.workers)

    def map(self, fn: Callable[..., Any], *iterables: Iterable[Any]) -> Iterator[Any]:
        """`fn` over `iterables`, like builtin `map`, on the worker processes when there are
        some: every call starts now, the results come in order as they are read. Each call
        goes to the next free worker, so a worker slowed by other work (this process
        writing the store) takes fewer: with one batch of calls per worker, the 2-worker
        bootstrap of 36,300 matches ended with one core idle for 0.18 s. `fn` (a partial
        holding the data, 1.9 MB there) is sent with each call: 2.4 ms a call."""
        if self._pool is None:
            return map(fn, *iterables)
        return _pool_results(self._pool.map(fn, *iterables))


def _chunks(tournament_data: dict[str, Any], matches: Schedule | Iterable[Match], workers: int) -> Iterator[Schedule]:
    """The matches in the chunks workers play (columns: cheap to send): single matches
    unless every entrant plays in batches (`batchable`); the pending matches of each fixed
    block of the schedule when an entrant's decisions depend on their batch
    (`fixed_batches`); else `chunk_sizes` slices, one per worker (or a multiple of them)."""
    pending, tournament = Schedule.of(matches), parse_tournament(tournament_data)
    if not batchable(tournament):
        for i in range(len(pending)):
            yield pending[i : i + 1]
        return
    if fixed_batches(tournament):  # LLM entrants: a match's batch never depends on the workers or on a resume
        block = pending.index // max_copies(tournament)
        cuts = np.flatnonzero(np.diff(block)) + 1
        for start, stop in zip([0, *cuts.tolist()], [*cuts.tolist(), len(pending)]):
            yield pending[start:stop]
        return
    start = 0
    for size in chunk_sizes(len(pending), workers, max_copies(tournament), tournament.max_rounds):
        yield pending[start : start + size]
        start += size


def chunk_sizes(total: int, workers: int, most: int = MAX_COPIES, rounds: int = 1) -> list[int]:
    """Sizes of the batched chunks of `total` matches of up to `rounds` rounds for `workers`
    processes (0: this process): one slice per worker, more only where a slice would pass
    `most` (the tournament's `max_copies`).

    A batch costs a fixed time per round and policy spec plus a small one per copy, so one
    large slice per worker is fastest (a 10x classic roster: 4 chunks of 1,815 took 1.4x
    the time of 2 of 3,630). The last slices, one per worker, grow by `STAGGER` from one to
    the next, so the workers finish one after another and this process writes each one's
    results while the next still plays (equal slices finish together, and their writes
    wait in line). Small tournaments of long matches on worker processes (`FINE_BELOW`
    matches a worker or fewer, of `FINE_ROUNDS` rounds or more) go out in
    `CHUNKS_PER_WORKER` equal chunks a worker instead: progress shows, and a killed run
    loses little."""
    if total <= 0:
        return []
    per = min(max(workers, 1), total)  # no empty slices
    share = math.ceil(total / per)
    if workers > 0 and share <= FINE_BELOW and rounds >= FINE_ROUNDS:
        count = max(per, math.ceil(total / most), min(per * CHUNKS_PER_WORKER, math.ceil(total / MIN_CHUNK)))
        return _shares(total, [1.0] * count)
    count = per * math.ceil(math.ceil(total / most) / per)
    for more in (0, per):  # the stagger may need one more slice a worker to stay within `most`
        if count + more <= total:
            sizes = _shares(total, [1.0] * (count + more - per) + [1.0 + STAGGER * k for k in range(per)])
            if max(sizes) <= most and min(sizes) > 0:
                return sizes
    return _shares(total, [1.0] * min(total, max(per, math.ceil(total / most))))  # tiny limits: equal slices


def _shares(total: int, weights: list[float]) -> list[int]:
    """`total` split in proportion to `weights` (whole numbers, largest remainders first)."""
    whole = sum(weights)
    exact = [total * w / whole for w in weights]
    sizes = [int(x) for x in exact]
    for i in sorted(range(len(exact)), key=lambda i: sizes[i] - exact[i])[: total - sum(sizes)]:
        sizes[i] += 1
    return sizes


def _serial(tournament_data: dict[str, Any], chunks: Iterable[Schedule]) -> Iterator[MatchBatch]:
    player = MatchPlayer(parse_tournament(tournament_data))
    for chunk in chunks:
        yield player.play_many(chunk)


# ----- worker processes ---------------------------------------------------------------------
_worker_player: MatchPlayer | None = None


def _init_worker(tournament_data: dict[str, Any], parent: int) -> None:
    global _worker_player
    _exit_with(parent)
    _worker_player = MatchPlayer(parse_tournament(tournament_data))
    gc.freeze()  # the worker's imports and player stay out of the collections its results set off


def _exit_with(parent: int) -> None:
    """End this worker as soon as process `parent` (the one that made the pool) is gone.

    A pool shuts its workers down, but a parent killed with SIGKILL cannot: the workers
    would play on, and keep the forkserver and resource tracker alive too (both wait for
    every worker to close its end of their pipes). The worker's own parent is the
    forkserver, so PR_SET_PDEATHSIG would not fire; a pidfd of `parent` becomes readable
    when it exits (Linux 5.3+), elsewhere it is polled once a second."""
    try:
        pidfd: int | None = os.pidfd_open(parent)
    except ProcessLookupError:
        os._exit(1)
    except (AttributeError, OSError):  # not Linux, or an old kernel
        pidfd = None

    def watch() -> None:
        if pidfd is not None:
            select.select([pidfd], [], [])
        else:
            while _alive(parent):
                time.sleep(1.0)
        os._exit(1)  # from this thread: ends the whole worker, whatever it is playing

    threading.Thread(target=watch, name="mas-exit-with-parent", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, under another user (a reused pid): cannot tell, keep going
        return True
    return True


def _play_in_worker(chunk: Schedule) -> MatchBatch:
    assert _worker_player is not None, "worker not initialised"
    return _worker_player.play_many(chunk)


def _start_method() -> str:
    # fork is unsafe with threads in the parent (progress bars, model clients); forkserver
    # forks workers from a clean process, spawn is the portable fallback
    methods = multiprocessing.get_all_start_methods()
    return "forkserver" if "forkserver" in methods else "spawn"


def _ready() -> None:
    """A no-op task: submitting one per worker makes the pool start them all now."""


def _start_pool(tournament_data: dict[str, Any], workers: int) -> ProcessPoolExecutor:
    context = multiprocessing.get_context(_start_method())
    if context.get_start_method() == "forkserver":
        # the server imports mas once and forks workers ready to play (no import each); a
        # no-op once the server runs, which it does for the rest of this process's life
        context.set_forkserver_preload(["__main__", "mas.tournament.executors"])
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker, initargs=(tournament_data, os.getpid()))
    for _ in range(workers):  # workers start on demand: ask for all of them before the first chunk
        pool.submit(_ready)
    return pool


_DIED = ("a worker process died (killed, or out of memory); the finished matches are stored: "
         "continue with --resume, perhaps with fewer --workers")


def _pool_results(results: Iterator[Any]) -> Iterator[Any]:
    try:
        yield from results
    except BrokenProcessPool:
        raise MasError(_DIED) from None


def _processes(pool: ProcessPoolExecutor, chunks: Iterable[Schedule], workers: int) -> Iterator[MatchBatch]:
    pending = iter(chunks)
    in_flight: set[Future] = set()
    failure: BaseException | None = None
    try:
        while True:
            while failure is None and len(in_flight) < workers * IN_FLIGHT_PER_WORKER:
                chunk = next(pending, None)
                if chunk is None:
                    break
                try:
                    in_flight.add(pool.submit(_play_in_worker, chunk))
                except BrokenProcessPool as error:  # died before this chunk went out
                    failure = error
            if not in_flight:
                break
            done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:  # after a failure, the matches still in flight finish and are kept
                error = future.exception()
                if error is None:
                    yield future.result()
                elif failure is None:
                    failure = error
    finally:
        for future in in_flight:  # stopped early (the caller failed): nothing more to play
            future.cancel()
    if isinstance(failure, BrokenProcessPool):
        raise MasError(_DIED)
    if failure is not None:
        raise failure


# ----- Ray ------------------------------------------------------------------------------------
def _import_ray() -> Any:
    try:
        import ray
    except ModuleNotFoundError:
        raise MissingExtraError("--backend ray needs the 'ray' package: pip install 'mas-sim[ray]'") from None
    return ray


def _ray(tournament_data: dict[str, Any], chunks: Iterable[Schedule], workers: int) -> Iterator[MatchBatch]:
    """Ray actors, one MatchPlayer each. Connects to the cluster named by RAY_ADDRESS
    when set (or one already initialised), else starts a local Ray with `workers` CPUs.

    A local Ray needs no watch of ours when this process is killed (SIGKILL): its GCS,
    raylet and the actors die with it at once, and Ray's two node agents (dashboard and
    runtime-env) notice the raylet's death and exit by themselves, about 60-80 s later
    (Ray 2.60 first tries, for 60 s, to report it to the dead GCS). Measured with the
    classic roster killed after 5 matches; nothing was left after 80 s."""
    ray = _import_ray()
    started_here = False
    if not ray.is_initialized():
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
        if not os.environ.get("RAY_ADDRESS"):
            options["num_cpus"] = workers
        ray.init(**options)
        started_here = True
    try:
        actor_class = ray.remote(num_cpus=1)(_RayMatchPlayer)
        actors = [actor_class.remote(tournament_data) for _ in range(workers)]
        load = [0] * workers  # calls queued on each actor
        in_flight: dict[Any, int] = {}  # object ref -> actor index
        failures: list[BaseException] = []

        def finished() -> Iterator[MatchBatch]:
            (ready,), _ = ray.wait(list(in_flight), num_returns=1)
            load[in_flight.pop(ready)] -= 1
            try:
                yield ray.get(ready)
            except ray.exceptions.RayTaskError as exc:
                cause = getattr(exc, "cause", None)
                failures.append(cause if isinstance(cause, MasError) else exc)

        for chunk in chunks:
            while len(in_flight) >= workers * IN_FLIGHT_PER_WORKER:
                yield from finished()
            if failures:  # stop submitting; the matches in flight finish and are kept
                break
            actor = min(range(workers), key=load.__getitem__)
            in_flight[actors[actor].play_many.remote(chunk)] = actor
            load[actor] += 1
        while in_flight:
            yield from finished()
        if failures:
            raise failures[0]
    finally:
        if started_here:
            ray.shutdown()


class _RayMatchPlayer:
    """A Ray actor holding one MatchPlayer (the tournament is validated once per actor)."""

    def __init__(self, tournament_data: dict[str, Any]) -> None:
        self.player = MatchPlayer(parse_tournament(tournament_data))

    def play_many(self, chunk: Schedule) -> MatchBatch:
        return self.player.play_many(chunk)
