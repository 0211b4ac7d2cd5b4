"""Strategies that play every game: random and a fixed action."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from mas.agents.base import AgentView
from mas.agents.scripted.base import Automaton, Classifier, ScriptedPolicy, ScriptedSpec

if TYPE_CHECKING:
    from mas.games.base import GameInfo


class RandomPolicySpec(ScriptedSpec):
    type: Literal["random"] = "random"
    p: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Probability of cooperating, in games with cooperate and defect actions; "
        "other games ignore it and pick uniformly among the legal actions.",
    )


class RandomPolicy(ScriptedPolicy):
    """Random: in a game with cooperate and defect actions cooperate with probability `p`,
    else defect; in any other game pick uniformly among the legal actions. Plays every game."""

    classifier = Classifier(memory_depth=0, stochastic=True)

    @classmethod
    def automaton(cls, spec: RandomPolicySpec) -> Automaton:
        return Automaton.reactive(("random",), (spec.p,), (0,), (0,))

    def choose(self, view: AgentView) -> int:
        legal = view.legal_actions()
        caps = self.info.capabilities
        if caps.has_cooperate_defect and caps.cooperate in legal and caps.defect in legal:
            return caps.cooperate if self.uniform(view) < self.spec.p else caps.defect
        return self.pick(view, legal)


class FixedActionSpec(ScriptedSpec):
    type: Literal["fixed_action"] = "fixed_action"
    action: str = Field(description="Name of the action to play every step (the first legal action when it is not legal).")

    def check_game(self, game: "GameInfo") -> None:
        names = {name for seat in game.action_names for name in seat}
        if self.action not in names:
            raise ValueError(f"action '{self.action}' is not an action of this game; actions: {list(game.action_names[0])}")


class FixedAction(ScriptedPolicy):
    """Fixed action: play the named action whenever it is legal."""

    classifier = Classifier(memory_depth=0, stochastic=False)

    def choose(self, view: AgentView) -> int:
        names = list(view.action_names)
        return names.index(self.spec.action) if self.spec.action in names else -1
