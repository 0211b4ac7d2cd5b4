"""A grid world: mazes, and the commons harvest with or without tagging.

The map is given in the scenario as rows of characters (`mas.games.grid_map`: walls `#`,
apples `@`/`A`, goals `G`, spawn points `S`/`P`). Agents start on distinct spawn points
(drawn at random each episode) and every step all of them act at once.

Actions: 0 stay, 1 up, 2 down, 3 left, 4 right, and 5 tag when `tag_timeout` > 0. A move
into a wall or off the map leaves the agent where it is but turns it to face that way.
Two agents never share a cell: when several move into one cell, one chosen at random gets
it and the others stay; an agent cannot move into a cell whose occupant stays, and two
agents cannot swap cells.
Apples: an agent that steps on an apple collects it (`apple_reward`). An empty apple cell
with no agent on it regrows an apple each step with probability `regrowth[L]`, L the number
of apples within Euclidean distance `regrowth_radius` (the last entry for every larger L):
a patch harvested bare never comes back (the commons harvest of Perolat et al. 2017).
Tagging: `tag` fires a beam of `beam_length` cells ahead (the way the agent last moved;
walls stop it); the first agent it meets leaves the map for `tag_timeout` steps and then
comes back on a free spawn point (with tagging, the Gathering game of Leibo et al. 2017).
Goals: an agent that steps on a goal gets `goal_reward` and leaves the map; the episode
ends (terminated) when every agent has reached a goal. Every agent on the map also gets
`step_reward` each step (e.g. a small cost that makes mazes shortest-path problems).
Agents off the map (tagged out or done) may only stay.

Observation (per agent, egocentric and partial): a (2 r + 1)^2 window around the agent,
r = `view_radius`, with four channels (wall, apple, other agent, goal; outside the map is
wall), flattened channel by channel, then the agent's row and column scaled to [0, 1];
with tagging also an off-the-map flag and the facing direction one-hot. All zeros but
the flag while off the map.
State (global): the apple layer, then each agent's scaled row, column and on-map flag.
Text: an LLM agent is shown its window as characters (`mas.games.grid_render`).
Capabilities: symmetric (spawn points are drawn at random); not competitive; hidden
information when the window cannot see the whole map. The summary (stored each step:
positions, apples, tag-outs; for the analysis and the animation) is private to the store.
Analysis hooks: efficiency, equality, sustainability and peace (Perolat et al. 2017).
A one-agent map with goals and no apples is a tabular MDP (`tabular_mdp`), solved exactly
by `mas solve`.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, StringConstraints, model_validator

from mas.games.base import Capabilities, Game, GameConfigBase, State, StepResult, one_hot
from mas.games.grid_map import MAX_SIDE, GridMap, count_near, parse_map

STAY, UP, DOWN, LEFT, RIGHT, TAG = range(6)
ACTION_NAMES = ("stay", "up", "down", "left", "right", "tag")
#: action -> facing direction (0 up, 1 right, 2 down, 3 left), -1 for no move
_MOVE_DIRECTION = np.array([-1, 0, 2, 3, 1, -1])
#: window channels
CHANNELS = ("wall", "apple", "agent", "goal")


class GridConfig(GameConfigBase):
    """Scenario parameters of a grid world."""

    kind: Literal["grid"] = "grid"
    map: list[Annotated[str, StringConstraints(max_length=MAX_SIDE)]] = Field(
        max_length=MAX_SIDE,
        description=f"Rows of cells: # wall, . empty, @ or A apple, G goal, S or P spawn point (at most {MAX_SIDE}x{MAX_SIDE}).",
    )
    view_radius: int = Field(2, ge=1, le=10, description="Agents see the (2r+1)x(2r+1) cells around them.")
    apple_reward: float = Field(1.0, description="Reward for collecting an apple.")
    goal_reward: float = Field(1.0, description="Reward for reaching a goal.")
    step_reward: float = Field(0.0, description="Reward every step for each agent on the map (negative: a cost of time).")
    regrowth: list[Annotated[float, Field(ge=0.0, le=1.0)]] = Field(
        [0.0, 0.01, 0.01, 0.05, 0.05, 0.1], min_length=1, max_length=64,
        description="Probability that an empty apple cell regrows per step, by the number of apples nearby (last entry: that many or more).",
    )
    regrowth_radius: int = Field(2, ge=1, le=5, description="Apples within this distance count as nearby.")
    tag_timeout: int = Field(0, ge=0, le=100_000, description="Steps a tagged agent stays off the map; 0: no tag action.")
    beam_length: int = Field(5, ge=1, le=MAX_SIDE, description="Cells the tagging beam reaches ahead of the agent.")

    @model_validator(mode="after")
    def _check_map(self) -> "GridConfig":
        parse_map(self.map)
        return self

    @classmethod
    def example(cls) -> "GridConfig":
        """A small harvest with tagging: a config for tests and docs."""
        return cls(map=["#######", "#S.@@S#", "#.@@@.#", "#S.@.S#", "#######"], tag_timeout=3, beam_length=3)


class GridGame(Game):
    """See the module docstring."""

    kind = "grid"

    def __init__(self, config: GridConfig, n_agents: int) -> None:
        super().__init__(n_agents)
        self.config = config
        self.map: GridMap = parse_map(config.map)
        if not 1 <= n_agents <= len(self.map.spawns):
            raise ValueError(f"the map has {len(self.map.spawns)} spawn point(s) for {n_agents} agents; add S cells")
        self.tagging = config.tag_timeout > 0
        self.radius = config.view_radius
        self.has_goals = bool(self.map.goals.any())
        r, m = self.radius, self.map
        # static layers with the outside as wall, padded by the view radius: [H + 2r, W + 2r]
        self._walls = np.pad(m.walls, r, constant_values=True).astype(np.float32)
        self._goals = np.pad(m.goals, r, constant_values=False).astype(np.float32)
        self._regrowth = np.asarray(config.regrowth)
        self._spawns = np.asarray(m.spawns, dtype=np.int64)
        self._scale = np.array([max(m.height - 1, 1), max(m.width - 1, 1)], dtype=np.float32)

    # ----- sizes --------------------------------------------------------------------
    @property
    def num_actions(self) -> int:
        return 6 if self.tagging else 5

    @property
    def window(self) -> int:
        return 2 * self.radius + 1

    @property
    def obs_dim(self) -> int:
        return len(CHANNELS) * self.window**2 + 2 + (5 if self.tagging else 0)

    @property
    def state_dim(self) -> int:
        return self.map.cells + 3 * self.n_agents

    def action_names(self, agent: int) -> list[str]:
        return list(ACTION_NAMES[: self.num_actions])

    # ----- dynamics -----------------------------------------------------------------
    def reset(self, batch_size: int, rng: np.random.Generator) -> State:
        n, b = self.n_agents, batch_size
        order = rng.random((b, len(self._spawns))).argsort(axis=1)[:, :n]
        zeros = np.zeros((b, n), dtype=np.int64)
        return {
            "pos": self._spawns[order], "facing": zeros.copy(), "out": zeros.copy(), "collected": zeros.copy(),
            "finished": np.zeros((b, n), dtype=bool), "tagged": np.zeros((b, n), dtype=bool),
            "apples": np.repeat(self.map.apples.reshape(1, -1), b, axis=0),
            "beam": np.zeros((b, self.map.cells), dtype=bool), "played": np.zeros(b, dtype=np.int64),
        }

    def step(self, state: State, actions: np.ndarray, rng: np.random.Generator) -> StepResult:
        c, m = self.config, self.map
        batch, n = actions.shape
        rows = np.arange(batch)[:, None]
        pos, apples = state["pos"], state["apples"].copy()
        on = pos >= 0
        rewards = np.where(on, c.step_reward, 0.0)
        direction = _MOVE_DIRECTION[actions]
        moving = on & (direction >= 0)
        facing = np.where(moving, direction, state["facing"])
        target = np.where(moving, m.neighbour(pos, np.maximum(direction, 0)), -1)
        pos = self.resolve_moves(pos, np.where(target >= 0, target, pos), rng)
        on = pos >= 0
        # apples under the agents are collected
        cell = np.where(on, pos, 0)
        collected = on & apples[rows, cell]
        apples[rows, cell] &= ~collected
        rewards += c.apple_reward * collected
        # goals end an agent's maze
        reached = on & m.goals.reshape(-1)[cell]
        rewards += c.goal_reward * reached
        finished = state["finished"] | reached
        pos = np.where(reached, -1, pos)
        # tag-outs: those already out count down; beams fired now tag others out
        was_out = state["out"] > 0
        out = np.where(was_out, state["out"] - 1, 0)
        if self.tagging:
            tagged, beam = self.fire(pos, facing, (actions == TAG) & (pos >= 0))
        else:
            tagged, beam = np.zeros((batch, n), dtype=bool), np.zeros_like(state["beam"])
        out = np.where(tagged, c.tag_timeout, out)
        pos = np.where(tagged, -1, pos)
        pos, out = self.respawn(pos, out, was_out & (out == 0), rng)
        apples = self.regrow(apples, pos, rng)
        new_state = {
            "pos": pos, "facing": facing, "out": out, "collected": collected.astype(np.int64), "finished": finished,
            "tagged": tagged, "apples": apples, "beam": beam, "played": state["played"] + 1,
        }
        terminated = finished.all(axis=1) if self.has_goals else np.zeros(batch, dtype=bool)
        return StepResult(new_state, rewards.astype(np.float32), terminated)

    def resolve_moves(self, current: np.ndarray, target: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Where each agent ends up when all move at once (see the module docstring)."""
        n = current.shape[1]
        if n == 1:
            return target
        priority = rng.random(current.shape)
        others = ~np.eye(n, dtype=bool)
        final = target.copy()
        for _ in range(n):  # each pass sends at least one mover back, so n passes suffice
            moved = final != current
            same = (final[:, :, None] == final[:, None, :]) & (final[:, :, None] >= 0) & others
            loses = same & moved[:, :, None] & (~moved[:, None, :] | (priority[:, None, :] > priority[:, :, None]))
            swap = (final[:, :, None] == current[:, None, :]) & (final[:, None, :] == current[:, :, None]) & others
            revert = moved & (loses | (swap & moved[:, None, :])).any(axis=2)
            if not revert.any():
                break
            final = np.where(revert, current, final)
        return final

    def fire(self, pos: np.ndarray, facing: np.ndarray, firing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(agents tagged [B, N], beam cells [B, cells]) of the beams `firing` agents fire."""
        batch = pos.shape[0]
        hit = np.zeros(pos.shape, dtype=bool)
        beam = np.zeros((batch, self.map.cells), dtype=bool)
        cell, travelling = np.where(firing, pos, -1), firing.copy()
        for _ in range(self.config.beam_length):
            cell = np.where(travelling, self.map.neighbour(cell, facing), -1)
            travelling &= cell >= 0
            if not travelling.any():
                break
            beam[np.nonzero(travelling)[0], cell[travelling]] = True
            met = (pos[:, None, :] == cell[:, :, None]) & travelling[:, :, None] & (pos[:, None, :] >= 0)  # [B, firer, target]
            hit |= met.any(axis=1)
            travelling &= ~met.any(axis=2)  # a beam stops at the first agent
        return hit, beam

    def respawn(self, pos: np.ndarray, out: np.ndarray, due: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Agents `due` back on the map take a random free spawn point (none free: next step)."""
        pos, out = pos.copy(), out.copy()
        for i in np.flatnonzero(due.any(axis=0)):
            free = (self._spawns[None, :, None] != pos[:, None, :]).all(axis=2)  # [B, spawns]
            choice = np.argmax(rng.random(free.shape) * free, axis=1)
            ok = due[:, i] & free.any(axis=1)
            pos[:, i] = np.where(ok, self._spawns[choice], pos[:, i])
            out[:, i] = np.where(due[:, i] & ~ok, 1, out[:, i])
        return pos, out

    def regrow(self, apples: np.ndarray, pos: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Apples after one step of regrowth on empty, unoccupied apple cells."""
        if not self.map.apples.any():
            return apples
        m = self.map
        batch = apples.shape[0]
        near = count_near(apples.reshape(batch, m.height, m.width), self.config.regrowth_radius).reshape(batch, -1)
        chance = self._regrowth[np.minimum(near, len(self._regrowth) - 1)]
        occupied = np.zeros_like(apples)
        on = pos >= 0
        occupied[np.nonzero(on)[0], pos[on]] = True
        candidates = m.apples.reshape(1, -1) & ~apples & ~occupied
        return apples | (candidates & (rng.random(apples.shape) < chance))

    def action_mask(self, state: State) -> np.ndarray:
        mask = np.ones(state["pos"].shape + (self.num_actions,), dtype=np.int8)
        mask[state["pos"] < 0, 1:] = 0  # off the map: stay only
        return mask

    # ----- what agents see ------------------------------------------------------------
    def windows(self, state: State) -> np.ndarray:
        """Each agent's egocentric window, float32 [B, N, channels, w, w] (zeros off the map)."""
        m, r, w = self.map, self.radius, self.window
        pos = state["pos"]
        batch = pos.shape[0]
        on = pos >= 0
        agents = np.zeros((batch, m.cells), dtype=np.float32)
        agents[np.nonzero(on)[0], pos[on]] = 1.0
        dynamic = np.stack([state["apples"].astype(np.float32), agents], axis=1).reshape(batch, 2, m.height, m.width)
        dynamic = np.pad(dynamic, ((0, 0), (0, 0), (r, r), (r, r)))
        layers = np.concatenate([np.broadcast_to(self._walls, (batch, 1) + self._walls.shape), dynamic,
                                 np.broadcast_to(self._goals, (batch, 1) + self._goals.shape)], axis=1)  # [B, C, H+2r, W+2r]
        row, col = np.divmod(np.where(on, pos, 0), m.width)
        offsets = np.arange(w)
        rr = (row[:, :, None] + offsets)[:, :, :, None]  # [B, N, w, 1] (window top-left = padded (row, col))
        cc = (col[:, :, None] + offsets)[:, :, None, :]
        bb = np.arange(batch)[:, None, None, None]
        view = layers[bb, :, rr, cc]  # [B, N, w, w, C]
        view = np.moveaxis(view, -1, 2).copy()
        view[:, :, 2, r, r] = 0.0  # the agent itself is not "another agent"
        view[~on] = 0.0
        return view

    def observe(self, state: State) -> np.ndarray:
        pos = state["pos"]
        batch, n = pos.shape
        on = pos >= 0
        where = np.stack(np.divmod(np.where(on, pos, 0), self.map.width), axis=-1) / self._scale
        parts = [self.windows(state).reshape(batch, n, -1), np.where(on[..., None], where, 0.0).astype(np.float32)]
        if self.tagging:
            parts += [(state["out"] > 0).astype(np.float32)[..., None], one_hot(np.where(on, state["facing"], -1), 4)]
        return np.concatenate(parts, axis=-1).astype(np.float32)

    def global_state(self, state: State) -> np.ndarray:
        pos = state["pos"]
        on = pos >= 0
        where = np.stack(np.divmod(np.where(on, pos, 0), self.map.width), axis=-1) / self._scale
        agents = np.concatenate([np.where(on[..., None], where, 0.0), on[..., None]], axis=-1).reshape(pos.shape[0], -1)
        return np.concatenate([state["apples"].astype(np.float32), agents.astype(np.float32)], axis=-1)

    # ----- meaning, text and analysis ---------------------------------------------------
    @functools.cached_property
    def capabilities(self) -> Capabilities:
        m = self.map
        return Capabilities(symmetric=True, competitive=False, hidden_information=self.radius < max(m.height, m.width) - 1,
                            private={key: frozenset() for key in _SUMMARY_KEYS})

    def constants(self) -> dict[str, Any]:
        return {"height": self.map.height, "width": self.map.width, "view_radius": self.radius, "tagging": self.tagging}

    def task_text(self) -> str:
        return "Choose your move for this step."

    def summary(self, state: State, index: int) -> dict[str, Any]:
        width = self.map.width
        pos = state["pos"][index]
        return {
            "positions": [list(divmod(int(p), width)) if p >= 0 else None for p in pos],
            "apples": int(state["apples"][index].sum()),
            "collected": [int(x) for x in state["collected"][index]],
            "out": [int(x) for x in state["out"][index]],
            "tagged": [bool(x) for x in state["tagged"][index]],
            "finished": [bool(x) for x in state["finished"][index]],
            # the cell layers a picture needs, as hex bitmasks (40 characters for 160 cells); a leading
            # underscore: for `summary_rgb`, not shown in the transcript
            **({"_apple_bits": _bits(state["apples"][index])} if self.map.apples.any() else {}),
            **({"_beam_bits": _bits(state["beam"][index])} if self.tagging else {}),
        }

    def summary_rgb(self, summary: dict[str, Any]) -> np.ndarray | None:
        """`rgb_array` of a stored summary (positions, apple and beam bitmasks)."""
        width, cells = self.map.width, self.map.cells
        positions = summary.get("positions")
        if not isinstance(positions, list) or len(positions) != self.n_agents:
            return None
        pos = np.array([[-1 if p is None else int(p[0]) * width + int(p[1]) for p in positions]])
        empty = np.zeros((1, cells), dtype=bool)
        state = {"pos": pos, "apples": _unbits(summary.get("_apple_bits"), cells, empty),
                 "beam": _unbits(summary.get("_beam_bits"), cells, empty)}
        return self.rgb_array(state, 0)

    def rules_text(self, agent: int) -> str:
        from mas.games.grid_render import rules_text

        return rules_text(self, agent)

    def situation_text(self, state: State, index: int, agent: int) -> str:
        from mas.games.grid_render import situation_text

        return situation_text(self, state, index, agent)

    def rgb_array(self, state: State, index: int) -> np.ndarray | None:
        from mas.games.grid_render import rgb_array

        return rgb_array(self, state, index)

    def tabular_mdp(self) -> Any:
        """A one-agent map with goals and no apples as a tabular MDP over its cells (start:
        the first spawn point); None for any other map."""
        m, c = self.map, self.config
        if self.n_agents != 1 or not self.has_goals or m.apples.any():
            return None
        from mas.solve.mdp import TabularMDP

        cells = np.flatnonzero(~m.walls.reshape(-1) & ~m.goals.reshape(-1))
        state_of = np.full(m.cells, -1)
        state_of[cells] = np.arange(len(cells))
        direction = _MOVE_DIRECTION[: self.num_actions]
        after = m.neighbour(cells[:, None], np.maximum(direction, 0)[None, :])  # [S, A]
        after = np.where((direction[None, :] >= 0) & (after >= 0), after, cells[:, None])
        ends = m.goals.reshape(-1)[after]
        reward = c.step_reward + c.goal_reward * ends
        next_state = np.where(ends, np.arange(len(cells))[:, None], state_of[after])
        labels = tuple(f"row {r}, column {col}" for r, col in (divmod(int(x), m.width) for x in cells))
        return TabularMDP(next_state, reward.astype(float), ends, int(state_of[m.spawns[0]]), labels, tuple(self.action_names(0)))

    def run_metrics(self, run: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        from mas.analysis.grid_metrics import social_outcomes

        return social_outcomes(run, self.n_agents)


_SUMMARY_KEYS = ("positions", "apples", "collected", "out", "tagged", "finished", "_apple_bits", "_beam_bits")


def _bits(cells: np.ndarray) -> str:
    """A boolean cell layer as a hex bitmask (row-major cells, 8 per byte)."""
    return np.packbits(cells.astype(bool)).tobytes().hex()


def _unbits(text: Any, cells: int, default: np.ndarray) -> np.ndarray:
    """The [1, cells] layer of a `_bits` string; `default` when there is none."""
    if not isinstance(text, str):
        return default
    return np.unpackbits(np.frombuffer(bytes.fromhex(text), dtype=np.uint8))[:cells].astype(bool)[None, :]
