"""Freed heap memory goes back to the OS after an LLM update (`mas.memory`)."""

from __future__ import annotations

import sys

import pytest

from mas.memory import release_freed_memory, resident_bytes


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim and /proc are Linux's")
def test_freed_heap_memory_returns_to_the_os() -> None:
    # 40,000 pieces of 16 KiB (below glibc's mmap threshold: they live in the heap), all but
    # the last freed; glibc keeps the hole mapped until it is trimmed
    pieces = [bytearray(16 * 1024) for _ in range(40_000)]
    for piece in pieces:
        piece[::4096] = b"x" * len(piece[::4096])  # touch every page: resident
    last = pieces[-1]
    del pieces
    held = resident_bytes()
    assert release_freed_memory()
    released = held - resident_bytes()
    assert released > 400 * 2**20, f"only {released / 2**20:.0f} MiB of the 625 MiB freed came back"
    assert last[0] == ord("x")  # what is still alive is untouched
