"""Helpers of the fault tests: kill a CLI process with SIGKILL at a chosen point, and see
which processes of its session are still alive (from /proc, no extra dependency)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path


def committed(database: Path, table: str) -> int:
    """Rows committed to `table` so far (0 while the database does not exist yet)."""
    try:
        db = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1)
        try:
            return db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def session_processes(session: int) -> list[int]:
    """Pids of the live (not zombie) processes whose session id is `session`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # ended meanwhile
            continue
        # pid (comm) state ppid pgrp session ...: comm may hold spaces and parentheses
        state, _ppid, _pgrp, sid = stat[stat.rindex(")") + 2:].split()[:4]
        if int(sid) == session and state != "Z":
            found.append(int(entry))
    return found


def wait_until_gone(session: int, timeout: float) -> list[int]:
    """Wait up to `timeout` s for every process of `session` to end; returns the survivors."""
    deadline = time.monotonic() + timeout
    while (alive := session_processes(session)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


def kill_at(command: list[str], database: Path, table: str, rows: int, delay: float, timeout: float = 120) -> int:
    """Start `command` in a new session, SIGKILL its main process (only that one) `delay`
    seconds after `rows` rows are committed to `table`, and return the rows committed then.
    Asserts that no process of the session is left 20 s later (workers included)."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while committed(database, table) < rows and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        survivors = wait_until_gone(process.pid, 20)
    finally:
        for pid in session_processes(process.pid):  # leave nothing behind, even when failing
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert not survivors, f"processes {survivors} of the killed command are still alive 20 s later"
    return committed(database, table)
