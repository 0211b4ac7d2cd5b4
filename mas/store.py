"""The run store: one SQLite database per run, the contract between playing and analysing.

The runner writes, analysis reads, nothing else couples them. Each episode is written in
one transaction, so a crash loses at most the episode in flight and a reader never sees
half an episode.

Schema (version 1):
- meta(key, value): schema_version, scenario (resolved JSON), seed, versions, created.
- agents(seat, agent, policy JSON, persona).
- episodes(episode, seed, rounds, steps, terminated, truncated).
- returns(episode, agent, return, cooperation): per-agent totals (cooperation = mean over
  the rounds where the game defines it, NULL if never).
- steps(episode, step, round, agent, action, action_name, illegal, reward, cooperation):
  one row per agent per action step.
- decisions(episode, step, round, agent, talking, record): a policy's JSON record of how
  it decided (LLM prompts, raw outputs, distributions, tokens), for talk and action
  steps alike; only policies that keep records (LLM policies) write rows.
- states(episode, step, round, summary): the game's JSON summary after each action step.
- messages(episode, step, round, sender, recipient, text, delivered, reason).
"""

from __future__ import annotations

import errno
import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mas.errors import StoreError

SCHEMA_VERSION = 1
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
    cooperation REAL, PRIMARY KEY (episode, step, agent));
CREATE TABLE IF NOT EXISTS decisions (
    episode INTEGER NOT NULL, step INTEGER NOT NULL, round INTEGER NOT NULL, agent TEXT NOT NULL,
    talking INTEGER NOT NULL, record TEXT NOT NULL, PRIMARY KEY (episode, step, agent));
CREATE TABLE IF NOT EXISTS states (
    episode INTEGER NOT NULL, step INTEGER NOT NULL, round INTEGER NOT NULL, summary TEXT NOT NULL,
    PRIMARY KEY (episode, step));
CREATE TABLE IF NOT EXISTS messages (
    episode INTEGER NOT NULL, step INTEGER NOT NULL, round INTEGER NOT NULL, sender TEXT NOT NULL,
    recipient TEXT, text TEXT NOT NULL, delivered INTEGER NOT NULL, reason TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS messages_by_episode ON messages (episode, step);
"""


@dataclass
class EpisodeRecord:
    """Everything one episode produced, written to the store in one transaction."""

    episode: int
    seed: int
    rounds: int = 0
    steps: int = 0
    terminated: bool = False
    truncated: bool = False
    returns: dict[str, float] = field(default_factory=dict)
    cooperation: dict[str, float | None] = field(default_factory=dict)
    step_rows: list[tuple] = field(default_factory=list)
    state_rows: list[tuple] = field(default_factory=list)
    message_rows: list[tuple] = field(default_factory=list)
    decision_rows: list[tuple] = field(default_factory=list)
    #: per agent, totals over the policy records that carry them (LLM agents): tokens,
    #: action decisions, generated action replies ("outputs"), invalid replies, fallbacks
    usage: dict[str, dict[str, int]] = field(default_factory=dict)


#: SQLite's primary result codes for a write the disk refused: SQLITE_FULL (ENOSPC) and
#: SQLITE_IOERR (what a write failing with EFBIG, a file size limit, becomes)
_SQLITE_FULL, _SQLITE_IOERR = 13, 10
_NO_SPACE_ERRNOS = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _out_of_space(exc: BaseException) -> bool:
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
        if not _out_of_space(exc):
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


def open_versioned(run_dir: Path, db_name: str, what: str, schema_version: int,
                   writable: bool = False, setup: str = "") -> tuple[Path, sqlite3.Connection]:
    """Open `run_dir`/`db_name` (or that file itself) and check its schema version, with
    one-line errors for a missing file, a foreign file or another version. Read-only
    unless `writable`; `setup` is SQL run first on a writable connection."""
    run_dir = Path(run_dir)
    path = run_dir / db_name if run_dir.is_dir() else run_dir
    if not path.is_file():
        raise StoreError(f"{run_dir}: no {what} found (expected {db_name} inside a {what} directory)")
    try:
        db = sqlite3.connect(path) if writable else connect_readonly(path)
        if writable and setup:
            db.execute(setup)
        version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: not a readable {what} database ({exc})") from None
    if version is None or int(version[0]) != schema_version:
        found = version[0] if version else "none"
        raise StoreError(f"{path}: {what} store schema version {found}, this mas reads version {schema_version}")
    return path, db


class RunStore:
    """Writer and reader of one run's database (`run.sqlite` in the run directory)."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection

    # ----- opening -------------------------------------------------------------------
    @classmethod
    def create(cls, run_dir: Path, scenario: dict[str, Any], seed: int, agents: Sequence[tuple[str, dict, str]]) -> "RunStore":
        """Create a new run directory and database; refuses to overwrite an existing run."""
        run_dir = Path(run_dir)
        path = run_dir / DB_NAME
        if path.exists():
            raise StoreError(f"{run_dir}: already holds a run ({DB_NAME}); choose another --out")
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{run_dir}: cannot create run directory ({exc.strerror})") from None
        db = sqlite3.connect(path)
        with creating(path, db):
            db.executescript("PRAGMA journal_mode=WAL;" + _SCHEMA)
        with creating(path, db), db:
            db.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [
                    ("schema_version", str(SCHEMA_VERSION)),
                    ("scenario", json.dumps(scenario)),
                    ("seed", str(seed)),
                    ("versions", json.dumps(_versions())),
                    ("created", datetime.now(timezone.utc).isoformat(timespec="seconds")),
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
        path, db = open_versioned(run_dir, DB_NAME, "run", SCHEMA_VERSION)
        return cls(path, db)

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
            self._db.executemany("INSERT INTO steps VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", record.step_rows)
            self._db.executemany("INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?)", record.decision_rows)
            self._db.executemany("INSERT INTO states VALUES (?, ?, ?, ?)", record.state_rows)
            self._db.executemany("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?)", record.message_rows)

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

        if table not in {"meta", "agents", "episodes", "returns", "steps", "states", "messages", "decisions"}:
            raise StoreError(f"unknown table '{table}'")
        return pd.read_sql_query(f"SELECT * FROM {table}", self._db)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("mas-sim", "numpy", "pettingzoo", "gymnasium", "pydantic", "torch", "transformers"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found
