"""A tabular learner's Q table keyed by observation (`QTable`), used by tabular IQL.

Observations are exact keys (their float32 bits); rows are added as states are met, so a
table grows with the states the game actually visits.
"""

from __future__ import annotations

import numpy as np
import torch

#: the most observations a Q-table looks up one by one in its dict (more: vectorised hashes)
SMALL_BATCH = 64


class QTable:
    """One agent's Q table: observation bytes -> row of a growing [states, A] array.

    Lookups hash each observation's bits to 64 bits (vectorised) and find the hash among
    the known states' sorted hashes; the bits of the state found are compared with the
    observation, so a lookup is exact. Only a batch with an unseen observation (or a hash
    collision) takes the slow path, which adds states in the order it always did (sorted
    unique observations), so tables, checkpoints and learning are unchanged by the cache.
    """

    def __init__(self, num_actions: int, obs_dim: int) -> None:
        self.index: dict[bytes, int] = {}
        self.q = np.zeros((64, num_actions), dtype=np.float64)
        self.keys = np.zeros((64, obs_dim), dtype=np.float32)
        # odd 64-bit multipliers, one per observation entry (fixed: hashes are not stored)
        self._mix = np.random.default_rng(0x51ED).integers(1, 2**63, size=obs_dim, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
        self._hashes = np.zeros(0, dtype=np.uint64)  # sorted hashes of the known states
        self._order = np.zeros(0, dtype=np.int64)  # their rows

    def _hash(self, obs: np.ndarray) -> np.ndarray:
        return (obs.view(np.uint32).astype(np.uint64) * self._mix).sum(axis=1, dtype=np.uint64)

    def rows(self, obs: np.ndarray, add: bool = True) -> np.ndarray:
        """Row of each observation [n, d]; unseen ones are added (or -1 if `add` is false)."""
        obs = np.ascontiguousarray(obs, dtype=np.float32) + np.float32(0.0)  # -0.0 is 0.0 (np.unique merged them anyway)
        if 0 < len(obs) <= SMALL_BATCH and self.index:  # a few rows: their bytes in the dict beat the array ops
            data, size = obs.tobytes(), 4 * obs.shape[1]
            found = [self.index.get(data[at:at + size]) for at in range(0, len(data), size)]
            if None not in found:
                return np.array(found, dtype=np.int64)
        elif len(self._hashes) and len(obs):
            hashes = self._hash(obs)
            at = np.minimum(np.searchsorted(self._hashes, hashes), len(self._hashes) - 1)
            rows = self._order[at]
            if (self._hashes[at] == hashes).all() and (self.keys[rows].view(np.uint32) == obs.view(np.uint32)).all():
                return rows
        known = len(self.index)
        unique, inverse = np.unique(obs, axis=0, return_inverse=True)
        found = np.empty(len(unique), dtype=np.int64)
        for i, row in enumerate(unique):
            key = row.tobytes()
            index = self.index.get(key)
            if index is None and add:
                index = self._add(row, key)
            found[i] = -1 if index is None else index
        if len(self.index) != known:
            self._rehash()
        return found[inverse.reshape(-1)]

    def _rehash(self) -> None:
        hashes = self._hash(self.keys[: len(self.index)])
        self._order = np.argsort(hashes, kind="stable")
        self._hashes = hashes[self._order]

    def _add(self, row: np.ndarray, key: bytes) -> int:
        index = len(self.index)
        if index == len(self.q):
            self.q = np.concatenate([self.q, np.zeros_like(self.q)])
            self.keys = np.concatenate([self.keys, np.zeros_like(self.keys)])
        self.index[key] = index
        self.keys[index] = row
        return index

    def state_dict(self) -> dict[str, torch.Tensor]:
        n = len(self.index)
        return {"obs": torch.from_numpy(self.keys[:n].copy()), "q": torch.from_numpy(self.q[:n].copy())}

    @classmethod
    def from_state_dict(cls, data: dict[str, torch.Tensor], num_actions: int) -> "QTable":
        obs, q = data["obs"].numpy(), data["q"].numpy()
        table = cls(num_actions, obs.shape[1])
        for row, values in zip(obs, q):
            # add first, then index `table.q`: `_add` may reallocate it (a one-line
            # `table.q[table._add(...)] = values` writes into the old, full array)
            index = table._add(row.astype(np.float32), row.astype(np.float32).tobytes())
            table.q[index] = values
        table._rehash()
        return table
