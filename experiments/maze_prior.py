"""LLM-guided exploration in the one-agent maze (`grid_maze`): training steps until the greedy
tabular Q-learner walks the shortest path (10 steps, return 0.9), with uniform
epsilon-exploration and with exploration drawn from a prior favouring down and right (the
directions of the goal, as an LLM reading the map might).

Run: python experiments/maze_prior.py [SEEDS] [STEPS]
"""

from __future__ import annotations

import csv
import sys
import tempfile
from pathlib import Path

import mas
from mas.training.run import train

BEST = 1.0 - 0.01 * 10  # ten step costs (the last one too), and the goal reward
PRIOR = {"stay": 0.05, "up": 0.1, "down": 0.35, "left": 0.1, "right": 0.4}


def steps_to_shortest_path(seed: int, steps: int, prior: dict | None, out: Path) -> int | None:
    """The first evaluation step at which the greedy walker's return is the optimum."""
    data = mas.load_scenario("grid_maze").model_dump(mode="json", exclude_none=True)
    policy = data["agents"][0]["policy"]
    if prior:
        policy["prior"] = prior
    run = out / f"{seed}-{bool(prior)}"
    train(mas.scenario.parse_scenario(data), "iql", steps, seed, run, device="cpu", final_episodes=0,
          tensorboard=False, eval_every=steps // 100, eval_episodes=1)
    with open(run / "curves.csv") as f:
        for row in csv.DictReader(f):
            if row.get("eval_return/walker") and float(row["eval_return/walker"]) >= BEST - 1e-6:
                return int(row["step"])
    return None


if __name__ == "__main__":
    seeds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    with tempfile.TemporaryDirectory() as tmp:
        for name, prior in (("uniform", None), ("prior down/right", PRIOR)):
            found = [steps_to_shortest_path(s, steps, prior, Path(tmp)) for s in range(seeds)]
            solved = sorted(f for f in found if f is not None)
            median = solved[len(solved) // 2] if solved else None
            print(f"{name}: {len(solved)}/{seeds} seeds find the shortest path; median first step {median}; all {found}")
