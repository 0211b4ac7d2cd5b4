"""Private-signals strategies: they need the game's `signals` and `partner` constants.

`signal_teller` is the honest, literal reference partner for learned communication: in
talk steps it says its own signal (which only its view's summary holds), and it picks
the signal its partner last named in a message, or guesses when the partner said nothing
it understands (with `listens: false` it always guesses). A learner next to it can
learn to listen (pick what it is told) and to talk (say its signal so that the teller
picks right).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from mas.agents.base import AgentSetup, AgentView, Decision
from mas.agents.scripted.base import Classifier, ScriptedPolicy, ScriptedSpec, legal_or_first

if TYPE_CHECKING:
    from mas.games.base import GameInfo


class SignalTellerSpec(ScriptedSpec):
    type: Literal["signal_teller"] = "signal_teller"
    listens: bool = Field(True, description="Pick the signal the partner named (false: always guess).")


class SignalTeller(ScriptedPolicy):
    """Says its own signal in talk steps; picks the signal its partner named, else guesses."""

    classifier = Classifier(memory_depth=0, stochastic=True, needs=frozenset({"signals", "partner"}),
                            family="private_signals", makes_use_of=frozenset({"summary", "inbox"}))

    def __init__(self, spec: Any, game: "GameInfo", agents: Sequence[AgentSetup], agent_ids: Sequence[str]) -> None:
        super().__init__(spec, game, agents, agent_ids)
        self.signals = [s.lower() for s in game.constants["signals"]]
        self.partner = game.constants["partner"]

    def act(self, views: Sequence[AgentView]) -> list[Decision]:
        decisions = []
        for view in views:
            action = legal_or_first(view, self.choose(view))
            own = view.summary.get(f"signal_{view.seat}", "")
            decisions.append(Decision(action, str(own) if view.talking else ""))
        return decisions

    def choose(self, view: AgentView) -> int:
        partner = self.agent_ids[self.partner[view.seat]]
        for message in reversed(view.inbox if self.spec.listens else ()):
            said = message.text.strip().lower()
            if message.sender == partner and said in self.signals:
                return self.signals.index(said)
        return self.pick(view, view.legal_actions())
