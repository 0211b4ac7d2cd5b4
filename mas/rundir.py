"""A run directory is used by one process at a time: an advisory lock file inside it.

    with locked(out_dir, create=True):
        store = RunStore.create(out_dir, ...)      # or open it to resume

`mas run` and `mas tournament` (fresh or `--resume`) hold the lock while they write, so
a second process on the same directory stops at once with a one-line error naming the
holder, instead of writing the same episodes twice and failing on the store's keys.

The lock is `fcntl.flock` on `LOCK_NAME`: the kernel drops it when the holder's file is
closed, including when the process dies (kill -9), so no stale lock is ever left. The
file stays in the directory (deleting a lock file lets two processes lock two different
files of the same name). On systems without `fcntl` (Windows) nothing is locked.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mas.errors import StoreError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".mas.lock"


def directory_of(run_path: Path) -> Path:
    """The run directory of `run_path`, which may also name the database file inside it."""
    run_path = Path(run_path)
    return run_path.parent if run_path.is_file() else run_path


@contextmanager
def locked(run_path: Path, create: bool = False) -> Iterator[Path]:
    """Hold the lock of the run directory `run_path` while the block runs.

    Args:
        run_path: the run directory (or its database file).
        create: make the directory (and its parents) if missing; without it a missing
            directory is not locked, and opening its store reports it.

    Raises:
        StoreError: another process holds the lock, or the directory cannot be made.
    """
    run_dir = directory_of(run_path)
    if create:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{run_dir}: cannot create run directory ({exc.strerror})") from None
    if fcntl is None or not run_dir.is_dir():
        yield run_dir
        return
    try:
        fd = os.open(run_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreError(f"{run_dir}: cannot open its lock file ({exc.strerror})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreError(f"run directory {run_dir} is in use by {_holder(fd)}; wait for it to finish") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield run_dir
    finally:
        os.close(fd)  # closing releases the lock


def _holder(fd: int) -> str:
    """'pid N' from the lock file, or a generic name while the holder has not written it yet."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        text = ""
    return f"pid {text}" if text.isdigit() else "another process"


def first_difference(a: Any, b: Any, path: str = "") -> str:
    """The dotted path of the first field where two resolved configs differ (resume checks)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return first_difference(a.get(key), b.get(key), f"{path}.{key}" if path else key)
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return first_difference(x, y, f"{path}.{i}")
    return path or "(top level)"
