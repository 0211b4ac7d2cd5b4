"""Running a tournament: schedule, play what is not done yet, store, rate.

    results = run_tournament(load_tournament("scenarios/tournaments/axelrod_classic.yaml"),
                             out_dir="runs/classic", workers=2)
    results = resume_tournament("runs/classic")      # after a crash or kill -9

A fresh run creates the store and plays every match; a resumed run reads the stored
tournament, plays only the matches not yet committed and then computes the same
rankings an uninterrupted run would (they depend only on the stored matches and seed).

Worker processes start with forkserver (spawn where that is missing), which imports the
calling script again: call these functions under `if __name__ == "__main__":` in a script.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mas.rundir import first_difference, locked
from mas.seeding import rng
from mas.tournament import ecology
from mas.tournament.executors import Executor
from mas.tournament.play import MatchBatch, MatchPlayer
from mas.tournament.ratings import MatchTable, Rating, payoff_matrix, rate, resample_blocks
from mas.tournament.schedule import build_schedule
from mas.tournament.shared_models import shared_models
from mas.tournament.spec import EcologicalFormat, Tournament, TournamentError, parse_tournament
from mas.tournament.store import DB_NAME, TournamentStore
from mas.tournament.writer import ChunkWriter


@dataclass
class TournamentResults:
    """What a finished tournament shows: the ranking, the payoff matrix and, for an
    ecological tournament, the population shares per generation."""

    tournament: Tournament
    out_dir: Path
    ratings: list[Rating]
    payoff: np.ndarray
    ecology: np.ndarray | None
    matches: int
    played_now: int

    @property
    def names(self) -> list[str]:
        return self.tournament.names


def run_tournament(
    tournament: Tournament,
    out_dir: str | Path,
    workers: int = 1,
    backend: str = "process",
    on_progress: Callable[[int, int], None] | None = None,
) -> TournamentResults:
    """Play a new tournament into `out_dir` (which must not hold one already).

    Args:
        tournament: the validated tournament (`load_tournament`).
        out_dir: run directory to create; it receives `tournament.sqlite`.
        workers: parallel worker processes (or Ray actors).
        backend: "process", "serial" or "ray".
        on_progress: called with (matches done, total) at the start and after each
            committed match, or chunk of matches played together (progress bars); after
            the start, from the thread that writes the store (`mas.tournament.writer`).
    """
    data = tournament.to_dict()
    player = MatchPlayer(tournament)
    extra = {"seat_ids": list(tournament.seat_ids), "action_names": player.action_names,
             "action_codec": {"names": player.codec.names, "width": player.codec.width}}
    with locked(Path(out_dir), create=True):
        store = TournamentStore.create(Path(out_dir), data, tournament.spec.seed, extra)
        return _play_and_rate(tournament, store, Path(out_dir), workers, backend, on_progress)


def resume_tournament(
    out_dir: str | Path,
    tournament: Tournament | None = None,
    seed: int | None = None,
    workers: int = 1,
    backend: str = "process",
    on_progress: Callable[[int, int], None] | None = None,
) -> TournamentResults:
    """Finish a stored tournament, playing only the matches not yet committed.

    Args:
        out_dir: the tournament run directory.
        tournament: if given, it must equal the stored one (the same file and seed).
        seed: if given, it must be the stored seed.

    Raises:
        StoreError: another process is using `out_dir` (`mas.rundir`).
    """
    with locked(Path(out_dir)):  # the run directory is used by one process at a time
        store = TournamentStore.open(Path(out_dir), writable=True)
        try:
            stored = parse_tournament(store.meta()["tournament"], source=str(Path(out_dir) / DB_NAME))
        except BaseException:
            store.close()
            raise
        if seed is not None and seed != stored.spec.seed:
            store.close()
            raise TournamentError(f"{out_dir}: was started with seed {stored.spec.seed}, not {seed}; resume without --seed")
        if tournament is not None and tournament.to_dict() != stored.to_dict():
            store.close()
            field = first_difference(tournament.to_dict(), stored.to_dict())
            raise TournamentError(
                f"{out_dir}: holds a different tournament ({field} differs from {tournament.source}); "
                "resume with the same file and seed, or start a new run with --out"
            )
        return _play_and_rate(stored, store, Path(out_dir), workers, backend, on_progress)


def _play_and_rate(
    tournament: Tournament,
    store: TournamentStore,
    out_dir: Path,
    workers: int,
    backend: str,
    on_progress: Callable[[int, int], None] | None,
) -> TournamentResults:
    try:
        with shared_models(tournament.to_dict(), backend) as (worker_data, _servers), _heap_frozen(), \
                Executor(worker_data, backend, workers) as executor:
            schedule = build_schedule(tournament)  # while the workers start
            done = store.done_matches()
            pending = schedule.without(done)
            finished = len(schedule) - len(pending)
            if on_progress is not None:
                on_progress(finished, len(schedule))
            scores = [np.column_stack(store.match_score_columns())]  # the ratings' input, kept as it streams
            table, blocks = None, None
            stored = finished

            def written(count: int) -> None:  # on the writer's thread
                nonlocal stored
                stored += count
                if on_progress is not None:
                    on_progress(stored, len(schedule))

            with ChunkWriter(store, written, depth=max(2, workers)) as writer:
                for results in executor.play(pending):
                    scores.append(_score_rows(results))
                    finished += len(results)
                    if finished == len(schedule):  # the last chunk: the ratings' bootstrap starts on the workers at once
                        table = _match_table(tournament, scores)
                        scores.clear()  # in the table now: not held twice while the ranking is computed
                        blocks = resample_blocks(table, tournament.spec.ratings.bootstrap, tournament.spec.seed, executor.map)
                    writer.put(results)
            if table is None:  # nothing was left to play (a finished run resumed)
                table = _match_table(tournament, scores)
            results = summarise(tournament, store, out_dir, executor.map, table, blocks)
        results.played_now = len(pending)
        return results
    finally:
        store.close()


def _score_rows(batch: MatchBatch) -> np.ndarray:
    """(match, seat, entrant, score, rounds) rows of finished matches, as the store's
    `match_score_columns` reads them back."""
    match, seat = batch.seat_rows()
    rounds = np.repeat(batch.rounds, batch.seats.shape[1])
    return np.column_stack([match, seat, batch.seats.ravel(), batch.scores.ravel(), rounds]).astype(np.float64).reshape(-1, 5)


def _match_table(tournament: Tournament, scores: list[np.ndarray]) -> MatchTable:
    columns = np.concatenate(scores).T
    return MatchTable.from_arrays(*columns, n_entrants=len(tournament.spec.entrants), self_play=tournament.spec.ratings.self_play)


@contextmanager
def _heap_frozen() -> Iterator[None]:
    """Leave the objects alive now (imports, the schedule) out of garbage collection while
    results stream in: each chunk's thousands of results otherwise set off full collections
    that scan the whole heap (measured: unpickling 3,630 results took 6 ms with the heap
    frozen and up to 90 ms without). Only cycles made before are collected later. A heap
    frozen by the caller is left as it is."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def summarise(tournament: Tournament, store: TournamentStore, out_dir: Path, mapper: Callable[..., Iterator] = map,
              table: MatchTable | None = None, blocks: Iterable[np.ndarray] | None = None) -> TournamentResults:
    """Ratings, payoff matrix and ecology from the stored matches (or `table`, the same
    matches kept while they were written); written back to the store's summary tables.
    `mapper` computes the bootstrap, or `blocks` are its resamples already under way
    (`ratings.rate`)."""
    spec = tournament.spec
    n = len(spec.entrants)
    if table is None:
        table = _match_table(tournament, [np.column_stack(store.match_score_columns())])
    payoff, counts = payoff_matrix(table, n)
    shares = _ecology(tournament, payoff) if isinstance(spec.format, EcologicalFormat) else None
    ratings: list[Rating] = []

    def rating_rows() -> list[tuple]:  # the bootstrap's blocks may still be on the workers: read last
        ratings.extend(rate(table, n, spec.ratings.bootstrap, spec.ratings.confidence, spec.ratings.elo_k, spec.seed, mapper, blocks))
        return [(r.entrant, r.rank, r.matches, *_nullable(r.mean, r.low, r.high, r.rank_stability), r.wins, r.draws, r.losses,
                 r.elo, *_nullable(r.per_round)) for r in ratings]

    store.checkpoint()  # the matches' pages into the file while the bootstrap runs (closing would do it after)
    store.write_summary(
        payoff=[(i, j, None if mean != mean else mean, count)  # NaN (never met) stored as NULL
                for i, (means, row_counts) in enumerate(zip(payoff.tolist(), counts.tolist()))
                for j, (mean, count) in enumerate(zip(means, row_counts))],
        ratings=rating_rows,
        ecology=[] if shares is None else [(int(g), e, float(shares[g, e])) for g in _stored_generations(len(shares)) for e in range(n)],
    )
    return TournamentResults(tournament, out_dir, ratings, payoff, shares, matches=table.n_matches, played_now=0)


def _stored_generations(count: int, most: int = 1001) -> np.ndarray:
    """Every generation, or `most` evenly spaced ones (first and last included)."""
    return np.arange(count) if count <= most else np.unique(np.linspace(0, count - 1, most).round().astype(np.int64))


def _nullable(*values: float) -> tuple[float | None, ...]:
    return tuple(None if np.isnan(v) else float(v) for v in values)


def _ecology(tournament: Tournament, payoff: np.ndarray) -> np.ndarray | None:
    """Population shares per generation (Moran: counts / population)."""
    fmt = tournament.spec.format
    assert isinstance(fmt, EcologicalFormat)
    if not np.isfinite(payoff).all():
        return None  # an unfinished tournament: not every pair has met yet
    names = tournament.names
    initial = np.ones(len(names)) if fmt.initial is None else np.array([fmt.initial.get(n, 0.0) for n in names])
    if fmt.dynamics == "replicator":
        return ecology.replicator(payoff, initial, fmt.generations)
    counts = ecology.moran(payoff, ecology.initial_counts(initial, fmt.population), fmt.generations, rng(tournament.spec.seed, "moran"))
    return counts / fmt.population
