"""Public goods strategies: they need contribution `amounts` and a `punish_nobody` action
among the game's constants, and read the phase and last contributions from the summary."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import Field

from mas.agents.base import AgentView
from mas.agents.scripted.base import Classifier, ScriptedPolicy, ScriptedSpec, nearest_level, choose_rowwise

NEEDS = frozenset({"amounts", "punish_nobody", "endowment"})


class ConditionalCooperatorSpec(ScriptedSpec):
    type: Literal["conditional_cooperator"] = "conditional_cooperator"
    initial: float = Field(1.0, ge=0.0, le=1.0, description="First-round contribution, as a fraction of the endowment.")
    punish_free_riders: bool = Field(
        False,
        description="In punish steps, punish the lowest contributor among the others if they gave "
        "less than half the mean contribution (else punish nobody).",
    )


class ConditionalCooperator(ScriptedPolicy):
    """Conditional cooperator (Fischbacher, Gaechter & Fehr): contribute `initial` of the
    endowment first, then match the others - contribute the level nearest the mean of the
    others' last contributions. In punish steps punish nobody, or with
    `punish_free_riders` the lowest contributor among the others (lowest seat on a tie)
    when they gave less than half the mean contribution of all players."""

    classifier = Classifier(memory_depth=1, stochastic=False, needs=NEEDS, family="public_goods",
                            makes_use_of=frozenset({"summary"}))
    choose_batch = staticmethod(choose_rowwise)  # no memory, no draws: row by row

    def choose(self, view: AgentView) -> int:
        last = view.summary.get("last_contributions")
        if view.summary.get("phase") == "punish":
            return self._punish(view, last)
        if last is None:
            target = self.spec.initial * self.info.constants["endowment"]
        else:
            target = float(np.mean([c for seat, c in enumerate(last) if seat != view.seat]))
        return nearest_level(self.info.constants["amounts"], target, view)

    def _punish(self, view: AgentView, last: Sequence[float] | None) -> int:
        nobody = self.info.constants["punish_nobody"]
        if not self.spec.punish_free_riders or last is None:
            return nobody
        others = [seat for seat in range(len(last)) if seat != view.seat]
        lowest = min(others, key=lambda seat: (last[seat], seat))
        return 1 + lowest if last[lowest] < 0.5 * float(np.mean(last)) else nobody


class FreeRiderSpec(ScriptedSpec):
    type: Literal["free_rider"] = "free_rider"


class FreeRider(ScriptedPolicy):
    """Free rider: contribute nothing (the lowest level), never punish."""

    classifier = Classifier(memory_depth=0, stochastic=False, needs=NEEDS, family="public_goods",
                            makes_use_of=frozenset({"summary"}))
    choose_batch = staticmethod(choose_rowwise)  # no memory, no draws: row by row

    def choose(self, view: AgentView) -> int:
        if view.summary.get("phase") == "punish":
            return self.info.constants["punish_nobody"]
        return nearest_level(self.info.constants["amounts"], 0.0, view)
