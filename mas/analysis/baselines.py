"""The exact baselines of a stored run, as reference levels for its return curves.

Computed by `mas.solve` from the scenario stored with the run (`mas run` and `mas train`
both keep it), each as the return of ONE agent over one episode, so it sits on the same
scale as the per-agent returns and the training return curve:
- the best response's value against each seat that plays a scripted strategy with memory
  states (e.g. 62 for 20 rounds of the prisoner's dilemma against tit-for-tat: cooperate
  19 rounds, defect in the last);
- the social optimum per episode as an equal share per agent (the best total of all
  agents divided by their number);
- for a one-agent maze, the return of the shortest path.
A scenario whose game offers none of these gives no baselines (and no lines are drawn).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from pydantic import ValidationError

from mas.errors import MasError


@dataclass(frozen=True)
class Baseline:
    """One exact reference level.

    Attributes:
        label: what it is, for a legend ("best response of learner to tft (tit_for_tat)").
        value: one agent's return over an episode (expected, for a random length).
        per_round: the same per round, when the game has rounds of equal weight.
        agent: the agent whose return it bounds, or None for every agent.
        note: how it was computed.
    """

    label: str
    value: float
    per_round: float | None
    agent: str | None
    note: str


def scenario_baselines(scenario: dict[str, Any]) -> list[Baseline]:
    """The baselines of a stored scenario (a resolved scenario dict); [] when it does not
    load or its game offers none. Never raises: a report must not fail for a reference."""
    if not isinstance(scenario, dict) or not scenario.get("game"):
        return []
    from mas.scenario import parse_scenario
    from mas.solve.baselines import solve_scenario

    try:
        result = solve_scenario(parse_scenario(scenario), equilibria=False)
    except (MasError, ValidationError, ValueError, ImportError, KeyError, TypeError):
        return []
    found = [
        Baseline(f"best response of {br['responder']} to {br['against']}", float(br["value"]), float(br["per_round"]),
                 br["responder"], f"value iteration over the strategy's memory states; plan {br['plan'] or br['first_action']}")
        for br in result["best_responses"] if not br.get("classic")
    ]
    optimum, players = result["social_optimum"], int(result["players"])
    if optimum is not None and players > 0:
        found.append(Baseline("social optimum, equal share per agent", optimum["per_episode"] / players,
                              optimum["per_round"] / players, None, "the best total payoff of all agents divided by their number"))
    maze = result["maze"]
    if maze is not None and maze.get("path_return") is not None:
        found.append(Baseline("shortest path to the goal", float(maze["path_return"]), None, None,
                              f"value iteration: {maze['shortest_path']} steps"))
    return found


def baselines_table(baselines: list[Baseline]) -> pd.DataFrame:
    """The baselines as a table for the report."""
    return pd.DataFrame({
        "baseline": [b.label for b in baselines],
        "return per episode": [b.value for b in baselines],
        "per round": [float("nan") if b.per_round is None else b.per_round for b in baselines],
        "how": [b.note for b in baselines],
    })
