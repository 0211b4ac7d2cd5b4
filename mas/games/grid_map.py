"""Grid-world maps written as rows of characters, parsed into arrays.

Characters (one per cell):

    #        wall
    . or ' ' empty floor
    @ or A   an apple (and a cell where apples regrow)
    G        a goal (reaching it ends that agent's maze)
    S or P   a spawn point (agents start, and come back after a tag-out, on these)

Every row must have the same length; a map has at most `MAX_SIDE` rows and columns and at
least one spawn point. Outside the map counts as wall.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

#: the most rows or columns of a map
MAX_SIDE = 64
WALL, APPLE, GOAL, SPAWN = "#", "@", "G", "S"
#: every character a map may use -> its meaning
CELLS = {"#": WALL, ".": ".", " ": ".", "@": APPLE, "A": APPLE, "G": GOAL, "S": SPAWN, "P": SPAWN}
#: moves: (row change, column change) of up, right, down, left (the facing directions)
DIRECTIONS = ((-1, 0), (0, 1), (1, 0), (0, -1))


@dataclass(frozen=True)
class GridMap:
    """A parsed map.

    Attributes:
        height, width: its size in cells.
        walls, apples, goals: bool [H, W]; `apples` are the cells apples start on and
            regrow on.
        spawns: flat cell indices (row * width + column) of the spawn points, in reading order.
    """

    height: int
    width: int
    walls: np.ndarray
    apples: np.ndarray
    goals: np.ndarray
    spawns: tuple[int, ...]

    @property
    def cells(self) -> int:
        return self.height * self.width

    def neighbour(self, cell: np.ndarray, direction: np.ndarray) -> np.ndarray:
        """The cell one step in `direction` (0..3: up, right, down, left) from flat `cell`
        (any shape, -1 for none); -1 where that leaves the map or hits a wall."""
        row, col = np.divmod(cell, self.width)
        steps = np.asarray(DIRECTIONS)[direction]
        row, col = row + steps[..., 0], col + steps[..., 1]
        inside = (cell >= 0) & (row >= 0) & (row < self.height) & (col >= 0) & (col < self.width)
        flat = np.where(inside, row * self.width + col, 0)
        return np.where(inside & ~self.walls.reshape(-1)[flat], flat, -1)


def parse_map(rows: list[str]) -> GridMap:
    """The map of `rows`; raises ValueError naming the row and column of a problem."""
    if not rows:
        raise ValueError("map: give at least one row")
    if len(rows) > MAX_SIDE:
        raise ValueError(f"map: {len(rows)} rows; at most {MAX_SIDE}")
    width = len(rows[0])
    for r, row in enumerate(rows):
        if len(row) != width:
            raise ValueError(f"map: row {r} has {len(row)} cells, row 0 has {width}; every row must be as long")
        for c, char in enumerate(row):
            if char not in CELLS:
                raise ValueError(f"map: row {r}, column {c}: unknown cell {char!r}; use one of {''.join(sorted(set(CELLS) - {' '}))} or space")
    if not 1 <= width <= MAX_SIDE:
        raise ValueError(f"map: rows of {width} cells; give 1 to {MAX_SIDE}")
    grid = np.array([[CELLS[ch] for ch in row] for row in rows])
    spawns = tuple(int(i) for i in np.flatnonzero(grid.reshape(-1) == SPAWN))
    if not spawns:
        raise ValueError("map: no spawn point (S or P)")
    return GridMap(len(rows), width, grid == WALL, grid == APPLE, grid == GOAL, spawns)


@functools.lru_cache(maxsize=16)
def disk(radius: int) -> tuple[tuple[int, int], ...]:
    """Offsets (dr, dc) within Euclidean distance `radius` of a cell, the cell itself excluded."""
    return tuple((dr, dc) for dr in range(-radius, radius + 1) for dc in range(-radius, radius + 1)
                 if (dr or dc) and dr * dr + dc * dc <= radius * radius)


def count_near(layer: np.ndarray, radius: int) -> np.ndarray:
    """For a bool layer [B, H, W], how many True cells lie within `radius` of each cell."""
    batch, height, width = layer.shape
    padded = np.zeros((batch, height + 2 * radius, width + 2 * radius), dtype=np.int64)
    padded[:, radius:radius + height, radius:radius + width] = layer
    total = np.zeros((batch, height, width), dtype=np.int64)
    for dr, dc in disk(radius):
        total += padded[:, radius + dr:radius + dr + height, radius + dc:radius + dc + width]
    return total
