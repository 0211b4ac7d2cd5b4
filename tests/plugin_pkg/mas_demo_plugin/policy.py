"""The always_yes policy: says yes (the first action) in every game."""

from __future__ import annotations

from typing import Literal

from mas.agents.base import AgentView
from mas.agents.scripted.base import Classifier, ScriptedPolicy, ScriptedSpec


class AlwaysYesSpec(ScriptedSpec):
    type: Literal["always_yes"] = "always_yes"


class AlwaysYes(ScriptedPolicy):
    """Always yes: play the first action whenever it is legal."""

    spec_model = AlwaysYesSpec  # the registry finds the spec model here
    classifier = Classifier(memory_depth=0, stochastic=False)

    def choose(self, view: AgentView) -> int:
        return 0
