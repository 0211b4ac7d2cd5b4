"""What the `mas` command reports, as plain data: the catalogue of `mas list` and the
`--json` forms of `mas run`, `mas compare` and `mas tournament`.

Every function returns JSON-able dicts (NaN becomes null), so `--json` output parses
with any JSON reader; the text tables are drawn from the same results in `mas.cli`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mas import registry


def dumps(data: Any) -> str:
    """Strict JSON (no NaN or Infinity) of data made of dicts, lists, numbers, strings, paths
    and intervals."""
    return json.dumps(plain(data), indent=2, allow_nan=False)


def plain(value: Any) -> Any:
    """`value` as JSON-able data: intervals become {mean, low, high, n}, NaN becomes None,
    numpy scalars and arrays become numbers and lists, paths become strings."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # numpy scalar or array
        return plain(value.tolist())
    if all(hasattr(value, f) for f in ("mean", "low", "high", "n")):  # mas.analysis.metrics.Interval
        return {"mean": plain(value.mean), "low": plain(value.low), "high": plain(value.high), "n": value.n}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ----- mas list ------------------------------------------------------------------------
def catalogue() -> dict[str, list[dict[str, str]]]:
    """Built-in games, scenarios, tournaments and policies, each with a one-line description.

    Reads docstrings from the sources and scenario descriptions from the YAML files without
    importing games, policies or the scenario models, so it takes milliseconds. Installed
    plugins are listed too (their entry points are read, their modules are not imported).
    """
    registry.load_plugins()
    return {
        "games": [{"name": kind, "description": registry.doc_line(game.partition(":")[0])} for kind, (_, game) in registry.GAMES.items()],
        "scenarios": [{"name": name, "description": _yaml_description(path)} for name, path in registry.builtin_scenarios().items()],
        "tournaments": [{"name": name, "description": _yaml_description(path)} for name, path in registry.builtin_tournaments().items()],
        "policies": [{"name": name, "description": registry.doc_line(cls) or registry.doc_line(spec)} for name, (spec, cls, _) in registry.POLICIES.items()],
    }


def _yaml_description(path: Path) -> str:
    """First line of a YAML file's top-level `description` ('' when it has none or does not parse)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 (a safe loader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return ""
    description = data.get("description") if isinstance(data, dict) else None
    lines = description.strip().splitlines() if isinstance(description, str) else []
    return lines[0].strip() if lines else ""


# ----- mas run -------------------------------------------------------------------------
def run_summary(scenario: Any, results: Sequence[Any], seed: int, out: Path, usage: dict[str, dict[str, int]]) -> dict[str, Any]:
    """The summary table of `mas run` as data: per agent its return and cooperation (mean
    with 95% interval over episodes) and LLM usage counts."""
    from mas.analysis.metrics import mean_ci

    agents = []
    for agent in scenario.agents:
        coop = [r.cooperation[agent.id] for r in results if r.cooperation.get(agent.id) is not None]
        agents.append({
            "id": agent.id,
            "policy": agent.policy.type,
            "return": mean_ci([r.returns[agent.id] for r in results]),
            "cooperation": mean_ci(coop) if coop else None,
            "usage": usage.get(agent.id),
        })
    return {
        "scenario": scenario.name,
        "run_dir": out,
        "episodes": len(results),
        "seed": seed,
        "rounds": mean_ci([r.rounds for r in results]),
        "terminated": sum(bool(r.terminated) for r in results),
        "agents": agents,
    }


# ----- mas tournament ------------------------------------------------------------------
def tournament_summary(results: Any) -> dict[str, Any]:
    """The ranking of a finished tournament as data, with the payoff matrix (mean score of
    the row entrant against the column entrant) and, if ecological, the final shares."""
    from mas.tournament.report import is_competitive

    spec = results.tournament.spec
    names = results.names
    competitive = is_competitive(results.tournament)  # Elo means something only then (as in the table)
    final = results.ecology[-1] if results.ecology is not None else None
    ranking = [
        {
            "rank": r.rank, "entrant": spec.entrants[r.entrant].name, "matches": r.matches,
            "score": {"mean": r.mean, "low": r.low, "high": r.high, "confidence": spec.ratings.confidence},
            "rank_stability": r.rank_stability, "per_round": r.per_round,
            "wins": r.wins, "draws": r.draws, "losses": r.losses, "elo": r.elo if competitive else None,
            "share": None if final is None else final[r.entrant],
        }
        for r in results.ratings
    ]
    return {
        "tournament": spec.name,
        "run_dir": results.out_dir,
        "seed": spec.seed,
        "matches": results.matches,
        "played_now": results.played_now,
        "entrants": names,
        "ranking": ranking,
        "payoff": results.payoff,
    }


# ----- mas compare ---------------------------------------------------------------------
def compare_summary(runs: Sequence[Any], labels: Sequence[str], paths: Sequence[Path]) -> dict[str, Any]:
    """The overview metrics of each run (intervals over episodes, or single numbers)."""
    from mas.analysis.summary import overview_of

    return {
        "runs": [
            {"label": label, "run_dir": path, "metrics": overview_of(run)}
            for run, label, path in zip(runs, labels, paths)
        ]
    }
