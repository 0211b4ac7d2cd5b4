"""A prefix cache of attention keys/values, so that no prompt token is computed twice.

On a compute-bound CPU, avoiding recomputation is what makes LLM agents fast (batching
helps little): the rules at the top of every agent's prompt are the same, and an agent's
prompt in round r+1 usually starts with its prompt of round r. The cache keeps the
key/value tensors of recent prompts, finds the longest cached prefix of a new prompt, and
the model then computes only the tokens after it.

Entries also keep the log-probability of each of their tokens, so that a prompt's token
log-probabilities (what `/v1/completions` with `echo` returns) need no recomputation either.

Only exact for models whose attention sees the whole context (no sliding window): the
backend switches the cache off for other models.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

KV = tuple[tuple[Any, Any], ...]  # per layer: (keys, values), each [1, heads, tokens, head_dim]


@dataclass(frozen=True)
class CacheEntry:
    """Keys/values for `tokens`, and log p(token i | tokens before i) (NaN at position 0,
    and where it was not computed)."""

    tokens: np.ndarray
    kv: KV
    token_logprobs: np.ndarray

    def logprobs_known(self) -> int:
        """How many leading tokens have their log-prob stored (NaN: not computed)."""
        unknown = np.flatnonzero(np.isnan(self.token_logprobs[1:]))
        return int(unknown[0]) + 1 if len(unknown) else len(self.tokens)

    def prefix_kv(self, length: int) -> KV:
        """Views of the first `length` positions (never modified: the model concatenates)."""
        return tuple((k[:, :, :length], v[:, :, :length]) for k, v in self.kv)


def common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    """Length of the longest common prefix of two token arrays."""
    n = min(len(a), len(b))
    if n == 0:
        return 0
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if len(differ) else n


class PrefixCache:
    """Recently computed prompts, most recently used last, bounded by a token budget."""

    def __init__(self, max_tokens: int = 65536) -> None:
        self.max_tokens = max_tokens
        self._entries: OrderedDict[int, CacheEntry] = OrderedDict()
        self._next_id = 0
        self._tokens = 0
        self.hits = 0  # tokens served from the cache
        self.misses = 0  # tokens computed

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def cached_tokens(self) -> int:
        return self._tokens

    def longest_prefix(self, tokens: np.ndarray) -> tuple[CacheEntry | None, int]:
        """The entry sharing the longest prefix with `tokens`, and that length."""
        best, best_len, best_id = None, 0, None
        for entry_id, entry in self._entries.items():
            length = common_prefix(entry.tokens, tokens)
            if length > best_len:
                best, best_len, best_id = entry, length, entry_id
        if best_id is not None:
            self._entries.move_to_end(best_id)
        return best, best_len

    def add(self, entry: CacheEntry) -> None:
        """Keep `entry`; entries that are a prefix of it become redundant and are dropped."""
        if len(entry.tokens) > self.max_tokens:
            return
        for entry_id, old in list(self._entries.items()):
            if len(old.tokens) <= len(entry.tokens) and common_prefix(old.tokens, entry.tokens) == len(old.tokens):
                self._remove(entry_id)
        self._entries[self._next_id] = entry
        self._next_id += 1
        self._tokens += len(entry.tokens)
        while self._tokens > self.max_tokens:
            self._remove(next(iter(self._entries)))

    def clear(self) -> None:
        """Forget everything (e.g. after the model's weights changed)."""
        self._entries.clear()
        self._tokens = 0

    def _remove(self, entry_id: int) -> None:
        self._tokens -= len(self._entries.pop(entry_id).tokens)
