"""The run store: one SQLite database per run, the contract between playing and analysing.

The runner writes, analysis reads, nothing else couples them. Each episode is written in
one transaction, so a crash loses at most the episode in flight and a reader never sees
half an episode.

Schema (version 3; version 1 and 2 stores are still read: version 1's decision status is
taken from the record, version 2 lacks `steps.reward_model` and `predictions`, which
resuming a version 2 run adds):
- meta(key, value): schema_version, scenario (resolved JSON), seed, versions, created.
- agents(seat, agent, policy JSON, persona).
- episodes(episode, seed, rounds, steps, terminated, truncated).
- returns(episode, agent, return, cooperation): per-agent totals (cooperation = mean over
  the rounds where the game defines it, NULL if never).
- steps(episode, step, round, agent, action, action_name, illegal, reward, cooperation,
  reward_model): one row per agent per action step; `reward` is the game's, `reward_model`
  the scenario's reward-model component (`mas.reward_model`; NULL without one).
- decisions(episode, step, round, agent, talking, status, record): a policy's JSON record
  of how it decided (LLM prompts, raw outputs, distributions, tokens), for talk and
  action steps alike, and its status (`mas.records.DecisionStatus`: ok, retried, forced,
  fallback, replayed; NULL for records without one); only policies that keep records
  (LLM policies) write rows.

Rows are the typed records of `mas.records`, written by column name.
- states(episode, step, round, summary): the game's JSON summary after each action step.
- predictions(source, episode, step, round, agent, target, predicted, actual, probability,
  correct, log_loss): world-model predictions scored against what happened
  (`mas.records.PredictionRecord`; written while playing, or by `mas worldmodel`).
- messages(episode, step, round, sender, recipient, text, delivered, reason).
"""

from __future__ import annotations

import functools

import dataclasses
import errno
import json
import math
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any

from mas.errors import StoreError
from mas.records import EpisodeRecord, PredictionRecord

SCHEMA_VERSION = 3
#: older versions this mas still reads
READABLE_VERSIONS = (1, 2, 3)
DB_NAME = "run.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS agents (seat INTEGER PRIMARY KEY, agent TEXT NOT NULL UNIQUE, policy TEXT NOT NULL, persona TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS episodes (
    episode INTEGER PRIMARY KEY, seed INTEGER NOT NULL, rounds INTEGER NOT NULL, steps INTEGER NOT NULL,
    terminated INTEGER NOT NULL, truncated INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS returns (
    episode INTEGER NOT NULL, agent TEXT NOT NULL, return REAL NOT NULL, cooperation REAL,
    PRIMARY KEY (episode, agent));
CREATE TABLE IF NOT EXISTS steps (
    episode INTEGER NOT NULL, step INTEGER NOT NULL, round INTEGER NOT NULL, agent TEXT NOT NULL,
    action INTEGER NOT NULL, action_name TEXT NOT NULL, illegal INTEGER NOT NULL, reward REAL NOT NULL,
    cooperation REAL, reward_model REAL, PRIMARY KEY (episode, step, agent));
CREATE TABLE IF NOT EXISTS decisions (
    episode INTEGER NOT NULL, step INTEGER NOT NULL, round INTEGER NOT NULL, agent TEXT NOT NULL,
    talking INTEGER NOT NULL, status TEXT, record TEXT NOT NULL, PRIMARY KEY (episode, step, agent));
CREATE TABLE IF NOT EXISTS states (
    episode INTEGER NOT NULL, step INTEGER NOT NULL, round INTEGER NOT NULL, summary TEXT NOT NULL,
    PRIMARY KEY (episode, step));
CREATE TABLE IF NOT EXISTS messages (
    episode INTEGER NOT NULL, step INTEGER NOT NULL, round INTEGER NOT NULL, sender TEXT NOT NULL,
    recipient TEXT, text TEXT NOT NULL, delivered INTEGER NOT NULL, reason TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS messages_by_episode ON messages (episode, step);
"""
#: added by schema version 3 (also made when a version 2 store is migrated)
_PREDICTIONS = """CREATE TABLE IF NOT EXISTS predictions (
    source TEXT NOT NULL, episode INTEGER NOT NULL, step INTEGER NOT NULL, round INTEGER NOT NULL,
    agent TEXT NOT NULL, target TEXT NOT NULL, predicted TEXT NOT NULL, actual TEXT NOT NULL,
    probability REAL NOT NULL, correct INTEGER NOT NULL, log_loss REAL NOT NULL)"""


#: SQLite's primary result codes for a write the disk refused: SQLITE_FULL (ENOSPC) and
#: SQLITE_IOERR (what a write failing with EFBIG, a file size limit, becomes)
_SQLITE_FULL, _SQLITE_IOERR = 13, 10
_NO_SPACE_ERRNOS = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


def out_of_space(exc: BaseException) -> bool:
    """Whether `exc` is a write the disk refused (full, quota, file size limit)."""
    if isinstance(exc, sqlite3.OperationalError):
        code = getattr(exc, "sqlite_errorcode", None)  # Python >= 3.11
        if code is not None:
            return code & 0xFF in (_SQLITE_FULL, _SQLITE_IOERR)
        return any(text in str(exc) for text in ("disk is full", "disk I/O error"))
    return isinstance(exc, OSError) and exc.errno in _NO_SPACE_ERRNOS


def in_flight_lost(unit: str) -> str:
    """What a refused write costs when each `unit` (episode, match) is one transaction:
    SQLite rolls it back, so the store keeps every finished one."""
    return f"the store stays consistent: every {unit} already written is kept, the {unit} in flight is lost"


@contextmanager
def space_errors(path: Path, kept: str) -> Iterator[None]:
    """Turn a write the disk refused (full, quota, file size limit) into a one-line
    `StoreError` that ends with `kept`, what the store still holds."""
    try:
        yield
    except (sqlite3.OperationalError, OSError) as exc:
        if not out_of_space(exc):
            raise
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise StoreError(f"{path}: cannot write ({reason}): the disk is full or the file reached a size limit; {kept}") from None


@contextmanager
def creating(path: Path, db: sqlite3.Connection) -> Iterator[None]:
    """Set up the new database `db` at `path` inside the block. A write the disk refuses
    closes and removes the half-made file, so it cannot block the same --out."""
    try:
        with space_errors(path, "nothing was stored"):
            yield
    except StoreError:
        db.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        raise


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection to the database file `path`. The path goes into a `file:`
    URI percent-encoded: a raw '?', '#' or '%' in a directory name would be read as the
    URI's query, fragment or an escape, and open (or create) some other file."""
    return sqlite3.connect(Path(path).absolute().as_uri() + "?mode=ro", uri=True)


def open_versioned(run_dir: Path, db_name: str, what: str, schema_version: int | Sequence[int],
                   writable: bool = False, setup: str = "", threads: bool = False) -> tuple[Path, sqlite3.Connection]:
    """Open `run_dir`/`db_name` (or that file itself) and check its schema version, with
    one-line errors for a missing file, a foreign file or another version. Read-only
    unless `writable`; `setup` is SQL run first on a writable connection; `threads`: a
    writable connection that other threads may use, one at a time (the caller sees to that)."""
    run_dir = Path(run_dir)
    path = run_dir / db_name if run_dir.is_dir() else run_dir
    if not path.is_file():
        raise StoreError(f"{run_dir}: no {what} found (expected {db_name} inside a {what} directory)")
    try:
        db = sqlite3.connect(path, check_same_thread=not threads) if writable else connect_readonly(path)
        if writable and setup:
            db.execute(setup)
        version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: not a readable {what} database ({exc})") from None
    readable = (schema_version,) if isinstance(schema_version, int) else tuple(schema_version)
    if version is None or not str(version[0]).isdigit() or int(version[0]) not in readable:
        found = version[0] if version else "none"
        names = " or ".join(str(v) for v in readable)
        raise StoreError(f"{path}: {what} store schema version {found}, this mas reads version {names}")
    return path, db


class RunStore:
    """Writer and reader of one run's database (`run.sqlite` in the run directory)."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection

    # ----- opening -------------------------------------------------------------------
    @classmethod
    def create(cls, run_dir: Path, scenario: dict[str, Any], seed: int, agents: Sequence[tuple[str, dict, str]],
               episodes: int | None = None) -> "RunStore":
        """Create a new run directory and database; refuses to overwrite a run that holds
        episodes (a store left empty by a failed or killed run is replaced). `episodes` is
        the number the run plays, kept for `--resume`. Call under `mas.rundir.locked`."""
        run_dir = Path(run_dir)
        path = run_dir / DB_NAME
        if path.exists() and not holds_rows(path, "episodes"):
            remove_database(path)
        if path.exists():
            raise StoreError(f"{run_dir}: already holds a run ({DB_NAME}); choose another --out, or finish it with --resume {run_dir}")
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{run_dir}: cannot create run directory ({exc.strerror})") from None
        db = sqlite3.connect(path)
        with creating(path, db):
            db.executescript("PRAGMA journal_mode=WAL;" + _SCHEMA + _PREDICTIONS + ";")
        with creating(path, db), db:
            db.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [
                    ("schema_version", str(SCHEMA_VERSION)),
                    ("scenario", json.dumps(scenario)),
                    ("seed", str(seed)),
                    ("versions", json.dumps(_versions())),
                    ("created", datetime.now(timezone.utc).isoformat(timespec="seconds")),
                    *([("episodes", str(episodes))] if episodes is not None else []),
                ],
            )
            db.executemany(
                "INSERT INTO agents VALUES (?, ?, ?, ?)",
                [(seat, agent, json.dumps(policy), persona) for seat, (agent, policy, persona) in enumerate(agents)],
            )
        return cls(path, db)

    @classmethod
    def open(cls, run_dir: Path) -> "RunStore":
        """Open an existing run for reading; one-line errors for missing or foreign files."""
        path, db = open_versioned(run_dir, DB_NAME, "run", READABLE_VERSIONS)
        return cls(path, db)

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])

    @classmethod
    def open_for_resume(cls, run_dir: Path) -> tuple["RunStore", set[int]]:
        """Open an existing run for writing the episodes it lacks; returns the store and
        the episodes already stored. Call under `mas.rundir.locked`."""
        path, db = open_versioned(run_dir, DB_NAME, "run", (2, SCHEMA_VERSION), writable=True)
        store = cls(path, db)
        store.migrate()
        return store, set(store.episodes_done())

    @classmethod
    def open_for_update(cls, run_dir: Path) -> "RunStore":
        """Open a finished run to add derived rows (e.g. `mas worldmodel`'s scores), migrated
        to the current schema. Call under `mas.rundir.locked`."""
        path, db = open_versioned(run_dir, DB_NAME, "run", (2, SCHEMA_VERSION), writable=True)
        store = cls(path, db)
        store.migrate()
        return store

    def migrate(self) -> None:
        """Bring a version 2 store to version 3: the reward-model column and the predictions
        table (one transaction; a version 3 store is left as it is)."""
        if self.schema_version >= SCHEMA_VERSION:
            return
        with space_errors(self.path, "the store is unchanged"), self._db:
            self._db.execute("ALTER TABLE steps ADD COLUMN reward_model REAL")
            self._db.execute(_PREDICTIONS)
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))

    def replace_predictions(self, source: str, records: Sequence[Any]) -> None:
        """Replace the prediction rows of `source` with `records` (one transaction)."""
        with space_errors(self.path, "the earlier scores are kept"), self._db:
            self._db.execute("DELETE FROM predictions WHERE source = ?", (source,))
            insert_records(self._db, "predictions", records)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- writing -------------------------------------------------------------------
    def write_episode(self, record: EpisodeRecord) -> None:
        """Write one whole episode atomically."""
        with space_errors(self.path, in_flight_lost("episode")), self._db:
            self._db.execute(
                "INSERT INTO episodes VALUES (?, ?, ?, ?, ?, ?)",
                (record.episode, record.seed, record.rounds, record.steps, int(record.terminated), int(record.truncated)),
            )
            self._db.executemany(
                "INSERT INTO returns VALUES (?, ?, ?, ?)",
                [(record.episode, a, r, record.cooperation.get(a)) for a, r in record.returns.items()],
            )
            insert_records(self._db, "steps", record.step_records)
            insert_records(self._db, "decisions", record.decisions)
            insert_records(self._db, "states", record.state_records)
            insert_records(self._db, "messages", record.messages)
            insert_records(self._db, "predictions", record.predictions)

    # ----- reading -------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        rows = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        for key in ("scenario", "versions"):
            if key in rows:
                rows[key] = json.loads(rows[key])
        return rows

    def episodes_done(self) -> list[int]:
        return [row[0] for row in self._db.execute("SELECT episode FROM episodes ORDER BY episode")]

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        return self._db.execute(sql, tuple(params)).fetchall()

    def frame(self, table: str) -> Any:
        """A table as a pandas DataFrame (JSON columns left as text)."""
        import pandas as pd

        if table not in {"meta", "agents", "episodes", "returns", "steps", "states", "messages", "decisions", "predictions"}:
            raise StoreError(f"unknown table '{table}'")
        if table == "predictions" and self.schema_version < 3:  # older stores hold none
            return pd.DataFrame(columns=[f.name for f in dataclasses.fields(PredictionRecord)])
        if table == "decisions" and self.schema_version == 1:  # status lived inside the record
            sql = ("SELECT episode, step, round, agent, talking, json_extract(record, '$.status') AS status, record "
                   "FROM decisions")
            return pd.read_sql_query(sql, self._db)
        return pd.read_sql_query(f"SELECT * FROM {table}", self._db)


def insert_records(db: sqlite3.Connection, table: str, records: Sequence[Any], exclude: Iterable[str] = (),
                   **extra: Any) -> None:
    """Insert typed records (frozen dataclasses) into `table` by column name: each field
    is the column of that name, less `exclude`; `extra` adds constant columns (e.g. a
    match index)."""
    if not records:
        return
    names = [f.name for f in dataclasses.fields(records[0]) if f.name not in set(exclude)]
    columns = list(extra) + names
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    constants = [_sql_value(v) for v in extra.values()]
    db.executemany(sql, [constants + [_sql_value(getattr(r, n)) for n in names] for r in records])


def _sql_value(value: Any) -> Any:
    """A record field as SQLite stores it: flags as 0/1, enums by value, mappings as JSON."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Mapping):
        try:
            return json.dumps(value, allow_nan=False)
        except ValueError:  # a non-finite float somewhere inside (rare: a bad server reply)
            return json.dumps(_finite(value), allow_nan=False)
    return value


def _finite(value: Any) -> Any:
    """`value` with every non-finite float spelled as a string ("NaN", "Infinity",
    "-Infinity"): a server's raw NaN log-probabilities stay visible in a decision's
    record, and the column stays strict JSON that every reader (the report's browser,
    jq) can parse."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Mapping):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value

def holds_rows(path: Path, table: str) -> bool:
    """Whether the database at `path` has a row in `table` (finished episodes or matches);
    anything unreadable counts as holding one, so it is never deleted."""
    try:
        db = sqlite3.connect(path)  # the caller holds the run directory's lock
        try:
            return db.execute(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchone()[0] == 1
        finally:
            db.close()
    except sqlite3.Error:
        return True


def remove_database(path: Path) -> None:
    """Delete an SQLite database with its WAL and shared-memory files."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


@functools.lru_cache(maxsize=1)
def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, distribution

    found = {}
    for package in ("mas-sim", "numpy", "pettingzoo", "gymnasium", "pydantic", "torch", "transformers"):
        try:
            dist = distribution(package)
        except PackageNotFoundError:
            continue
        # the Version line of the metadata file: `version()` parses the whole file as email (slow)
        text = dist.read_text("METADATA") or ""
        line = next((ln for ln in text.splitlines() if ln.startswith("Version:")), None)
        found[package] = line.split(":", 1)[1].strip() if line else dist.version
    return found
