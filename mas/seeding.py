"""One master seed -> independent child seeds for everything in a run.

Children are derived by name path with numpy's SeedSequence, so adding a new consumer
never shifts the seeds of existing ones, and serial and parallel runs agree.
"""

from __future__ import annotations

import zlib

import numpy as np


def _key(part: str | int) -> int:
    if isinstance(part, int):
        return part
    return zlib.crc32(part.encode("utf-8"))


def child_seed(master: int, *path: str | int) -> int:
    """A 63-bit seed determined by the master seed and a path such as ("episode", 3)."""
    seq = np.random.SeedSequence([int(master) & 0xFFFFFFFFFFFFFFFF, *(_key(p) for p in path)])
    (word,) = seq.generate_state(1, dtype=np.uint64)
    return int(word) & 0x7FFFFFFFFFFFFFFF


def rng(master: int, *path: str | int) -> np.random.Generator:
    """A numpy Generator seeded from `child_seed(master, *path)`."""
    return np.random.default_rng(child_seed(master, *path))
