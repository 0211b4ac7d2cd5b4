"""The exact baselines of a scenario, as plain data (`mas solve FILE [--json]`).

What is computed, where the game offers it:
- the pure Nash equilibria of the stage game (`Game.stage_payoffs`), and the mixed ones
  of a two-player stage game (nashpy, the `solve` extra);
- the best response, and its value, against every seat of a two-player cooperate/defect
  game whose strategy declares an `Automaton` (value iteration over its memory states,
  with the scenario's rounds or continuation probability; `mas.solve.repeated`); when no
  seat does, against the classic strategies `CLASSIC`;
- the social optimum per round and per episode (`Game.social_optimum`);
- for a game that is a single-agent MDP (`Game.tabular_mdp`, e.g. a one-agent maze), the
  optimal values by value iteration with the learner's discount, and the shortest path.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mas import registry
from mas.scenario import Scenario
from mas.solve import equilibria as eq
from mas.solve.mdp import greedy_path, path_return, value_iteration
from mas.solve.repeated import best_response, describe_plan

#: the strategies a best response is computed against when the scenario names none
CLASSIC = ("tit_for_tat", "grim_trigger", "always_cooperate", "always_defect", "pavlov")
#: the discount of the maze values when no learner in the scenario names one (IQL's default)
DEFAULT_GAMMA = 0.95


def solve_scenario(scenario: Scenario, equilibria: bool = True) -> dict[str, Any]:
    """Every exact baseline the scenario's game offers (see the module docstring);
    `equilibria=False` leaves out the stage game's equilibria (reference lines need none)."""
    game = registry.make_game(scenario.game, len(scenario.agents))
    horizon, weight = _horizon(scenario)
    out: dict[str, Any] = {
        "scenario": scenario.name, "game": game.kind, "players": game.n_agents,
        "rounds": _rounds_data(scenario, horizon, weight), "notes": [],
    }
    table = game.stage_payoffs()
    out["stage_game"] = _stage_game(game, table, out["notes"]) if table is not None and equilibria else None
    if table is None:
        out["notes"].append("the stage game's payoffs depend on the state: no equilibria of a payoff table")
    out["best_responses"] = _best_responses(scenario, game, table, horizon, weight, out["notes"])
    per_round = game.social_optimum()
    expected = _expected_rounds(horizon, weight)
    out["social_optimum"] = None if per_round is None else {"per_round": per_round, "per_episode": per_round * expected}
    out["maze"] = _maze(scenario, game)
    return out


def _horizon(scenario: Scenario) -> tuple[int, float]:
    """(rounds or their cap, weight of the next round: 1 or the continuation probability)."""
    rounds = scenario.rounds
    return (rounds, 1.0) if isinstance(rounds, int) else (rounds.max, rounds.continuation)


def _expected_rounds(horizon: int, weight: float) -> float:
    return float(horizon) if weight == 1.0 else (1.0 - weight**horizon) / (1.0 - weight)


def _rounds_data(scenario: Scenario, horizon: int, weight: float) -> dict[str, Any]:
    if weight == 1.0:
        return {"fixed": horizon, "expected": float(horizon)}
    return {"continuation": weight, "max": horizon, "expected": _expected_rounds(horizon, weight)}


def _stage_game(game: Any, table: np.ndarray, notes: list[str]) -> dict[str, Any]:
    names = game.action_names(0)

    def entry(e: eq.Equilibrium) -> dict[str, Any]:
        return {"profile": e.describe(names), "strategies": [list(s) for s in e.strategies], "payoffs": list(e.payoffs)}

    data: dict[str, Any] = {"actions": names, "pure": [entry(e) for e in eq.pure_equilibria(table)], "mixed": None}
    if game.n_agents != 2:
        notes.append("mixed equilibria are computed for two-player games only")
    elif not eq.mixed_available():
        notes.append("mixed equilibria need nashpy: pip install 'mas-sim[solve]'")
    else:
        data["mixed"] = [entry(e) for e in eq.mixed_equilibria(table)]
    return data


def _best_responses(scenario: Scenario, game: Any, table: np.ndarray | None, horizon: int, weight: float,
                    notes: list[str]) -> list[dict[str, Any]]:
    caps = game.capabilities
    if table is None:
        return []
    if game.n_agents != 2 or not caps.has_cooperate_defect:
        notes.append("best responses are computed for two-player games with cooperate and defect actions")
        return []
    opponents = []  # (strategy seat, label, automaton)
    for seat, agent in enumerate(scenario.agents):
        automaton = _automaton(agent.policy.type, agent.policy)
        if automaton is not None:
            opponents.append((seat, f"{agent.id} ({agent.policy.type})", automaton))
    classic = not opponents
    if not opponents:
        notes.append(f"no seat plays a strategy with memory states: best responses of {scenario.agents[0].id} to the classic strategies")
        for name in CLASSIC:
            automaton = _automaton(name, registry.policy_spec_model(name)(type=name))
            if automaton is not None:
                opponents.append((1, name, automaton))
    names = game.action_names(0)
    found = []
    for seat, label, automaton in opponents:
        responder = 1 - seat
        payoff = table[..., responder] if responder == 0 else table[..., responder].T  # [responder's, strategy's]
        result = best_response(payoff, automaton, caps.cooperate, caps.defect, horizon, weight)
        found.append({
            "against": label, "responder": scenario.agents[responder].id, "value": result.value,
            "per_round": result.value / _expected_rounds(horizon, weight), "first_action": names[result.first_action],
            "plan": describe_plan(result.plan, names) if result.plan else None,
            "classic": classic,  # True: a classic strategy the scenario does not seat (no reference for its runs)
        })
    return found


def _automaton(policy_type: str, spec: Any) -> Any:
    method = getattr(registry.policy_class(policy_type), "automaton", None)
    return method(spec) if method is not None else None


def _maze(scenario: Scenario, game: Any) -> dict[str, Any] | None:
    mdp = game.tabular_mdp()
    if mdp is None:
        return None
    gamma = next((float(a.policy.gamma) for a in scenario.agents if hasattr(a.policy, "gamma")), DEFAULT_GAMMA)
    solution = value_iteration(mdp, gamma)
    path = greedy_path(mdp, solution.policy)
    shortest = int(solution.steps_to_end[mdp.start])
    return {
        "gamma": gamma, "start_value": float(solution.values[mdp.start]),
        "path_return": path_return(mdp, path) if shortest >= 0 else None,
        "shortest_path": shortest if shortest >= 0 else None,
        "optimal_actions": [mdp.actions[a] for a in path] if shortest >= 0 else [],
        "states": len(mdp.labels), "sweeps": solution.sweeps,
    }


def render_text(result: dict[str, Any]) -> str:
    """The baselines of `solve_scenario` as lines for a terminal."""
    rounds = result["rounds"]
    length = (f"{rounds['fixed']} rounds" if "fixed" in rounds
              else f"continuation {rounds['continuation']:g} (at most {rounds['max']} rounds, {rounds['expected']:.4g} expected)")
    lines = [f"{result['scenario']}: {result['game']}, {result['players']} players, {length}"]
    stage = result["stage_game"]
    if stage is not None:
        lines.append("Nash equilibria of the stage game (payoffs in seat order):")
        for kind in ("pure", "mixed"):
            for e in stage[kind] or []:
                lines.append(f"  {kind:<5} {e['profile']}: {', '.join(f'{p:.4g}' for p in e['payoffs'])}")
        if not stage["pure"] and not stage["mixed"]:
            lines.append("  no pure equilibrium")
    if result["best_responses"]:
        lines.append("Best response in the repeated game (value iteration over the strategy's memory states):")
        for br in result["best_responses"]:
            plan = f"; plan {br['plan']}" if br["plan"] else f"; first round {br['first_action']}"
            lines.append(f"  {br['responder']} against {br['against']}: {br['value']:.4g} ({br['per_round']:.4g} per round){plan}")
    optimum = result["social_optimum"]
    if optimum is not None:
        lines.append(f"Social optimum: {optimum['per_round']:.4g} per round, {optimum['per_episode']:.4g} per episode (all players)")
    maze = result["maze"]
    if maze is not None:
        if maze["shortest_path"] is None:
            lines.append("Maze: no goal can be reached from the start")
        else:
            lines.append(f"Maze (value iteration, gamma {maze['gamma']:g}): shortest path {maze['shortest_path']} steps, "
                         f"value at the start {maze['start_value']:.4g}; path {' '.join(maze['optimal_actions'])}")
    lines.extend(f"note: {n}" for n in result["notes"])
    return "\n".join(lines)
