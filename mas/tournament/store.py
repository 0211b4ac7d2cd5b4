"""The tournament store: one SQLite database per tournament run (`tournament.sqlite`).

Only the process that schedules matches writes it, on one thread at a time (its
`ChunkWriter` thread while matches stream in, see `mas.tournament.writer`). Each finished
match (or chunk of matches played together, up to `WRITE_BATCH`) is one transaction, committed at once, so a tournament killed at any moment (even `kill -9`)
keeps every finished match and never half of one; `--resume` reads which matches are
done and plays only the others. Summary tables are rewritten in one transaction at the
end, from the matches alone.

Schema (version 2; a version 1 store is read, and upgraded when resumed: its decisions kept
their status inside the record):
- meta(key, value): schema_version, tournament (the resolved file, base scenario inline),
  seed, seat_ids (JSON), action_names (JSON, per seat), action_codec (JSON: the
  one-character names or null, and the width; see `mas.tournament.play.ActionCodec`),
  versions, created.
- entrants(entrant, name, policy JSON, persona): the roster; `entrant` is its index.
- matches(match, repetition, seed, rounds, steps, terminated, truncated): finished matches;
  `match` is the index in the schedule.
- scores(match, seat, entrant, score, cooperation, illegal, actions): one row per seat:
  total payoff, mean cooperation (NULL where undefined), illegal actions tried, and the
  per-round actions as one encoded string. Indexed by entrant once the ranking is written.
- messages(match, step, round, sender, recipient, text, delivered, reason): senders and
  recipients are seat ids (see meta seat_ids and scores.seat).
- decisions(match, step, round, agent, talking, status, record): policy records (LLM
  prompts, raw replies) and each decision's status (ok, retried, forced, fallback), as in
  the run store.
- payoff(row, col, mean, n): mean score of entrant `row` per match against `col`.
- ratings(entrant, rank, matches, mean, low, high, rank_stability, wins, draws, losses,
  elo, per_round): the ranking.
- ecology(generation, entrant, share): population shares (ecological format only); every
  generation up to 1,000, else 1,001 evenly spaced ones including the first and last.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from mas.errors import StoreError
from mas.store import _versions, creating, holds_rows, insert_records, open_versioned, remove_database, space_errors
from mas.tournament.play import MatchBatch, MatchResult

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
#: the most matches written per transaction: large enough that commits cost little next to
#: the rows (7,260 matches in two chunks: 34 ms at 1,024 a transaction, 45 ms at 256, where
#: 30 commits were a third of the time), small enough that a full disk keeps most of a chunk
WRITE_BATCH = 1024
DB_NAME = "tournament.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entrants (entrant INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, policy TEXT NOT NULL, persona TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS matches (
    match INTEGER PRIMARY KEY, repetition INTEGER NOT NULL, seed INTEGER NOT NULL, rounds INTEGER NOT NULL,
    steps INTEGER NOT NULL, terminated INTEGER NOT NULL, truncated INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS scores (
    match INTEGER NOT NULL, seat INTEGER NOT NULL, entrant INTEGER NOT NULL, score REAL NOT NULL,
    cooperation REAL, illegal INTEGER NOT NULL, actions TEXT NOT NULL, PRIMARY KEY (match, seat));
CREATE TABLE IF NOT EXISTS messages (
    match INTEGER NOT NULL, step INTEGER NOT NULL, round INTEGER NOT NULL, sender TEXT NOT NULL,
    recipient TEXT, text TEXT NOT NULL, delivered INTEGER NOT NULL, reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS decisions (
    match INTEGER NOT NULL, step INTEGER NOT NULL, round INTEGER NOT NULL, agent TEXT NOT NULL,
    talking INTEGER NOT NULL, status TEXT, record TEXT NOT NULL, PRIMARY KEY (match, step, agent));
CREATE TABLE IF NOT EXISTS payoff (row INTEGER NOT NULL, col INTEGER NOT NULL, mean REAL, n INTEGER NOT NULL, PRIMARY KEY (row, col));
CREATE TABLE IF NOT EXISTS ratings (
    entrant INTEGER PRIMARY KEY, rank INTEGER NOT NULL, matches INTEGER NOT NULL, mean REAL, low REAL, high REAL,
    rank_stability REAL, wins INTEGER NOT NULL, draws INTEGER NOT NULL, losses INTEGER NOT NULL, elo REAL NOT NULL,
    per_round REAL);
CREATE TABLE IF NOT EXISTS ecology (generation INTEGER NOT NULL, entrant INTEGER NOT NULL, share REAL NOT NULL, PRIMARY KEY (generation, entrant));
"""

#: built once the matches are in (with the summary): one sort of the finished table costs
#: a quarter of what keeping the index up to date while matches stream in does (measured:
#: 4 ms against 15 ms for 7,260 matches), and nothing reads it before the ranking exists.
#: Stores made before this keep the index from their start; both read the same.
_ENTRANT_INDEX = "CREATE INDEX IF NOT EXISTS scores_by_entrant ON scores (entrant)"

# WAL with synchronous=NORMAL: a commit survives the process being killed (kill -9) at
# once; only an OS crash or power cut can lose the last few commits, never corrupt the file
_DURABILITY = "PRAGMA synchronous=NORMAL"

READABLE_TABLES = ("meta", "entrants", "matches", "scores", "messages", "decisions", "payoff", "ratings", "ecology")


class TournamentStore:
    """Writer and reader of one tournament's database."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection

    @classmethod
    def create(cls, run_dir: Path, tournament: dict[str, Any], seed: int, extra_meta: dict[str, Any]) -> "TournamentStore":
        """Create a new tournament run directory; refuses to overwrite one that holds
        matches (a store left empty by a failed or killed run is replaced). Call under
        `mas.rundir.locked`."""
        run_dir = Path(run_dir)
        path = run_dir / DB_NAME
        if path.exists() and not holds_rows(path, "matches"):
            remove_database(path)
        if path.exists():
            raise StoreError(f"{run_dir}: already holds a tournament ({DB_NAME}); resume it with --resume {run_dir} or choose another --out")
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{run_dir}: cannot create run directory ({exc.strerror})") from None
        db = sqlite3.connect(path, check_same_thread=False)  # written by `ChunkWriter`'s thread while matches stream in
        with creating(path, db):
            # durability first and the schema in one transaction: one sync, not one per table
            db.executescript(f"PRAGMA journal_mode=WAL; {_DURABILITY}; BEGIN; {_SCHEMA} COMMIT;")
        meta = {
            "schema_version": str(SCHEMA_VERSION),
            "tournament": json.dumps(tournament),
            "seed": str(seed),
            "versions": json.dumps(_versions()),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **{key: json.dumps(value) for key, value in extra_meta.items()},
        }
        with creating(path, db), db:
            db.executemany("INSERT INTO meta VALUES (?, ?)", list(meta.items()))
            db.executemany(
                "INSERT INTO entrants VALUES (?, ?, ?, ?)",
                [(i, e["name"], json.dumps(e["policy"]), e.get("persona", "")) for i, e in enumerate(tournament["entrants"])],
            )
        return cls(path, db)

    @classmethod
    def open(cls, run_dir: Path, writable: bool = False) -> "TournamentStore":
        """Open an existing tournament; one-line errors for missing or foreign files."""
        path, db = open_versioned(run_dir, DB_NAME, "tournament", READABLE_VERSIONS, writable, _DURABILITY, threads=True)
        store = cls(path, db)
        if writable and store.schema_version < SCHEMA_VERSION:
            store._migrate()
        return store

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])

    def _migrate(self) -> None:
        """Version 1 -> 2 (one transaction): the decisions' status gets its own column,
        filled from the records, so resumed matches and earlier ones read alike."""
        with space_errors(self.path, "the store is unchanged"), self._db:
            self._db.execute("ALTER TABLE decisions ADD COLUMN status TEXT")
            self._db.execute("UPDATE decisions SET status = json_extract(record, '$.status')")
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "TournamentStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- writing -----------------------------------------------------------------------
    def write_match(self, result: MatchResult) -> None:
        """Write one finished match atomically."""
        self.write_matches(MatchBatch.of([result]))

    def write_matches(self, batch: MatchBatch | Sequence[MatchResult]) -> None:
        """Write finished matches (a chunk's `MatchBatch`, or `MatchResult`s), `WRITE_BATCH`
        to a transaction, each table with one `executemany` per transaction: a full disk
        keeps the transactions before it."""
        if not isinstance(batch, MatchBatch):
            batch = MatchBatch.of(batch)
        kept = "every match already written is kept, the matches in flight are lost"
        matches = list(zip(batch.match.tolist(), batch.repetition.tolist(), batch.seed.tolist(), batch.rounds.tolist(),
                           batch.steps.tolist(), batch.terminated.astype(np.int64).tolist(), batch.truncated.astype(np.int64).tolist()))
        seats = batch.seats.shape[1]
        cooperation = batch.cooperation.ravel().tolist()
        if np.isnan(batch.cooperation).any():
            cooperation = [None if c != c else c for c in cooperation]  # NULL where the game defines none
        match, seat = batch.seat_rows()
        scores = list(zip(match.tolist(), seat.tolist(), batch.seats.ravel().tolist(), batch.scores.ravel().tolist(), cooperation,
                          batch.illegal.ravel().tolist(), batch.actions))
        for start in range(0, len(batch), WRITE_BATCH):
            stop = min(start + WRITE_BATCH, len(batch))
            with space_errors(self.path, kept), self._db:
                self._db.executemany("INSERT INTO matches VALUES (?, ?, ?, ?, ?, ?, ?)", matches[start:stop])
                self._db.executemany("INSERT INTO scores VALUES (?, ?, ?, ?, ?, ?, ?)", scores[start * seats : stop * seats])
                for i in range(start, stop):
                    if batch.messages and batch.messages[i]:
                        insert_records(self._db, "messages", batch.messages[i], exclude=("episode",), match=matches[i][0])
                    if batch.decisions and batch.decisions[i]:
                        insert_records(self._db, "decisions", batch.decisions[i], exclude=("episode",), match=matches[i][0])

    def write_summary(self, payoff: Sequence[tuple], ratings: Sequence[tuple] | Callable[[], Sequence[tuple]],
                      ecology: Sequence[tuple]) -> None:
        """Replace the summary tables (payoff matrix, ratings, ecology) in one transaction,
        and index the scores by entrant (`_ENTRANT_INDEX`). `ratings` may be a function that
        returns the rows: it is called once the other tables are written, inside the same
        transaction, so a ranking still being computed (the bootstrap on worker processes)
        overlaps the writing."""
        with space_errors(self.path, "every match is kept; free space and --resume to write the ranking"), self._db:
            self._db.execute(_ENTRANT_INDEX)
            for table in ("payoff", "ratings", "ecology"):
                self._db.execute(f"DELETE FROM {table}")
            self._db.executemany("INSERT INTO payoff VALUES (?, ?, ?, ?)", payoff)
            self._db.executemany("INSERT INTO ecology VALUES (?, ?, ?)", ecology)
            self._db.executemany("INSERT INTO ratings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", ratings() if callable(ratings) else ratings)

    def checkpoint(self) -> None:
        """Copy what the write-ahead log holds into the database file now (closing would
        do it), while this process would otherwise wait."""
        self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    # ----- reading -----------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        rows = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        for key, value in rows.items():
            if key not in ("schema_version", "seed", "created"):
                rows[key] = json.loads(value)
        return rows

    def done_matches(self) -> set[int]:
        return {row[0] for row in self._db.execute("SELECT match FROM matches")}

    def match_scores(self) -> list[tuple[int, int, int, float, int]]:
        """(match, seat, entrant, score, rounds) for every finished match, in match order."""
        return self._db.execute(
            "SELECT s.match, s.seat, s.entrant, s.score, m.rounds FROM scores s JOIN matches m USING (match) ORDER BY s.match, s.seat"
        ).fetchall()

    def match_score_columns(self) -> tuple[np.ndarray, ...]:
        """`match_scores` as five float64 arrays (match, seat, entrant, score, rounds), read
        in slices: numbers, never a Python tuple per row."""
        cursor = self._db.execute(
            "SELECT s.match, s.seat, s.entrant, s.score, m.rounds FROM scores s JOIN matches m USING (match) ORDER BY s.match, s.seat"
        )
        parts = [np.zeros((0, 5))]
        while rows := cursor.fetchmany(1 << 16):
            parts.append(np.array(rows, dtype=np.float64))
        return tuple(np.concatenate(parts).T)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self._db.execute(sql, tuple(params)).fetchall()

    def frame(self, table: str) -> Any:
        """A table as a pandas DataFrame (JSON columns left as text)."""
        import pandas as pd

        if table not in READABLE_TABLES:
            raise StoreError(f"unknown table '{table}'; tables: {', '.join(READABLE_TABLES)}")
        if table == "decisions" and self.schema_version == 1:  # status lived inside the record
            sql = ("SELECT match, step, round, agent, talking, json_extract(record, '$.status') AS status, record "
                   "FROM decisions")
            return pd.read_sql_query(sql, self._db)
        return pd.read_sql_query(f"SELECT * FROM {table}", self._db)
