"""Signalling strategies: they need the game's `targets`, `vocabulary`, `speaker` seat and
`wait` action among its constants. Action 1 + k means word k (speaker) or target k
(listener). The speaker reads the target from its own view's summary (private to it);
listeners read the heard word and their inbox, never the target."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from mas.agents.base import AgentSetup, AgentView
from mas.agents.scripted.base import Classifier, ScriptedPolicy, ScriptedSpec

if TYPE_CHECKING:
    from mas.comms import Message
    from mas.games.base import GameInfo

NEEDS = frozenset({"targets", "vocabulary", "speaker", "wait"})


class _Signaller(ScriptedPolicy):
    """Seat `speaker` speaks, the others listen; action `wait` is WAIT and action 1 + k
    means word k (speaker) or target k (listener)."""

    def __init__(self, spec: Any, game: "GameInfo", agents: Sequence[AgentSetup], agent_ids: Sequence[str]) -> None:
        super().__init__(spec, game, agents, agent_ids)
        self.WAIT = game.constants["wait"]
        self.speaker = game.constants["speaker"]
        self.targets = list(game.constants["targets"])
        self.vocabulary = list(game.constants["vocabulary"])

    def choices(self, view: AgentView) -> list[int]:
        """The legal non-WAIT actions (empty on an idle turn)."""
        return [a for a in view.legal_actions() if a != self.WAIT]


class HonestSpeakerSpec(ScriptedSpec):
    type: Literal["honest_speaker"] = "honest_speaker"

    def check_game(self, game: "GameInfo") -> None:
        super().check_game(game)
        words, targets = len(game.constants["vocabulary"]), len(game.constants["targets"])
        if words < targets:
            raise ValueError(f"needs at least as many words as targets ({words} words, {targets} targets)")


class HonestSpeaker(_Signaller):
    """Honest speaker: as the speaker, say vocabulary[k] for target k (a fixed, truthful
    code). Placed in a listener's seat it picks uniformly among the legal targets."""

    classifier = Classifier(memory_depth=0, stochastic=True, needs=NEEDS, family="signalling",
                            makes_use_of=frozenset({"summary"}))

    def choose(self, view: AgentView) -> int:
        options = self.choices(view)
        if not options:
            return self.WAIT
        target = view.summary.get("target")
        if view.seat == self.speaker and target in self.targets:
            return 1 + self.targets.index(target)
        return self.pick(view, options)


class LiteralListenerSpec(ScriptedSpec):
    type: Literal["literal_listener"] = "literal_listener"


class LiteralListener(_Signaller):
    """Literal listener: take words at their face value. Pick the one target named by the
    latest inbox message that names exactly one target (natural language wins), else
    target k when the heard word is vocabulary[k], else a uniformly random legal target.
    It never reads `summary["target"]`. Placed in the speaker's seat it says a random word."""

    classifier = Classifier(memory_depth=0, stochastic=True, needs=NEEDS, family="signalling",
                            makes_use_of=frozenset({"summary", "inbox"}))

    def choose(self, view: AgentView) -> int:
        options = self.choices(view)
        if not options or view.seat == self.speaker:
            return self.pick(view, options) if options else self.WAIT
        named = named_target(view.inbox, self.targets)
        if named is not None:
            return 1 + named
        word = view.summary.get("signal")
        if word in self.vocabulary and self.vocabulary.index(word) < len(self.targets):
            return 1 + self.vocabulary.index(word)
        return self.pick(view, options)


def named_target(inbox: Sequence["Message"], targets: Sequence[str]) -> int | None:
    """Index of the target named by the latest message that names exactly one target
    (whole words, any case; a name inside a longer mentioned name does not count)."""
    for message in reversed(inbox):
        text = getattr(message, "text", str(message))
        found = [
            name
            for name in targets
            if re.search(rf"(?<![A-Za-z0-9]){re.escape(name)}(?![A-Za-z0-9])", text, flags=re.IGNORECASE)
        ]
        found = [n for n in found if not any(n != m and n.lower() in m.lower() for m in found)]
        if len(found) == 1:
            return list(targets).index(found[0])
    return None
