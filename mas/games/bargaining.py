"""Alternating-offers bargaining (Rubinstein) over a pie, with a deadline.

Two players split a pie worth `pie`, cut into `units` equal whole units. Seat 0 proposes
first: an offer of j units gives j units to the other player and keeps the rest. The
players then take turns. The player who has an offer in front of them (the "mover") may
accept it, which ends the game with that split, or make a counter-offer, which rejects it
and hands the move to the other player. At most `max_offers` offers are made; the
responder to the last one may only accept or reject, and rejecting gives both players
`disagreement`. `max_offers=1` is the ultimatum game. Every offer after the first finds
the pie shrunk by `discount`: offer number t (1-based) splits `pie * discount**(t-1)`.

Actions (the same for both seats): WAIT=0, ACCEPT=1, REJECT=2, and OFFER0+j = "offer j
units to the other player" for j in 0..units. Legal actions: the idle player may only
WAIT; the mover offers at the start, accepts or counter-offers before the deadline, and
accepts or rejects at it. After the game ended both may only WAIT.

Observation (per agent): [is my turn, an offer is on the table, my share of the pie if the
current offer is accepted (fraction of the pie, 0 if none), offers made / max_offers, at
the deadline (the mover may only accept or reject), the fraction of the pie left if the
current offer is accepted (1 before any offer)].
State (global): [one-hot mover seat (2), an offer is on the table, fraction offered to the
mover, offers made / max_offers, at the deadline, fraction of the pie left].
Rewards: 0 while bargaining; on acceptance the acceptor gets j/units of the shrunk pie and
the proposer the rest; on rejection at the deadline both get `disagreement`. Terminated
when an offer is accepted or the last one is rejected.
Capabilities: sequential, roles (proposer, responder: who offers first). `constants` hold
the action indices `wait`, `accept`, `reject`, `offer0` and the `units`. Analysis hooks:
the episode optimum is max(pie, 2 x disagreement); run metrics are the agreement rate,
efficiency, fairness and offers made.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

import numpy as np
from pydantic import Field

from mas.games.base import Capabilities, Game, GameConfigBase, State, StepResult


class BargainingConfig(GameConfigBase):
    """Scenario parameters of an alternating-offers bargaining game."""

    kind: Literal["bargaining"] = "bargaining"
    pie: float = Field(10.0, gt=0, description="Worth of the whole pie at the first offer.")
    units: int = Field(10, ge=1, le=1000, description="Offers are whole units of the pie; the pie is cut into this many.")
    max_offers: int = Field(4, ge=1, le=1000, description="Deadline: the most offers that can be made (1 = ultimatum game; at most 1000).")
    discount: float = Field(1.0, gt=0, le=1, description="The pie shrinks by this factor for every offer after the first.")
    disagreement: float = Field(0.0, description="Payoff to both players when the last offer is rejected.")


class BargainingGame(Game):
    """See the module docstring."""

    kind = "bargaining"

    WAIT = 0
    ACCEPT = 1
    REJECT = 2
    OFFER0 = 3

    def __init__(self, config: BargainingConfig, n_agents: int) -> None:
        if int(n_agents) != 2:
            raise ValueError(f"n_agents: bargaining is a two-player game, got {n_agents} agents")
        super().__init__(n_agents)
        self.config = config
        self.units = config.units
        self.max_offers = config.max_offers

    @property
    def num_actions(self) -> int:
        return self.OFFER0 + self.units + 1

    @property
    def obs_dim(self) -> int:
        return 6

    @property
    def state_dim(self) -> int:
        return 7

    def action_names(self, agent: int) -> list[str]:
        return ["wait", "accept", "reject"] + [f"offer {j} of {self.units}" for j in range(self.units + 1)]

    # ----- dynamics -----------------------------------------------------------------
    def reset(self, batch_size: int, rng: np.random.Generator) -> State:
        return {
            "offers": np.zeros(batch_size, dtype=np.int64),  # offers made so far
            "mover": np.zeros(batch_size, dtype=np.int64),  # seat whose turn it is
            "offer": np.full(batch_size, -1, dtype=np.int64),  # units to the mover, -1 if none
            "ended": np.zeros(batch_size, dtype=bool),
            "agreed": np.zeros(batch_size, dtype=bool),
            "shares": np.zeros((batch_size, 2), dtype=np.float32),  # final payoffs once ended
        }

    def pie_at(self, offers: np.ndarray) -> np.ndarray:
        """Worth of the pie split by offer number `offers` (1-based; 0 counts as 1)."""
        return (self.config.pie * self.config.discount ** np.maximum(offers - 1, 0)).astype(np.float32)

    def step(self, state: State, actions: np.ndarray, rng: np.random.Generator) -> StepResult:
        batch = actions.shape[0]
        rows = np.arange(batch)
        offers, mover, offer, ended = state["offers"], state["mover"], state["offer"], state["ended"]
        act = actions[rows, mover]  # only the mover's action matters
        live = ~ended
        accept = live & (act == self.ACCEPT) & (offer >= 0)
        reject = live & (act == self.REJECT)
        counter = live & (act >= self.OFFER0) & (offers < self.max_offers)

        # Acceptance: the mover takes the offered units of the pie as it stands now.
        pie = self.pie_at(offers)
        taken = np.maximum(offer, 0).astype(np.float32) / self.units * pie
        deal = np.zeros((batch, 2), dtype=np.float32)
        deal[rows, mover] = taken
        deal[rows, 1 - mover] = pie - taken
        rewards = np.where(accept[:, None], deal, 0.0)
        rewards = np.where(reject[:, None], np.float32(self.config.disagreement), rewards).astype(np.float32)

        finished = accept | reject
        new_state = {
            "offers": offers + counter,
            "mover": np.where(counter, 1 - mover, mover),
            "offer": np.where(counter, act - self.OFFER0, offer),
            "ended": ended | finished,
            "agreed": state["agreed"] | accept,
            "shares": np.where(finished[:, None], rewards, state["shares"]).astype(np.float32),
        }
        return StepResult(new_state, rewards, new_state["ended"].copy())

    def action_mask(self, state: State) -> np.ndarray:
        offers, mover, ended = state["offers"], state["mover"], state["ended"]
        batch = offers.shape[0]
        mask = np.zeros((batch, 2, self.num_actions), dtype=np.int8)
        mask[:, :, self.WAIT] = 1
        rows = np.arange(batch)
        live = ~ended
        # The mover has something to do, so waiting is not an option for them.
        mask[rows, mover, self.WAIT] = ended.astype(np.int8)
        mask[rows, mover, self.ACCEPT] = (live & (offers > 0)).astype(np.int8)
        mask[rows, mover, self.REJECT] = (live & (offers >= self.max_offers)).astype(np.int8)
        can_offer = (live & (offers < self.max_offers)).astype(np.int8)
        mask[rows, mover, self.OFFER0 :] = can_offer[:, None]
        return mask

    # ----- observations -------------------------------------------------------------
    def _features(self, state: State) -> dict[str, np.ndarray]:
        """Quantities shared by observe and global_state, float32 [B]."""
        offers, offer = state["offers"], state["offer"]
        has_offer = offer >= 0
        return {
            "has_offer": has_offer.astype(np.float32),
            "to_mover": np.where(has_offer, offer / self.units, 0.0).astype(np.float32),
            "progress": (offers / self.max_offers).astype(np.float32),
            "deadline": ((offers >= self.max_offers) & ~state["ended"]).astype(np.float32),
            "pie_left": self.pie_at(offers) / np.float32(self.config.pie),
        }

    def observe(self, state: State) -> np.ndarray:
        f = self._features(state)
        seats = np.arange(2)[None, :]
        my_turn = (state["mover"][:, None] == seats) & ~state["ended"][:, None]
        # Frame the offer for the viewer: the mover would get it, the proposer the rest.
        is_mover = state["mover"][:, None] == seats
        mine = np.where(is_mover, f["to_mover"][:, None], 1.0 - f["to_mover"][:, None])
        mine = np.where(f["has_offer"][:, None] > 0, mine, 0.0)
        per_batch = [f["progress"], f["deadline"], f["pie_left"]]
        shared = np.repeat(np.stack(per_batch, axis=-1)[:, None, :], 2, axis=1)
        head = np.stack([my_turn.astype(np.float32), np.repeat(f["has_offer"][:, None], 2, axis=1), mine], axis=-1)
        return np.concatenate([head, shared], axis=-1).astype(np.float32)

    def global_state(self, state: State) -> np.ndarray:
        f = self._features(state)
        mover = np.eye(2, dtype=np.float32)[state["mover"]]
        rest = np.stack([f["has_offer"], f["to_mover"], f["progress"], f["deadline"], f["pie_left"]], axis=-1)
        return np.concatenate([mover, rest], axis=-1).astype(np.float32)

    # ----- meaning, for metrics and text ---------------------------------------------
    @functools.cached_property
    def capabilities(self) -> Capabilities:
        return Capabilities(simultaneous=False, roles=("proposer", "responder"))

    def constants(self) -> dict[str, Any]:
        return {"wait": self.WAIT, "accept": self.ACCEPT, "reject": self.REJECT, "offer0": self.OFFER0, "units": self.units}

    def task_text(self) -> str:
        return "Choose your move."

    def episode_optimum(self, run: Any) -> Any:
        import pandas as pd

        if run.episodes.empty:
            return None
        episodes = run.episodes.drop_duplicates("episode").set_index("episode").index
        return pd.Series(max(self.config.pie, 2 * self.config.disagreement), index=episodes, dtype=float)

    def run_metrics(self, run: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        from mas.analysis import game_metrics as gm
        from mas.analysis import metrics as m

        if not len(run.states):
            return {}, {}
        outcomes = gm.bargaining_outcomes(run.states, self.config.pie)
        overview = {
            "agreement rate": float(outcomes["agreed"].mean()),
            "bargaining efficiency": m.mean_ci(outcomes["efficiency"].tolist()),
            "bargaining fairness": m.mean_ci(outcomes["fairness"].tolist()),
            "offers made": m.mean_ci(outcomes["offers_made"].tolist()),
        }
        return overview, {"bargaining outcomes": outcomes}

    def cooperation(self, state: State, actions: np.ndarray) -> np.ndarray | None:
        return None

    def summary(self, state: State, index: int) -> dict[str, Any]:
        offer = int(state["offer"][index])
        ended = bool(state["ended"][index])
        return {
            "offers_made": int(state["offers"][index]),
            "mover": int(state["mover"][index]),
            "offer": offer if offer >= 0 else None,
            "agreed": bool(state["agreed"][index]),
            "shares": [float(x) for x in state["shares"][index]] if ended else None,
        }

    def _amount(self, units: int, offers: int) -> str:
        """`units` units of the pie as it stands at offer number `offers`, in pie terms."""
        return f"{units / self.units * float(self.pie_at(np.array(offers))):.4g}"

    def rules_text(self, agent: int) -> str:
        c = self.config
        unit = c.pie / c.units
        lines = [
            f"You are player {agent + 1} of 2 in a bargaining game over a pie worth {c.pie:g}.",
            f"The pie is cut into {c.units} equal units (each worth {unit:.4g} at the start). "
            f"An offer 'offer j of {c.units}' gives j units to the other player; the proposer keeps the rest.",
            f"Player 1 makes the first offer, so {'you propose' if agent == 0 else 'the other player proposes'} first.",
        ]
        if c.max_offers == 1:
            lines.append(
                "This is an ultimatum game: only one offer is made. The other player can accept it "
                f"(the pie is split as offered) or reject it (both get {c.disagreement:g})."
            )
        else:
            lines.append(
                "The players take turns. When you receive an offer you may accept it (the game ends and the pie "
                "is split as offered) or make a counter-offer, which rejects it and passes the turn."
            )
            lines.append(
                f"At most {c.max_offers} offers can be made. The player who receives the last one may only accept "
                f"or reject it; if it is rejected both get {c.disagreement:g}."
            )
            if c.discount < 1:
                lines.append(
                    f"Delay is costly: every offer after the first finds the pie shrunk by a factor {c.discount:g} "
                    f"(offer number t splits {c.pie:g} x {c.discount:g}^(t-1))."
                )
        lines.append("While it is the other player's turn you can only wait.")
        return "\n".join(lines)

    def situation_text(self, state: State, index: int, agent: int) -> str:
        offers = int(state["offers"][index])
        mover = int(state["mover"][index])
        offer = int(state["offer"][index])
        if bool(state["ended"][index]):
            shares = state["shares"][index]
            outcome = "An offer was accepted" if bool(state["agreed"][index]) else "The last offer was rejected"
            return f"The game is over. {outcome}: you got {shares[agent]:.4g}, the other player got {shares[1 - agent]:.4g}."
        remaining = self.max_offers - offers
        parts: list[str] = []
        if offers == 0:
            who = "You make" if mover == agent else "The other player makes"
            parts.append(f"No offer has been made yet. {who} the first offer; the pie is worth {self.config.pie:g}.")
        else:
            pie_now = float(self.pie_at(np.array(offers)))
            keep = self.units - offer
            if mover == agent:
                parts.append(
                    f"The other player offers you {offer} of {self.units} units ({self._amount(offer, offers)} of a pie now worth "
                    f"{pie_now:.4g}) and would keep {keep} ({self._amount(keep, offers)})."
                )
            else:
                parts.append(
                    f"You offered {offer} of {self.units} units ({self._amount(offer, offers)} of a pie now worth {pie_now:.4g}) "
                    f"to the other player and would keep {keep} ({self._amount(keep, offers)})."
                )
        parts.append(f"Offers made: {offers} of {self.max_offers}; {remaining} more can be made.")
        if mover != agent:
            parts.append("It is the other player's turn; you can only wait.")
        elif offers == 0:
            parts.append("It is your turn: make an offer.")
        elif remaining > 0:
            nxt = float(self.pie_at(np.array(offers + 1)))
            parts.append(f"It is your turn: accept, or make a counter-offer (the pie would then be worth {nxt:.4g}).")
        else:
            parts.append(
                f"It is your turn and this is the last offer: accept it or reject it (both then get {self.config.disagreement:g})."
            )
        return " ".join(parts)
