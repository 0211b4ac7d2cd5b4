"""What the grid-world social-dilemma experiments share (`harvest_commons`, `gathering_scarcity`):
playing learners (a training checkpoint, or random play) through `mas run` and reading the
social outcomes of Perolat et al. (2017) from the run store with mas's own analysis, plus the
tagging rate (the share of on-map agent steps spent firing the beam; Leibo et al.'s
"aggressiveness").
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

import gallery as g

#: the four outcomes of Perolat et al. (2017), then the tagging rate
METRICS = ("efficiency", "equality", "sustainability", "peace", "tagging rate")


def play(path: Path, episodes: int, seed: int, checkpoint: Path | None = None, **fields: Any) -> dict[str, float]:
    """Play `episodes` episodes of the scenario at `path` (with `fields` overrides): its
    learners sample from `checkpoint`'s policy, or act at random when it is None (the
    untrained start). Returns the mean of each of `METRICS` over the episodes."""
    from mas.analysis.load import load_run
    from mas.registry import make_game
    from mas.runner import run
    from mas.scenario import parse_scenario

    data = g.scenario(path, **fields).to_dict()
    for agent in data["agents"]:
        # the policy trained is the one played: sampled, not greedy (greedy MAPPO can freeze in place)
        agent["policy"] = ({"type": "checkpoint", "path": str(checkpoint), "agent": agent["id"], "mode": "sample"}
                           if checkpoint is not None else {"type": "random"})
    scenario = parse_scenario(data)
    with tempfile.TemporaryDirectory(prefix="mas-exp-") as tmp:
        run(scenario, episodes, seed, out_dir=Path(tmp) / "run")
        stored = load_run(Path(tmp) / "run")
    game = make_game(scenario.game, len(scenario.agents))
    overview, _ = game.run_metrics(stored)
    out = {name: float(overview[name].mean) if name in overview else float("nan") for name in METRICS[:4]}
    out["tagging rate"] = tagging_rate(stored)
    return out


def tagging_rate(stored: Any) -> float:
    """Share of all agent steps (on the map or not) in which the agent fired the beam."""
    steps = stored.steps
    return float(np.mean(steps["action_name"] == "tag")) if len(steps) else 0.0
