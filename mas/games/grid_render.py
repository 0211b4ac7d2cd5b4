"""What a grid world looks like: the rules and an agent's view in words (LLM prompts) and
the whole map as an RGB image (`rgb_array`, the animated episode of the report).

The text view shows only the agent's window, as rows of characters: `Y` the agent, `#`
wall (and outside the map), `@` apple, `G` goal, digits the other agents (their player
number), `.` empty floor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mas.games.base import State

if TYPE_CHECKING:
    from mas.games.grid import GridGame

#: pixels per cell side of `rgb_array`
CELL_PX = 8
_FLOOR, _WALL, _APPLE, _GOAL, _BEAM = (24, 24, 24), (110, 110, 110), (40, 190, 60), (230, 200, 40), (250, 250, 250)
#: agent colours, by seat (cycled)
AGENT_COLOURS = ((230, 60, 60), (70, 130, 240), (240, 140, 30), (180, 80, 220), (40, 200, 200), (240, 100, 180),
                 (150, 110, 60), (200, 200, 120))
_FACING = ("up", "right", "down", "left")


def rules_text(game: "GridGame", agent: int) -> str:
    c, m = game.config, game.map
    n = game.n_agents
    lines = [
        f"You are player {agent + 1} of {n} in a grid world of {m.height} rows and {m.width} columns. "
        "Every step all players move at the same time.",
        f"You see only the cells within {game.radius} steps of you (a {game.window}x{game.window} window).",
    ]
    if m.apples.any():
        lines.append(f"Stepping on an apple (@) collects it: {c.apple_reward:g} point(s). An eaten apple grows back only "
                     f"if apples are left near it (within {c.regrowth_radius} cells): the more apples nearby, the sooner. "
                     "A patch eaten bare never grows back.")
    if m.goals.any():
        lines.append(f"Reaching a goal (G) gives {c.goal_reward:g} point(s) and ends your maze.")
    if c.step_reward:
        lines.append(f"Every step on the map gives {c.step_reward:g} point(s).")
    if game.tagging:
        lines.append(f"'tag' fires a beam {c.beam_length} cells ahead (the way you last moved); the first player it hits "
                     f"leaves the map for {c.tag_timeout} steps.")
    lines.append("Two players never share a cell. Actions (choose by number): "
                 + ", ".join(f"{i} = {name}" for i, name in enumerate(game.action_names(agent))) + ".")
    return "\n".join(lines)


def window_rows(game: "GridGame", state: State, index: int, agent: int) -> list[str]:
    """The agent's window as rows of characters (see the module docstring)."""
    view = game.windows({k: v[index:index + 1] for k, v in state.items()})[0, agent]  # [C, w, w]
    others = {}
    r = game.radius
    pos = state["pos"][index]
    if pos[agent] >= 0:
        row0, col0 = divmod(int(pos[agent]), game.map.width)
        for j, p in enumerate(pos):
            if j != agent and p >= 0:
                row, col = divmod(int(p), game.map.width)
                if abs(row - row0) <= r and abs(col - col0) <= r:
                    others[(row - row0 + r, col - col0 + r)] = str((j + 1) % 10)
    rows = []
    for i in range(game.window):
        chars = []
        for j in range(game.window):
            wall, apple, _, goal = view[:, i, j]
            chars.append("Y" if (i, j) == (r, r) else others.get((i, j)) or ("#" if wall else "@" if apple else "G" if goal else "."))
        rows.append("".join(chars))
    return rows


def situation_text(game: "GridGame", state: State, index: int, agent: int) -> str:
    played = int(state["played"][index])
    if bool(state["finished"][index, agent]):
        return f"Step {played}. You have reached a goal; you wait for the others."
    if int(state["out"][index, agent]) > 0:
        return f"Step {played}. You were tagged out; you come back in {int(state['out'][index, agent])} step(s)."
    row, col = divmod(int(state["pos"][index, agent]), game.map.width)
    lines = [f"Step {played}. You are at row {row}, column {col}, facing {_FACING[int(state['facing'][index, agent])]}."]
    if int(state["collected"][index, agent]):
        lines.append("Last step you collected an apple.")
    if bool(state["tagged"][index].any()):
        lines.append("Last step " + ", ".join(f"player {j + 1}" for j in np.flatnonzero(state["tagged"][index])) + " was tagged out.")
    lines.append("What you see (Y = you, # = wall, @ = apple, G = goal, digits = other players, . = empty; up is the top row):")
    lines.extend(window_rows(game, state, index, agent))
    lines.append("Legal actions: " + ", ".join(f"{i} = {name}" for i, name in enumerate(game.action_names(agent))) + ".")
    return "\n".join(lines)


def rgb_array(game: "GridGame", state: State, index: int) -> np.ndarray:
    """The whole map of copy `index` as uint8 [H * CELL_PX, W * CELL_PX, 3]: walls grey,
    apples green, goals yellow, beams white, agents in their seat's colour."""
    m = game.map
    image = np.empty((m.cells, 3), dtype=np.uint8)
    image[:] = _FLOOR
    image[m.walls.reshape(-1)] = _WALL
    image[m.goals.reshape(-1)] = _GOAL
    image[state["apples"][index]] = _APPLE
    image[state["beam"][index]] = _BEAM
    for seat, p in enumerate(state["pos"][index]):
        if p >= 0:
            image[p] = AGENT_COLOURS[seat % len(AGENT_COLOURS)]
    image = image.reshape(m.height, m.width, 3)
    return np.repeat(np.repeat(image, CELL_PX, axis=0), CELL_PX, axis=1)
