"""Environment steps per second while training, on CPU and (when present) on CUDA.

    python benchmarks/train_speed.py [--seconds 3] [--device cpu cuda]

Each case trains for about `--seconds` of wall time after a short warm-up and counts
environment steps (copies x vector steps) including the learner's updates. It also times
the batched env alone, with and without a scripted opponent, because scripted opponents
act through the `Policy` interface copy by copy (their memory is per agent id), which is
the cost that decides whether to vectorise them. Prints one table; nothing is asserted.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from mas.training.checkpoint import make_learner
from mas.agents.rl.config import IQLConfig, MAPPOConfig
from mas.scenario import parse_scenario
from mas.vector import VectorEnv

PD = {
    "kind": "normal_form", "actions": ["C", "D"], "cooperate": "C", "defect": "D",
    "payoffs": {"C,C": [3, 3], "C,D": [0, 5], "D,C": [5, 0], "D,D": [1, 1]},
}


def pd(opponent: str | None) -> tuple:
    agents = [{"id": "me", "policy": "iql"}, {"id": "them", "policy": opponent or "iql"}]
    learners = ["me"] if opponent else ["me", "them"]
    return parse_scenario({"name": "pd", "game": PD, "rounds": 20, "agents": agents}), learners


def signalling() -> tuple:
    agents = [{"id": "speaker", "policy": "mappo"}, {"id": "listener", "policy": "mappo"}]
    return parse_scenario({"name": "s", "game": {"kind": "signalling"}, "rounds": 10, "agents": agents}), ["speaker", "listener"]


def time_training(name: str, scenario_learners: tuple, algo: str, config, device: str, seconds: float) -> tuple[str, float]:
    scenario, learners = scenario_learners
    env = VectorEnv(scenario, learners, config.num_envs, seed=0, device=device)
    learner = make_learner(algo, config, env, torch.device(device), seed=0, total_steps=10**9)
    step = env.reset()
    for _ in range(3):  # warm-up (allocations, first gradient steps)
        step, _, _ = learner.collect_and_update(env, step)
    start, steps = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        step, _, n = learner.collect_and_update(env, step)
        steps += n
    return name, steps / (time.perf_counter() - start)


def time_env(name: str, scenario_learners: tuple, num_envs: int, seconds: float) -> tuple[str, float]:
    scenario, learners = scenario_learners
    env = VectorEnv(scenario, learners, num_envs, seed=0)
    env.reset()
    actions = np.random.default_rng(0).integers(0, 2, size=(64, num_envs, len(learners)))
    start, steps, i = time.perf_counter(), 0, 0
    while time.perf_counter() - start < seconds:
        env.step(actions[i % 64])
        steps, i = steps + num_envs, i + 1
    return name, steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--device", nargs="+", default=["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    args = parser.parse_args()
    torch.set_num_threads(1)  # as `mas train` does on CPU
    rows = [
        time_env("env only: PD self-play, 1024 copies", pd(None), 1024, args.seconds),
        time_env("env only: PD vs tit-for-tat (per-copy policy), 64 copies", pd("tit_for_tat"), 64, args.seconds),
    ]
    for device in args.device:
        rows += [
            time_training(f"[{device}] tabular IQL, PD vs tit-for-tat, 16 copies", pd("tit_for_tat"), "iql", IQLConfig(), device, args.seconds),
            time_training(f"[{device}] tabular IQL, PD self-play, 256 copies", pd(None), "iql", IQLConfig(num_envs=256), device, args.seconds),
            time_training(f"[{device}] DQN, PD self-play, 256 copies", pd(None), "iql",
                          IQLConfig(variant="dqn", num_envs=256, learning_starts=0), device, args.seconds),
            time_training(f"[{device}] MAPPO, signalling, 128 copies x 25 steps", signalling(), "mappo", MAPPOConfig(), device, args.seconds),
            time_training(f"[{device}] MAPPO, signalling, 1024 copies x 25 steps", signalling(), "mappo", MAPPOConfig(num_envs=1024), device, args.seconds),
        ]
    width = max(len(name) for name, _ in rows)
    print(f"{'case':<{width}}  env steps/s")
    for name, rate in rows:
        print(f"{name:<{width}}  {rate:>11,.0f}")


if __name__ == "__main__":
    main()
