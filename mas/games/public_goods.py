"""Repeated N-player public goods game, optionally with peer punishment.

Contribute step: every agent holds `endowment` and picks action i < `levels`, which puts
`amounts[i] = linspace(0, endowment, levels)[i]` into a common pot. The pot is multiplied
by `multiplier` and shared equally, so agent i gets

    reward_i = endowment - c_i + multiplier * sum_j(c_j) / N.

With 1 < multiplier < N, everyone contributing everything is best for the group, but each
unit an agent contributes returns only multiplier / N to itself: free riding pays.

Punish step (only if `punishment`): every contribute step is followed by one punish step
in which each agent sees the contributions just made and picks action 0 = punish nobody
or 1 + j = punish agent j (punishing oneself is masked out). A punisher pays
`punish_cost` and its target loses `punish_fine`; the punish step's rewards are these
(non-positive) amounts: -punish_cost * [punished someone] - punish_fine * times punished.

Actions: `num_actions` = max(levels, N + 1) with punishment, else `levels`. One index
means "contribute amounts[i]" in a contribute step and "punish nobody / agent i - 1" in a
punish step; the action mask leaves only the indices that mean something in the current
phase, and `action_names` names both meanings ("contribute 2.5 / punish player 2").

Observation (per agent; fractions are of `endowment`, all 0 before the first round):
  [punish-phase flag, own last contribution, mean of the others' last contributions,
   first-round flag (1 until a contribute step has been played)]
  and with punishment also every agent's last contribution in seat order followed by a
  one-hot of the agent's own seat, so a punisher can tell whom action 1 + j hits.
State (global): [punish-phase flag, every agent's last contribution in seat order,
  first-round flag].
Cooperation: the contributed fraction c_i / endowment in contribute steps; NaN in punish
steps (punishing is not scored as cooperation). Measured on the state the action was
taken in.
Capabilities: symmetric; cooperation measure; social optimum N x endowment x max(1,
multiplier) per contribute step. `action_labels` names each index by its meaning in the
phase the summary gives ("contribute 0" or "punish nobody"); `constants` hold the
contribution `amounts` and `punish_nobody`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np
from pydantic import Field

from mas.games.base import MAX_ACTIONS, Capabilities, Game, GameConfigBase, State, StepResult

CONTRIBUTE, PUNISH = 0, 1


class PublicGoodsConfig(GameConfigBase):
    """Scenario parameters of a public goods game."""

    kind: Literal["public_goods"] = "public_goods"
    endowment: float = Field(10.0, gt=0, description="What each agent holds at the start of every round.")
    levels: int = Field(
        5, ge=2, le=MAX_ACTIONS, description=f"Number of contribution choices, evenly spaced from 0 to the endowment (at most {MAX_ACTIONS})."
    )
    multiplier: float = Field(1.6, gt=0, description="Factor the pot is multiplied by before it is shared equally.")
    punishment: bool = Field(False, description="Follow every contribution step with a peer-punishment step.")
    punish_cost: float = Field(1.0, ge=0, description="What punishing someone costs the punisher.")
    punish_fine: float = Field(3.0, ge=0, description="What being punished once costs the target.")


class PublicGoodsGame(Game):
    """See the module docstring."""

    kind = "public_goods"
    PUNISH_NOBODY = 0

    def __init__(self, config: PublicGoodsConfig, n_agents: int) -> None:
        if n_agents < 2:
            raise ValueError(f"public_goods needs at least 2 players, got {n_agents}")
        super().__init__(n_agents)
        self.config = config
        self.punishment = bool(config.punishment)
        self.amounts = np.linspace(0.0, config.endowment, config.levels)
        n = n_agents
        self._num_actions = max(config.levels, n + 1) if self.punishment else config.levels
        contribute = np.zeros(self._num_actions, dtype=np.int8)
        contribute[: config.levels] = 1
        contribute = np.broadcast_to(contribute, (n, self._num_actions))
        punish = contribute  # never used without punishment: the phase stays CONTRIBUTE
        if self.punishment:
            # punish mask per agent: nobody, or anyone but oneself
            punish = np.zeros((n, self._num_actions), dtype=np.int8)
            punish[:, : n + 1] = 1
            punish[np.arange(n), 1 + np.arange(n)] = 0
        self._masks = np.stack([contribute, punish])  # [phase, N, A]
        self._others = (np.ones((n, n)) - np.eye(n)) / (n - 1)  # row i averages over j != i

    # ----- sizes --------------------------------------------------------------------
    @property
    def num_actions(self) -> int:
        return self._num_actions

    @property
    def obs_dim(self) -> int:
        return 4 + (2 * self.n_agents if self.punishment else 0)

    @property
    def state_dim(self) -> int:
        return self.n_agents + 2

    def phase_action_names(self, agent: int, phase: int) -> list[str]:
        """Names of the actions in one phase (CONTRIBUTE or PUNISH); '' where unused."""
        names = [""] * self.num_actions
        if phase == CONTRIBUTE:
            for i, amount in enumerate(self.amounts):
                names[i] = f"contribute {amount:g}"
        else:
            names[self.PUNISH_NOBODY] = "punish nobody"
            for j in range(self.n_agents):
                if j != agent:
                    names[1 + j] = f"punish player {j + 1}"
        return names

    @property
    def phases(self) -> list[int]:
        """The phases this game plays: contribute, and punish when punishment is on."""
        return [CONTRIBUTE, PUNISH] if self.punishment else [CONTRIBUTE]

    def action_names(self, agent: int) -> list[str]:
        per_phase = [self.phase_action_names(agent, p) for p in self.phases]
        return [" / ".join(n for n in names if n) or "(unused)" for names in zip(*per_phase)]

    # ----- dynamics -----------------------------------------------------------------
    def reset(self, batch_size: int, rng: np.random.Generator) -> State:
        return {
            "phase": np.zeros(batch_size, dtype=np.int64),
            "played": np.zeros(batch_size, dtype=np.int64),  # contribute steps played
            "last": np.zeros((batch_size, self.n_agents), dtype=np.float64),  # last contributions
            "punished": np.zeros((batch_size, self.n_agents), dtype=np.int64),  # times punished in last punish step
        }

    def step(self, state: State, actions: np.ndarray, rng: np.random.Generator) -> StepResult:
        phase = state["phase"]
        in_punish = phase == PUNISH  # [B]
        n = self.n_agents

        # contribute rewards (for the copies in a contribute step)
        contrib = self.amounts[np.clip(actions, 0, self.config.levels - 1)]  # [B, N]
        share = self.config.multiplier * contrib.sum(axis=1, keepdims=True) / n
        contribute_rewards = self.config.endowment - contrib + share

        # punish rewards (for the copies in a punish step)
        received = state["punished"]
        rewards = contribute_rewards
        if self.punishment:
            targets = np.clip(actions, 0, n) - 1  # -1 = nobody
            received = (targets[:, :, None] == np.arange(n)[None, None, :]).sum(axis=1)  # [B, N]
            punish_rewards = -self.config.punish_cost * (targets >= 0) - self.config.punish_fine * received
            rewards = np.where(in_punish[:, None], punish_rewards, contribute_rewards)
        new_state = {
            "phase": np.where(in_punish | (not self.punishment), CONTRIBUTE, PUNISH).astype(np.int64),
            "played": state["played"] + (~in_punish),
            "last": np.where(in_punish[:, None], state["last"], contrib),
            "punished": np.where(in_punish[:, None], received, state["punished"]),
        }
        return StepResult(new_state, rewards.astype(np.float32), np.zeros(actions.shape[0], dtype=bool))

    def observe(self, state: State) -> np.ndarray:
        batch, n = state["last"].shape
        fractions = (state["last"] / self.config.endowment).astype(np.float32)  # [B, N]
        parts = [
            _per_agent(state["phase"] == PUNISH, n),
            fractions[:, :, None],
            (fractions @ self._others.T.astype(np.float32))[:, :, None],
            _per_agent(state["played"] == 0, n),
        ]
        if self.punishment:
            parts.append(np.repeat(fractions[:, None, :], n, axis=1))
            parts.append(np.broadcast_to(np.eye(n, dtype=np.float32), (batch, n, n)))
        return np.concatenate(parts, axis=-1)

    def global_state(self, state: State) -> np.ndarray:
        return np.concatenate(
            [
                (state["phase"] == PUNISH).astype(np.float32)[:, None],
                (state["last"] / self.config.endowment).astype(np.float32),
                (state["played"] == 0).astype(np.float32)[:, None],
            ],
            axis=-1,
        )

    def action_mask(self, state: State) -> np.ndarray:
        return self._masks[state["phase"]]  # fancy indexing copies

    # ----- meaning, for metrics and text ---------------------------------------------
    @functools.cached_property
    def capabilities(self) -> Capabilities:
        return Capabilities(symmetric=True, cooperation_measure=True, social_optimum=True, competitive=True)

    def constants(self) -> dict[str, Any]:
        return {"amounts": tuple(float(a) for a in self.amounts), "punish_nobody": self.PUNISH_NOBODY,
                "endowment": float(self.config.endowment)}

    def labeller(self) -> Callable[[int, Mapping[str, Any]], list[str]]:
        contribute = tuple(tuple(self.phase_action_names(s, CONTRIBUTE)) for s in range(self.n_agents))
        # without punishment there is no punish phase (and too few actions to name one)
        punish = tuple(tuple(self.phase_action_names(s, self.phases[-1])) for s in range(self.n_agents))
        names = tuple(tuple(self.action_names(s)) for s in range(self.n_agents))
        return functools.partial(_phase_labels, names, contribute, punish)

    def action_aliases(self, seat: int) -> list[str]:
        return self.action_names(seat) + [n for p in self.phases for n in self.phase_action_names(seat, p) if n]

    def task_text(self) -> str:
        return "Choose your action for this step."

    def social_optimum(self) -> float | None:
        # sum_i reward_i = N e + (m - 1) sum_j c_j: all give everything when m > 1, else nothing
        return self.n_agents * self.config.endowment * max(1.0, self.config.multiplier)

    def episode_optimum(self, run: Any) -> Any:
        # only contribute steps (the scored ones) earn the optimum; punish steps cost
        rounds = run.episodes.drop_duplicates("episode").set_index("episode")["rounds"]
        scored = run.steps[run.steps["cooperation"].notna()].groupby("episode")["step"].nunique()
        return scored.reindex(rounds.index).fillna(0) * self.social_optimum()

    def cooperation(self, state: State, actions: np.ndarray) -> np.ndarray | None:
        fraction = self.amounts[np.clip(actions, 0, self.config.levels - 1)] / self.config.endowment
        return np.where(state["phase"][:, None] == PUNISH, np.nan, fraction)

    def summary(self, state: State, index: int) -> dict[str, Any]:
        played = int(state["played"][index])
        return {
            "phase": "punish" if int(state["phase"][index]) == PUNISH else "contribute",
            "last_contributions": [float(c) for c in state["last"][index]] if played else None,
        }

    def rules_text(self, agent: int) -> str:
        c = self.config
        n = self.n_agents
        amounts = ", ".join(f"{a:g}" for a in self.amounts)
        lines = [
            f"You are player {agent + 1} of {n} in a repeated public goods game.",
            f"Every round each player receives {c.endowment:g} points and, at the same time as the others, "
            f"chooses how much of it to contribute to a common pot: one of {amounts}.",
            f"The pot is multiplied by {c.multiplier:g} and split equally among all {n} players. "
            f"You keep whatever you did not contribute, so your payoff is {c.endowment:g} - your contribution "
            f"+ {c.multiplier:g} x (total contributed) / {n}.",
            f"Each point you contribute returns {c.multiplier / n:.3g} points to you and "
            f"{c.multiplier:g} points to the group as a whole.",
        ]
        if self.punishment:
            lines.append(
                "After every contribution round there is a punishment round: having seen everyone's contributions, "
                "each player may punish one other player or nobody. "
                f"Punishing costs you {c.punish_cost:g} points and takes {c.punish_fine:g} points from the player you punish."
            )
        lines.append("Actions (choose by number):")
        phases = [("Contribution round", CONTRIBUTE)] + ([("Punishment round", PUNISH)] if self.punishment else [])
        for title, phase in phases:
            names = self.phase_action_names(agent, phase)
            lines.append(f"  {title}: " + ", ".join(f"{i} = {name}" for i, name in enumerate(names) if name))
        return "\n".join(lines)

    def situation_text(self, state: State, index: int, agent: int) -> str:
        played = int(state["played"][index])
        phase = int(state["phase"][index])
        last = state["last"][index]
        lines = []
        if played == 0:
            lines.append("No rounds have been played yet.")
        else:
            others = ", ".join(f"player {j + 1} contributed {last[j]:g}" for j in range(self.n_agents) if j != agent)
            total = last.sum()
            share = self.config.multiplier * total / self.n_agents
            which = "This round" if phase == PUNISH else "Last round"
            lines.append(
                f"Rounds played: {played}. {which} you contributed {last[agent]:g}; {others}. "
                f"Total {total:g}; each player's share of the pot was {share:g}."
            )
            if self.punishment and phase == CONTRIBUTE:
                received = int(state["punished"][index, agent])
                lines.append(f"In the last punishment round you were punished {received} time(s).")
        if phase == PUNISH:
            lines.append("It is now the punishment round: choose whom to punish, if anyone.")
        else:
            lines.append("It is now a contribution round: choose how much to contribute.")
        names = self.phase_action_names(agent, phase)
        lines.append("Legal actions: " + ", ".join(f"{i} = {name}" for i, name in enumerate(names) if name) + ".")
        return "\n".join(lines)


def _phase_labels(names: tuple, contribute: tuple, punish: tuple, seat: int, summary: Mapping[str, Any]) -> list[str]:
    """Seat `seat`'s labels in the phase `summary` names (an unused index keeps its full name)."""
    phase = punish if summary.get("phase") == "punish" else contribute
    return [name or names[seat][i] for i, name in enumerate(phase[seat])]


def _per_agent(flag: np.ndarray, n_agents: int) -> np.ndarray:
    """A per-copy flag [B] as a float32 observation column for every agent, [B, N, 1]."""
    return np.repeat(flag.astype(np.float32)[:, None, None], n_agents, axis=1)
