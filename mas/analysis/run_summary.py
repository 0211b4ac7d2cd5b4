"""The summary `mas run` prints after playing: per agent, the mean return and cooperation
with 95% confidence intervals over episodes, and the LLM usage counts. Pure functions over
the runner's episode results; the CLI only formats them.
"""

from __future__ import annotations

import dataclasses

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mas.analysis.metrics import Interval, mean_ci


@dataclass(frozen=True)
class AgentSummary:
    """One agent's row: `cooperation` is None where the game does not measure it, `usage`
    None for an agent without LLM calls (keys: tokens, decisions, outputs, invalid, fallbacks)."""

    agent: str
    policy: str
    returns: Interval
    cooperation: Interval | None
    usage: dict[str, int] | None


@dataclass(frozen=True)
class RunSummary:
    """A played run's summary: `has_cooperation` / `has_usage` say which columns apply."""

    episodes: int
    rounds: Interval
    has_cooperation: bool
    has_usage: bool
    agents: list[AgentSummary]
    terminated: int  # episodes the game itself ended


def usage_totals(results: Sequence[Any]) -> dict[str, dict[str, int]]:
    """Per agent, the LLM usage counts (tokens, invalid replies, fallbacks) over all episodes."""
    totals: dict[str, dict[str, int]] = {}
    for result in results:
        for agent, counts in getattr(result, "usage", {}).items():
            counts = dataclasses.asdict(counts) if dataclasses.is_dataclass(counts) else counts
            into = totals.setdefault(agent, dict.fromkeys(counts, 0))
            for key, value in counts.items():
                into[key] = into.get(key, 0) + value
    return totals


def summarise_run(scenario: Any, results: Sequence[Any]) -> RunSummary:
    """The summary of `results` (the runner's episode results) of `scenario`."""
    has_coop = any(v is not None for r in results for v in r.cooperation.values())
    usage = usage_totals(results)
    agents = []
    for agent in scenario.agents:
        coop = mean_ci([r.cooperation[agent.id] for r in results if r.cooperation[agent.id] is not None]) if has_coop else None
        agents.append(AgentSummary(agent.id, agent.policy.type, mean_ci([r.returns[agent.id] for r in results]), coop,
                                   usage.get(agent.id)))
    return RunSummary(episodes=len(results), rounds=mean_ci([r.rounds for r in results]), has_cooperation=has_coop,
                      has_usage=bool(usage), agents=agents, terminated=sum(r.terminated for r in results))
