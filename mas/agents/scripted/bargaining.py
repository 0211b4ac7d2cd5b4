"""Bargaining strategies: they need the game's `wait`, `accept`, `reject` and `offer0`
action indices and its `units` among its constants, and read the offer from the summary."""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from mas.agents.base import AgentSetup, AgentView
from mas.agents.scripted.base import Classifier, ScriptedPolicy, ScriptedSpec, choose_rowwise

if TYPE_CHECKING:
    from mas.games.base import GameInfo

NEEDS = frozenset({"wait", "accept", "reject", "offer0", "units"})
CLASSIFIER = Classifier(memory_depth=0, stochastic=False, needs=NEEDS, family="bargaining", makes_use_of=frozenset({"summary"}))


class _Bargainer(ScriptedPolicy):
    """Shared rule: accept an offer that is good enough; otherwise make (or counter with)
    the own offer; at the deadline, where no counter-offer is possible, reject.
    The policy reads the legal actions to know its role: only WAIT legal = not its turn;
    offers but no ACCEPT = first mover; ACCEPT legal = responding to `summary["offer"]`."""

    classifier = CLASSIFIER
    choose_batch = staticmethod(choose_rowwise)  # no memory, no draws: row by row

    def __init__(self, spec: Any, game: "GameInfo", agents: Sequence[AgentSetup], agent_ids: Sequence[str]) -> None:
        super().__init__(spec, game, agents, agent_ids)
        constants = game.constants
        self.WAIT, self.ACCEPT, self.REJECT = constants["wait"], constants["accept"], constants["reject"]
        self.OFFER0 = constants["offer0"]
        self.units = int(constants["units"])

    @abstractmethod
    def my_offer(self) -> int:
        """Units this policy offers to the other player."""

    @abstractmethod
    def acceptable(self, offer: int) -> bool:
        """Whether an offer of `offer` units to this agent is good enough."""

    def choose(self, view: AgentView) -> int:
        legal = view.legal_actions()
        offer = view.summary.get("offer")
        if self.ACCEPT in legal and offer is not None and self.acceptable(int(offer)):
            return self.ACCEPT
        offers = [a for a in legal if a >= self.OFFER0]
        if offers:  # the legal offer nearest the wanted one
            wanted = self.OFFER0 + self.my_offer()
            return min(offers, key=lambda a: (abs(a - wanted), a))
        if self.REJECT in legal:
            return self.REJECT
        return self.WAIT


class FairBargainerSpec(ScriptedSpec):
    type: Literal["fair_bargainer"] = "fair_bargainer"
    threshold: float = Field(0.5, ge=0.0, le=1.0, description="Accept an offer of at least this fraction of the units.")


class FairBargainer(_Bargainer):
    """Fair bargainer: offer half the units (rounded up, so two fair bargainers agree at
    once), accept any offer of at least `threshold` x units, else counter-offer half; at
    the deadline reject an offer below the threshold."""

    def my_offer(self) -> int:
        return (self.units + 1) // 2

    def acceptable(self, offer: int) -> bool:
        return offer >= self.spec.threshold * self.units - 1e-9


class GreedyBargainerSpec(ScriptedSpec):
    type: Literal["greedy_bargainer"] = "greedy_bargainer"
    offer: int = Field(1, ge=0, description="Units offered to the other player (keeping the rest).")
    accept_at_least: int | None = Field(
        None, ge=0, description="Accept offers of at least this many units; default ceil(0.6 x units)."
    )

    def check_game(self, game: "GameInfo") -> None:
        super().check_game(game)
        units = int(game.constants["units"])
        if self.offer > units:
            raise ValueError(f"offer {self.offer} is more than the {units} units on the table")
        if self.accept_at_least is not None and self.accept_at_least > units:
            raise ValueError(f"accept_at_least {self.accept_at_least} is more than the {units} units on the table")


class GreedyBargainer(_Bargainer):
    """Greedy bargainer (hard-liner): offer only `offer` units, accept only offers of at
    least `accept_at_least` units (default ceil(0.6 x units)), otherwise repeat its own
    offer; at the deadline reject anything below that."""

    def my_offer(self) -> int:
        return min(self.spec.offer, self.units)

    def acceptable(self, offer: int) -> bool:
        at_least = self.spec.accept_at_least
        if at_least is None:
            at_least = math.ceil(0.6 * self.units)
        return offer >= at_least
