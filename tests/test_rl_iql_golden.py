"""Tabular IQL learns bit for bit as it did before its speed-ups: fixed-seed runs' metrics,
returns and final Q tables hashed, expectations produced by the code before the change."""

from __future__ import annotations

import hashlib

import pytest

torch = pytest.importorskip("torch")

from mas.agents.rl.config import IQLConfig  # noqa: E402
from mas.scenario import parse_scenario  # noqa: E402
from mas.training.checkpoint import make_learner  # noqa: E402
from mas.vector import VectorEnv  # noqa: E402

PD = {"kind": "normal_form", "actions": ["C", "D"], "cooperate": "C", "defect": "D",
      "payoffs": {"C,C": [3, 3], "C,D": [0, 5], "D,C": [5, 0], "D,D": [1, 1]}, "memory": 2}


def run(opponent: str | None, update: str, copies: int, steps: int) -> tuple[str, float]:
    agents = [{"id": "me", "policy": "iql"}, {"id": "them", "policy": opponent or "iql"}]
    learners = ["me"] if opponent else ["me", "them"]
    scenario = parse_scenario({"name": "pd", "game": PD, "rounds": 7, "agents": agents})
    env = VectorEnv(scenario, learners, copies, seed=3)
    config = IQLConfig(num_envs=copies, update=update)
    learner = make_learner("iql", config, env, torch.device("cpu"), seed=3, total_steps=copies * steps)
    step, digest, returns = env.reset(), hashlib.sha256(), 0.0
    for _ in range(steps):
        step, metrics, _ = learner.collect_and_update(env, step)
        digest.update(repr(sorted(metrics.items())).encode())
        returns += float(step.finished_returns.sum())
    for table in learner.tables:
        n = len(table.index)
        digest.update(table.keys[:n].tobytes())
        digest.update(table.q[:n].tobytes())
    return digest.hexdigest()[:16], returns


@pytest.mark.parametrize(("opponent", "update", "copies", "steps", "expected"), [
    ("tit_for_tat", "q_learning", 8, 300, ("8a39c61996fa35cc", 6553.0)),
    (None, "q_learning", 5, 300, ("05c0db774196de68", 4176.0)),
    (None, "sarsa", 4, 200, ("226d428a6310c438", 2943.0)),
    ("tit_for_tat", "monte_carlo", 3, 200, ("08c78052841e574b", 1540.0)),
])
def test_fixed_seed_learning_is_unchanged(opponent, update, copies, steps, expected):
    assert run(opponent, update, copies, steps) == expected
