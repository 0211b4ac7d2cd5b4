"""LLM-guided exploration in the stag hunt: the share of seeds where two independent
tabular Q-learners reach the payoff-dominant equilibrium (Stag, Stag), with uniform
epsilon-exploration and with exploration drawn from a prior favouring Stag.

Run: python experiments/stag_hunt_prior.py [SEEDS] [STEPS]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from mas.scenario import parse_scenario
from mas.training.run import train

ROUNDS = 10
GAME = {
    "kind": "normal_form", "actions": ["Stag", "Hare"], "cooperate": "Stag", "defect": "Hare",
    "payoffs": {"Stag,Stag": [4, 4], "Stag,Hare": [0, 3], "Hare,Stag": [3, 0], "Hare,Hare": [3, 3]},
}


def reaches_stag(seed: int, steps: int, prior: dict | None, out: Path) -> bool:
    """Whether both greedy learners hunt stag every round after training."""
    policy = {"type": "iql", "gamma": 0.5, **({"prior": prior} if prior else {})}
    data = {"name": "stag_hunt_prior", "game": GAME, "rounds": ROUNDS,
            "agents": [{"id": "a", "policy": policy}, {"id": "b", "policy": policy}]}
    result = train(parse_scenario(data), "iql", steps, seed, out / f"{seed}-{bool(prior)}", device="cpu",
                   final_episodes=0, tensorboard=False, eval_every=steps)
    return result.final_eval["eval_cooperation/a"] == 1.0 and result.final_eval["eval_cooperation/b"] == 1.0


def share(seeds: int, steps: int, prior: dict | None) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        return sum(reaches_stag(s, steps, prior, Path(tmp)) for s in range(seeds)) / seeds


if __name__ == "__main__":
    seeds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 4_000
    print(f"uniform exploration: {share(seeds, steps, None):.2f} of {seeds} seeds reach (Stag, Stag)")
    for p in (0.6, 0.9):
        print(f"prior Stag {p}:      {share(seeds, steps, {'Stag': p, 'Hare': round(1 - p, 2)}):.2f} of {seeds} seeds reach (Stag, Stag)")
