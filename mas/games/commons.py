"""A common-pool resource (a GovSim-style fishery) that regrows logistically.

Every round each agent requests `amounts[a_i]` = linspace(0, max_harvest, levels)[a_i]
from a shared stock S. If the requests add up to more than S, everyone gets the same
fraction of their request (proportional rationing) and the stock is emptied. The rest
R = S - total harvested then regrows logistically and is capped at the capacity K:

    S' = min(K, R + growth_rate * R * (1 - R / K)).

If S' falls below `collapse_threshold` the fishery has collapsed and that copy
terminates. Regrowth is largest at R = K / 2 (the maximum-sustainable-yield level).

Actions: index a means "harvest amounts[a]"; all are always legal.
Rewards: what the agent actually harvested this round (after rationing).
Observation (per agent): [stock / capacity, own last harvest / max_harvest, mean of the
  others' last harvests / max_harvest, first-round flag (1 until a round is played)].
  Harvests are what was actually taken (after rationing); 0 before the first round.
State (global): [stock / capacity, every agent's last harvest / max_harvest in seat
  order, first-round flag].
Cooperation: 1 if the agent's request is at most its sustainable share
  max(0, S - K / 2) / N, i.e. if everyone asking that much would leave the stock at or
  above the maximum-sustainable-yield level K / 2; else 0. Measured on the stock S the
  request was made against.
Capabilities: symmetric; cooperation measure. `constants` hold the harvest `amounts`, the
`capacity` and the `collapse_threshold`. Analysis hooks: the episode optimum is the
largest total catch over the episode's horizon (dynamic programming); run metrics are
survival, time to collapse, over-harvesting and the final stock.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from mas.games.base import MAX_ACTIONS, Capabilities, Game, GameConfigBase, Outcomes, State, StepResult

#: slack for comparing float harvests with the sustainable share (amounts come from linspace)
_EPS = 1e-9


class CommonsConfig(GameConfigBase):
    """Scenario parameters of a common-pool resource game."""

    kind: Literal["commons"] = "commons"
    capacity: float = Field(100.0, gt=0, description="Largest stock the resource can hold (logistic carrying capacity).")
    initial_stock: float | None = Field(None, description="Stock at the start (default: the capacity).")
    growth_rate: float = Field(1.0, gt=0, description="Logistic growth rate r of the remaining stock.")
    max_harvest: float = Field(10.0, gt=0, description="Largest amount one agent may request per round.")
    levels: int = Field(
        11, ge=2, le=MAX_ACTIONS, description=f"Number of harvest choices, evenly spaced from 0 to max_harvest (at most {MAX_ACTIONS})."
    )
    collapse_threshold: float = Field(5.0, ge=0, description="The game ends when the stock after regrowth is below this.")

    @model_validator(mode="after")
    def _check(self) -> "CommonsConfig":
        if self.initial_stock is not None and not 0 < self.initial_stock <= self.capacity:
            raise ValueError(f"initial_stock must be in (0, capacity={self.capacity:g}], got {self.initial_stock:g}")
        if self.collapse_threshold >= self.capacity:
            raise ValueError(f"collapse_threshold must be below capacity={self.capacity:g}, got {self.collapse_threshold:g}")
        return self

    @property
    def start_stock(self) -> float:
        """The initial stock, with the default filled in."""
        return self.capacity if self.initial_stock is None else self.initial_stock


class CommonsGame(Game):
    """See the module docstring."""

    kind = "commons"

    def __init__(self, config: CommonsConfig, n_agents: int) -> None:
        if n_agents < 1:
            raise ValueError(f"commons needs at least 1 player, got {n_agents}")
        super().__init__(n_agents)
        self.config = config
        self.amounts = np.linspace(0.0, config.max_harvest, config.levels)
        n = n_agents
        # row i averages over the others (zeros when playing alone)
        self._others = (np.ones((n, n)) - np.eye(n)) / (n - 1) if n > 1 else np.zeros((1, 1))

    # ----- sizes --------------------------------------------------------------------
    @property
    def num_actions(self) -> int:
        return self.config.levels

    @property
    def obs_dim(self) -> int:
        return 4

    @property
    def state_dim(self) -> int:
        return self.n_agents + 2

    def action_names(self, agent: int) -> list[str]:
        return [f"harvest {a:g}" for a in self.amounts]

    # ----- dynamics -----------------------------------------------------------------
    def reset(self, batch_size: int, rng: np.random.Generator) -> State:
        return {
            "stock": np.full(batch_size, self.config.start_stock, dtype=np.float64),
            "played": np.zeros(batch_size, dtype=np.int64),
            "requested": np.zeros((batch_size, self.n_agents), dtype=np.float64),  # last requests
            "harvested": np.zeros((batch_size, self.n_agents), dtype=np.float64),  # last actual harvests
            "collapsed": np.zeros(batch_size, dtype=bool),
        }

    def regrow(self, remaining: np.ndarray) -> np.ndarray:
        """Logistic regrowth of what is left after harvesting, capped at the capacity."""
        c = self.config
        return np.minimum(c.capacity, remaining + c.growth_rate * remaining * (1.0 - remaining / c.capacity))

    def step(self, state: State, actions: np.ndarray, rng: np.random.Generator) -> StepResult:
        stock = state["stock"]
        requested = self.amounts[actions]  # [B, N]
        total = requested.sum(axis=1)
        # proportional rationing when the requests exceed the stock
        scale = np.where(total > stock, stock / np.maximum(total, 1e-300), 1.0)
        harvested = requested * scale[:, None]
        remaining = np.maximum(stock - harvested.sum(axis=1), 0.0)
        new_stock = self.regrow(remaining)
        # a collapse is final, even if a caller keeps stepping the copy
        collapsed = state["collapsed"] | (new_stock < self.config.collapse_threshold)
        new_state = {
            "stock": new_stock,
            "played": state["played"] + 1,
            "requested": requested,
            "harvested": harvested,
            "collapsed": collapsed,
        }
        return StepResult(new_state, harvested.astype(np.float32), collapsed.copy())

    def observe(self, state: State) -> np.ndarray:
        n = self.n_agents
        harvests = (state["harvested"] / self.config.max_harvest).astype(np.float32)  # [B, N]
        return np.concatenate(
            [
                _per_agent(state["stock"] / self.config.capacity, n),
                harvests[:, :, None],
                (harvests @ self._others.T.astype(np.float32))[:, :, None],
                _per_agent(state["played"] == 0, n),
            ],
            axis=-1,
        )

    def global_state(self, state: State) -> np.ndarray:
        return np.concatenate(
            [
                (state["stock"] / self.config.capacity).astype(np.float32)[:, None],
                (state["harvested"] / self.config.max_harvest).astype(np.float32),
                (state["played"] == 0).astype(np.float32)[:, None],
            ],
            axis=-1,
        )

    # ----- meaning, for metrics and text ---------------------------------------------
    def sustainable_share(self, stock: np.ndarray) -> np.ndarray:
        """Per-agent harvest that leaves the stock at the maximum-sustainable-yield level K/2."""
        return np.maximum(0.0, stock - self.config.capacity / 2) / self.n_agents

    @functools.cached_property
    def capabilities(self) -> Capabilities:
        return Capabilities(symmetric=True, cooperation_measure=True)

    def constants(self) -> dict[str, Any]:
        c = self.config
        return {"amounts": tuple(float(a) for a in self.amounts), "capacity": float(c.capacity),
                "collapse_threshold": float(c.collapse_threshold), "start_stock": float(c.start_stock)}

    def task_text(self) -> str:
        return "Decide how many tons to fish this round."

    def outcomes(self) -> Outcomes:
        """The stock after this round's harvest and regrowth, in three levels (the world model)."""
        return Outcomes(question="What will the stock be after this round's fishing and regrowth?",
                        labels=STOCK_LEVELS, classify=functools.partial(_stock_level, float(self.config.capacity)))

    def round_payoff(self) -> Any:
        """Each agent's catch for joint requests against the summary's stock (rationing included)."""
        return functools.partial(_catches, tuple(float(a) for a in self.amounts))

    def episode_optimum(self, run: Any) -> Any:
        import pandas as pd

        from mas.analysis import game_metrics as gm

        if run.episodes.empty or not len(run.states):
            return None
        rounds = run.episodes.drop_duplicates("episode").set_index("episode")["rounds"].astype(int)
        collapse = gm.time_to_collapse(run.states).reindex(rounds.index)
        limit = gm.round_limit(run.meta.get("scenario", {}).get("rounds", 10))
        horizons = np.where(collapse.notna(), np.maximum(limit, rounds), rounds)
        c = self.config
        best = {h: gm.commons_optimum(c.start_stock, c.capacity, c.growth_rate, self.amounts, self.n_agents,
                                      c.collapse_threshold, int(h)) for h in set(horizons.tolist())}
        return pd.Series([best[h] for h in horizons], index=rounds.index, dtype=float)

    def run_metrics(self, run: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        from mas.analysis import game_metrics as gm
        from mas.analysis import metrics as m

        states = run.states
        if not len(states):
            return {}, {}
        c = self.config
        collapse = gm.time_to_collapse(states)
        over = gm.over_harvest(states, c.start_stock, c.capacity)
        final = states.sort_values("step").groupby("episode")["stock"].last()
        overview = {
            "survival rate": float(collapse.isna().mean()),
            "time to collapse (collapsed episodes)": m.mean_ci(collapse.dropna().tolist()),
            "over-harvest rate": m.mean_ci(over.groupby("episode")["over_harvest"].mean().tolist()),
            "final stock": m.mean_ci(final.tolist()),
        }
        return overview, {"stock": gm.stock_trajectories(states, c.start_stock)}

    def cooperation(self, state: State, actions: np.ndarray) -> np.ndarray | None:
        share = self.sustainable_share(state["stock"])[:, None]
        return (self.amounts[actions] <= share + _EPS).astype(np.float32)

    def summary(self, state: State, index: int) -> dict[str, Any]:
        played = int(state["played"][index])
        return {
            "stock": float(state["stock"][index]),
            "collapsed": bool(state["collapsed"][index]),
            "last_harvests": [float(h) for h in state["harvested"][index]] if played else None,
        }

    def rules_text(self, agent: int) -> str:
        c = self.config
        n = self.n_agents
        others = f"and {n - 1} other fishers share" if n > 1 else "fish"
        lines = [
            f"You are fisher {agent + 1} of {n}. You {others} a lake that holds at most {c.capacity:g} tons of fish; "
            f"it starts with {c.start_stock:g} tons.",
            f"Every round each fisher, at the same time as the others, asks to catch between 0 and {c.max_harvest:g} tons. "
            "If the requests add up to more than the fish in the lake, everyone gets the same fraction of what they "
            "asked for and the lake is emptied.",
            "Your payoff each round is the fish you actually catch.",
            f"After fishing, the fish left in the lake (R tons) reproduce: R + {c.growth_rate:g} x R x (1 - R / {c.capacity:g}) "
            f"tons, never more than {c.capacity:g}. Fish reproduce fastest when the lake is half full "
            f"({c.capacity / 2:g} tons), so a lake fished down to about half recovers the most each round.",
            f"If fewer than {c.collapse_threshold:g} tons are left after reproduction, the fishery collapses and the game ends.",
            "Actions (choose by number): " + ", ".join(f"{i} = {name}" for i, name in enumerate(self.action_names(agent))) + ".",
        ]
        return "\n".join(lines)

    def situation_text(self, state: State, index: int, agent: int) -> str:
        stock = float(state["stock"][index])
        played = int(state["played"][index])
        lines = [f"The lake now holds {stock:.4g} tons of fish (capacity {self.config.capacity:g})."]
        if played == 0:
            lines.append("No rounds have been played yet.")
        else:
            req = state["requested"][index]
            got = state["harvested"][index]
            mine = f"Rounds played: {played}. Last round you asked for {req[agent]:g} tons and caught {got[agent]:.4g}"
            others = "; ".join(f"fisher {j + 1} caught {got[j]:.4g}" for j in range(self.n_agents) if j != agent)
            lines.append(mine + (f"; {others}." if others else "."))
            if req.sum() > got.sum() + _EPS:
                lines.append("The requests exceeded the fish in the lake, so every catch was cut proportionally.")
        if bool(state["collapsed"][index]):
            lines.append("The fishery has collapsed.")
        share = float(self.sustainable_share(state["stock"][index : index + 1])[0])
        lines.append(
            f"If every fisher caught at most {share:.4g} tons this round, the lake would stay at or above half full."
        )
        lines.append("Legal actions: " + ", ".join(f"{i} = {name}" for i, name in enumerate(self.action_names(agent))) + ".")
        return "\n".join(lines)


def _per_agent(values: np.ndarray, n_agents: int) -> np.ndarray:
    """A per-copy value [B] as a float32 observation column for every agent, [B, N, 1]."""
    return np.repeat(values.astype(np.float32)[:, None, None], n_agents, axis=1)


#: the world model's outcome labels of the commons: the stock after a round
STOCK_LEVELS = ("collapsed", "below half", "half or more")


def _stock_level(capacity: float, summary: Any) -> str:
    """A stored summary's stock as one of `STOCK_LEVELS`."""
    if summary.get("collapsed"):
        return STOCK_LEVELS[0]
    return STOCK_LEVELS[1] if float(summary["stock"]) < capacity / 2 else STOCK_LEVELS[2]


def _catches(amounts: tuple[float, ...], summary: Any, joint: np.ndarray) -> np.ndarray:
    """Every agent's catch [K, N] for joint requests [K, N] against the stock (as `step` rations)."""
    requested = np.asarray(amounts)[joint]
    total = requested.sum(axis=1)
    stock = float(summary["stock"])
    scale = np.where(total > stock, stock / np.maximum(total, 1e-300), 1.0)
    return requested * scale[:, None]
