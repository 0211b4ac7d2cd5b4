"""Commons (common-pool resource) strategies: they need harvest `amounts` and the resource
`capacity` among the game's constants, and read the stock from the summary."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mas.agents.base import AgentView
from mas.agents.scripted.base import Classifier, ScriptedPolicy, ScriptedSpec, nearest_level, choose_rowwise

NEEDS = frozenset({"amounts", "capacity"})


class FixedQuotaSpec(ScriptedSpec):
    type: Literal["fixed_quota"] = "fixed_quota"
    amount: float = Field(ge=0.0, description="Harvest every round the harvest level nearest this amount.")


class FixedQuota(ScriptedPolicy):
    """Fixed quota: harvest the same amount every round, whatever the stock."""

    classifier = Classifier(memory_depth=0, stochastic=False, needs=NEEDS, family="commons")
    choose_batch = staticmethod(choose_rowwise)  # no memory, no draws: row by row

    def choose(self, view: AgentView) -> int:
        return nearest_level(self.info.constants["amounts"], self.spec.amount, view)


class SustainableHarvesterSpec(ScriptedSpec):
    type: Literal["sustainable_harvester"] = "sustainable_harvester"


class SustainableHarvester(ScriptedPolicy):
    """Sustainable harvester: keep the stock near half the capacity (where logistic growth
    is fastest) by taking its 1/N share of the surplus, max(0, stock - capacity / 2) / N,
    rounded down to a harvest level (the smallest level when none is that small)."""

    classifier = Classifier(memory_depth=0, stochastic=False, needs=NEEDS, family="commons",
                            makes_use_of=frozenset({"summary"}))
    choose_batch = staticmethod(choose_rowwise)  # no memory, no draws: row by row

    def choose(self, view: AgentView) -> int:
        stock = float(view.summary.get("stock", 0.0))
        share = max(0.0, stock - self.info.constants["capacity"] / 2) / self.info.n_agents
        amounts = self.info.constants["amounts"]
        options = [a for a in view.legal_actions() if a < len(amounts)]
        if not options:
            return -1
        below = [a for a in options if float(amounts[a]) <= share + 1e-9]
        if below:
            return max(below, key=lambda a: (float(amounts[a]), -a))
        return min(options, key=lambda a: (float(amounts[a]), a))
