"""Demonstrations of llm-ppo / llm-mappo from the embedded model (a benchmark, not a test).

    python benchmarks/llm_ppo_demo.py [tft|alld|coord ...] [--steps N] [--episodes N] [--set key=value ...]

- tft:   scenarios/llm_vs_tft.yaml, llm-ppo against tit for tat; target cooperation >= 0.9.
- alld:  scenarios/llm_vs_always_defect.yaml, llm-ppo against always-defect; target cooperation <= 0.1.
- coord: scenarios/llm_coordination.yaml, two LLM agents with llm-mappo; target coordination >= 0.9.

"Before" plays the scenario as written (base model) and "after" plays the run's play.yaml
(the tuned adapters loaded by the local backend), both through the normal runner on the
same seeds; cooperation is the learners' rate of cooperative actions, coordination the
share of rounds in which both players chose the same side. Prints steps and wall time.
The issue asks for 3000 steps; on a 2-core CPU the default here is far fewer (stated).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

DEMOS = {
    "tft": ("scenarios/llm_vs_tft.yaml", "llm-ppo", "cooperation", ">= 0.9"),
    "alld": ("scenarios/llm_vs_always_defect.yaml", "llm-ppo", "cooperation", "<= 0.1"),
    "coord": ("scenarios/llm_coordination.yaml", "llm-mappo", "coordination", ">= 0.9"),
}


def measure(scenario, learners: list[str], episodes: int, seed: int, what: str) -> float:
    """Cooperation of the learners, or coordination (both players paid), over played episodes."""
    from mas.runner import run

    records = run(scenario, episodes, seed)
    if what == "cooperation":
        return float(np.mean([r.cooperation[a] for r in records for a in learners if r.cooperation[a] is not None]))
    return float(np.mean([r.returns[learners[0]] / r.rounds for r in records]))  # payoff 1 per coordinated round


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("demos", nargs="*", default=list(DEMOS), choices=list(DEMOS))
    parser.add_argument("--steps", type=int, default=480, help="environment steps of training per demo (issue: 3000)")
    parser.add_argument("--episodes", type=int, default=20, help="episodes played before and after")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    import torch

    from mas.scenario import load_scenario
    from mas.training.run import train

    torch.set_num_threads(1)  # a shared 2-core machine: more threads only fight (training does the same)

    overrides = {"epochs": 2, "prefix_grad": False}  # CPU budget: see the README section
    overrides.update({k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)})
    out_root = args.out or Path(tempfile.mkdtemp(prefix="llm_ppo_demo-"))
    print(f"cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; overrides {overrides}")
    for name in args.demos:
        path, algo, what, target = DEMOS[name]
        scenario = load_scenario(path)
        learners = [a.id for a in scenario.agents if a.policy.type == "llm"]
        before = measure(scenario, learners, args.episodes, args.seed + 1000, what)
        started = time.perf_counter()
        result = train(scenario, algo, args.steps, args.seed, out_root / name, device=args.device, eval_episodes=4,
                       final_episodes=0, overrides=overrides, tensorboard=False)
        trained = time.perf_counter() - started
        after = measure(load_scenario(str(result.play_scenario)), learners, args.episodes, args.seed + 1000, what)
        print(f"{name}: {algo} {result.env_steps} steps, {what} before {before:.3f} -> after {after:.3f} "
              f"(target {target}; {args.episodes} episodes each), training wall {trained:.0f}s, run {result.out_dir}",
              flush=True)


if __name__ == "__main__":
    main()
