"""Iterated N-player normal-form games with any payoff table.

Prisoner's dilemma, stag hunt, chicken, coordination and matching pennies are all this
game with different tables. Every round all N agents pick one of the same `A` actions at
once and each gets the payoff the table gives to the joint action.

Observation (per agent): one-hot of the last `memory` joint actions, own action first and
the others in seat order, plus a "first round" flag (1 until a round has been played).
State (global): the same history in seat order, plus the flag.
Rewards: the table entry of the joint action, per agent.
Cooperation: 1 when the agent plays the game's `cooperate` action (if named), else 0.
Capabilities: cooperate/defect are the named actions; symmetric when the table is unchanged
by every exchange of players; competitive when it is constant-sum; social optimum: the
best summed payoff of any joint action.

Payoffs are given either as a mapping from a joint action written "C,D" to the list of N
payoffs, or as a nested list of shape [A]*N + [N] (row player first).
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, StringConstraints, model_validator

from mas.games.base import MAX_NAME, Capabilities, Game, GameConfigBase, Name, one_hot, State, StepResult

#: the most entries of a payoff table (joint actions x players, i.e. A^N x N): checked
#: before the table is allocated (two actions: at most 15 players)
MAX_TABLE_ENTRIES = 1_000_000
#: the most actions of a normal-form game
MAX_NF_ACTIONS = 64


class NormalFormConfig(GameConfigBase):
    """Scenario parameters of a normal-form game."""

    kind: Literal["normal_form"] = "normal_form"
    actions: list[Name] = Field(
        min_length=2, max_length=MAX_NF_ACTIONS,
        description=f"Action names, shared by all players (at most {MAX_NF_ACTIONS}, each at most {MAX_NAME} characters).",
    )
    payoffs: dict[str, list[float]] | list[Any] = Field(
        description='Joint action "C,D" -> payoff per player, or a nested list [A]*N + [N]; '
        f"at most {MAX_TABLE_ENTRIES:,} numbers (A^N x N)."
    )
    cooperate: str | None = Field(None, description="The cooperative action, for cooperation metrics and scripted strategies.")
    defect: str | None = Field(None, description="The defecting action, for scripted strategies.")
    memory: int = Field(1, ge=1, le=16, description="How many past joint actions an agent observes.")
    action_descriptions: dict[Name, Annotated[str, StringConstraints(max_length=500)]] = Field(
        default_factory=dict, description="Optional words for each action, for prompts (at most 500 characters each)."
    )

    @model_validator(mode="after")
    def _check(self) -> "NormalFormConfig":
        if len(set(self.actions)) != len(self.actions):
            raise ValueError(f"actions must be distinct, got {self.actions}")
        for field in ("cooperate", "defect"):
            name = getattr(self, field)
            if name is not None and name not in self.actions:
                raise ValueError(f"{field}: '{name}' is not one of the actions {self.actions}")
        if isinstance(self.payoffs, dict):
            lengths = {len(v) for v in self.payoffs.values()}
            if len(lengths) != 1:
                raise ValueError("payoffs: every joint action needs the same number of payoffs (one per player)")
        return self

    @classmethod
    def example(cls) -> "NormalFormConfig":
        """The prisoner's dilemma (T=5, R=3, P=1, S=0): a config for tests and docs."""
        payoffs = {"C,C": [3, 3], "C,D": [0, 5], "D,C": [5, 0], "D,D": [1, 1]}
        return cls(actions=["C", "D"], payoffs=payoffs, cooperate="C", defect="D")

    def n_players(self) -> int:
        """Number of players the payoff table is written for."""
        if isinstance(self.payoffs, dict):
            return len(next(iter(self.payoffs.values())))
        return np.asarray(self.payoffs, dtype=float).shape[-1]

    def table(self, n_agents: int) -> np.ndarray:
        """The payoff tensor, shape [A]*N + [N]; raises ValueError naming what is wrong."""
        num_actions = len(self.actions)
        shape = (num_actions,) * n_agents + (n_agents,)
        if isinstance(self.payoffs, dict):
            # every key first: a mismatch is reported before anything of size A^N is built
            cells = []
            for key, values in self.payoffs.items():
                names = [part.strip() for part in key.split(",")]
                if len(names) != n_agents:
                    raise ValueError(f"payoffs: '{key}' names {len(names)} actions but there are {n_agents} players")
                unknown = [n for n in names if n not in self.actions]
                if unknown:
                    raise ValueError(f"payoffs: '{key}' uses unknown action(s) {unknown}; actions are {self.actions}")
                if len(values) != n_agents:
                    raise ValueError(f"payoffs: '{key}' has {len(values)} payoffs, expected {n_agents}")
                cells.append((tuple(self.actions.index(n) for n in names), values))
            _check_table_size(num_actions, n_agents)
            table = np.full(shape, np.nan)
            for index, values in cells:
                table[index] = values
            missing = [",".join(self.actions[i] for i in idx) for idx in itertools.product(range(num_actions), repeat=n_agents) if np.isnan(table[idx]).any()]
            if missing:
                raise ValueError(f"payoffs: missing joint action(s) {missing[:4]}{' ...' if len(missing) > 4 else ''}")
            return table
        _check_table_size(num_actions, n_agents)
        try:
            table = np.asarray(self.payoffs, dtype=float)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"payoffs: not a rectangular numeric table ({str(exc)[:80]})") from None
        if table.shape != shape:
            raise ValueError(f"payoffs: table has shape {list(table.shape)}, expected {list(shape)} for {n_agents} players")
        if not np.isfinite(table).all():
            raise ValueError("payoffs: every payoff must be a finite number (found NaN or inf)")
        return table


def _check_table_size(num_actions: int, n_agents: int) -> None:
    """Refuse a payoff table of more than `MAX_TABLE_ENTRIES` numbers before it is built."""
    # compare in logs: A ** N itself is a huge integer for 64 actions and 1000 players
    if n_agents * math.log(num_actions) + math.log(n_agents) > math.log(MAX_TABLE_ENTRIES):
        raise ValueError(
            f"payoffs: {n_agents} players with {num_actions} actions need {num_actions}^{n_agents} x {n_agents} payoffs; "
            f"at most {MAX_TABLE_ENTRIES:,} are allowed"
        )


class NormalFormGame(Game):
    """See the module docstring."""

    kind = "normal_form"

    def __init__(self, config: NormalFormConfig, n_agents: int) -> None:
        super().__init__(n_agents)
        self.config = config
        self.names = list(config.actions)
        self.table = config.table(n_agents).astype(np.float32)
        self.memory = config.memory
        self.cooperate = self.names.index(config.cooperate) if config.cooperate else None
        self.defect = self.names.index(config.defect) if config.defect else None
        # Seat order seen by agent i: itself first, then the others in seat order.
        self._view = np.array([[i] + [j for j in range(n_agents) if j != i] for i in range(n_agents)])

    @property
    def num_actions(self) -> int:
        return len(self.names)

    @property
    def obs_dim(self) -> int:
        return self.memory * self.n_agents * self.num_actions + 1

    @property
    def state_dim(self) -> int:
        return self.obs_dim

    def action_names(self, agent: int) -> list[str]:
        return list(self.names)

    def reset(self, batch_size: int, rng: np.random.Generator) -> State:
        return {
            "history": np.full((batch_size, self.memory, self.n_agents), -1, dtype=np.int64),
            "played": np.zeros(batch_size, dtype=np.int64),
        }

    def payoffs(self, actions: np.ndarray) -> np.ndarray:
        """Table lookup for joint actions int [B, N] -> float32 [B, N]."""
        return self.table[tuple(actions[:, i] for i in range(self.n_agents))]

    def step(self, state: State, actions: np.ndarray, rng: np.random.Generator) -> StepResult:
        if self.memory == 1:  # nothing older to keep (a copy: the caller keeps its actions)
            history = actions[:, None, :].copy()
        else:
            history = np.concatenate([actions[:, None, :], state["history"][:, :-1, :]], axis=1)
        new_state = {"history": history, "played": state["played"] + 1}
        terminated = np.zeros(actions.shape[0], dtype=bool)
        return StepResult(new_state, self.payoffs(actions), terminated)

    def observe(self, state: State) -> np.ndarray:
        history = state["history"]  # [B, M, N]
        batch = history.shape[0]
        seen = history[:, :, self._view]  # [B, M, N(viewer), N(seat in view)]
        encoded = one_hot(seen, self.num_actions).transpose(0, 2, 1, 3, 4).reshape(batch, self.n_agents, -1)
        first = (state["played"] == 0).astype(np.float32)[:, None, None].repeat(self.n_agents, axis=1)
        return np.concatenate([encoded, first], axis=-1)

    #: `played` is the only counter: the history alone decides a step (`Game.memo_counters`)
    memo_counters = ("played",)

    def observe_key(self, state: State) -> tuple[bytes, tuple[bool, ...]]:
        # what `observe` reads: the history and whether a round was played (not how many)
        return state["history"].tobytes(), tuple(p == 0 for p in state["played"].tolist())

    def global_state(self, state: State) -> np.ndarray:
        batch = state["history"].shape[0]
        encoded = one_hot(state["history"], self.num_actions).reshape(batch, -1)
        first = (state["played"] == 0).astype(np.float32)[:, None]
        return np.concatenate([encoded, first], axis=-1)

    @functools.cached_property
    def capabilities(self) -> Capabilities:
        totals = self.table.astype(float).sum(axis=-1)
        return Capabilities(
            cooperate=self.cooperate,
            defect=self.defect,
            symmetric=self.is_symmetric(),
            cooperation_measure=self.cooperate is not None,
            social_optimum=True,
            competitive=bool(np.allclose(totals, totals.flat[0])),
        )

    def is_symmetric(self) -> bool:
        """Whether the payoff table is unchanged by every exchange of players."""
        table = self.table.astype(float)
        n = self.n_agents
        for p in range(n - 1):  # adjacent exchanges generate every permutation of players
            swapped = np.swapaxes(table, p, p + 1)[..., [*range(p), p + 1, p, *range(p + 2, n)]]
            if not np.array_equal(swapped, table):
                return False
        return True

    def social_optimum(self) -> float | None:
        return float(self.table.astype(float).sum(axis=-1).max())

    def stage_payoffs(self) -> np.ndarray | None:
        return self.table.astype(float)

    def task_text(self) -> str:
        return "Choose your move for this round."

    def cooperation(self, state: State, actions: np.ndarray) -> np.ndarray | None:
        if self.cooperate is None:
            return None
        return (actions == self.cooperate).astype(np.float32)

    def summary(self, state: State, index: int) -> dict[str, Any]:
        return {}

    def rules_text(self, agent: int) -> str:
        lines = [
            f"You are player {agent + 1} of {self.n_agents} in a repeated game. Every round all players choose one action at the same time.",
            "Actions: " + ", ".join(self._describe_action(a) for a in self.names) + ".",
            "Payoffs for each combination of actions (your payoff first):",
        ]
        for idx in itertools.product(range(self.num_actions), repeat=self.n_agents):
            # idx is in this agent's view order: own action first, then the others
            seat_actions = [0] * self.n_agents
            for pos, seat in enumerate(self._view[agent]):
                seat_actions[seat] = idx[pos]
            pay = self.table[tuple(seat_actions)]
            others = [pay[s] for s in self._view[agent][1:]]
            lines.append(
                f"  you {self.names[idx[0]]}, others {','.join(self.names[i] for i in idx[1:])}: "
                f"you get {pay[agent]:g}, others get {', '.join(f'{o:g}' for o in others)}"
            )
        return "\n".join(lines)

    def _describe_action(self, name: str) -> str:
        words = self.config.action_descriptions.get(name)
        return f"{name} ({words})" if words else name

    def situation_text(self, state: State, index: int, agent: int) -> str:
        played = int(state["played"][index])
        if played == 0:
            return "No rounds have been played yet."
        last = state["history"][index, 0]
        others = ", ".join(f"player {j + 1} played {self.names[last[j]]}" for j in range(self.n_agents) if j != agent)
        return f"Rounds played: {played}. Last round you played {self.names[last[agent]]}; {others}."
