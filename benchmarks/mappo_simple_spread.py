"""MAPPO on MPE simple_spread (3 agents, 25-step episodes) through the PettingZoo adapter,
compared with "The Surprising Effectiveness of PPO in Cooperative Multi-Agent Games".

    pip install mpe2        # benchmark dependency (extra 'mpe')
    python benchmarks/mappo_simple_spread.py --steps 1000000 [--num-envs 128] [--seed 0]

Configuration: the official MPE one (128 copies, 25-step rollouts, 10 epochs, 1
minibatch, lr 7e-4, clip 0.2, GAE 0.95, gamma 0.99, entropy 0.01, Huber 10, value
normalisation, LayerNorm, orthogonal init, hidden 64, shared actor, centralised critic on
`env.state()`), i.e. `MAPPOConfig()` defaults. The paper trains for 20M steps.

Units. mpe2 gives agent i the reward 0.5*G + 0.5*c_i per step (`local_ratio=0.5`), with G
the global reward (minus the summed landmark distances) and c_i its collision penalty
(-1 per *other* agent it overlaps). The on-policy code behind the paper gives every agent
the shared reward sum_i (G + c'_i) and reports "average episode rewards" = that per-step
reward x 25, where its c'_i also counts each agent's collision with *itself* (its loop
over all agents includes the agent): c'_i = c_i - 1, a constant -3 per step for 3
agents, -75 per episode. Since 2 * sum_i (0.5G + 0.5c_i) = 3G + sum_i c_i, the official
figure is `official_units = 6 x mean per-agent return - 75`. (An earlier version left out
the -75 and so claimed to beat the official -120 when it did not: -108.7 without it is
about -184 in official units.) The random policy gives about -26.1 per agent (measured
with mpe2), about -232 in official units; the maintainers' runs of the official code
converge near -120 (issues of marlbenchmark/on-policy), the figure to compare with at 20M steps.
Prints progress lines and a final greedy evaluation; nothing is asserted.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from mas.agents.rl.config import MAPPOConfig
from mas.agents.rl.mappo import MAPPO
from mas.agents.rl.pettingzoo_adapter import PettingZooVectorEnv

PAPER_REFERENCE = -120.0  # official MAPPO on simple_spread, 20M steps, official units (see docstring)
RANDOM_PER_AGENT = -26.1  # random policy on mpe2 simple_spread, measured
SELF_COLLISIONS = -75.0  # the official reward's constant self-collision term per episode (3 agents x 25 steps)


def official_units(per_agent: float) -> float:
    """A mean per-agent mpe2 episode return in the units of the official code's curves."""
    return 6 * per_agent + SELF_COLLISIONS


def make_env():  # noqa: ANN201
    from mpe2 import simple_spread_v3

    return simple_spread_v3.parallel_env(N=3, max_cycles=25, local_ratio=0.5)


def evaluate(learner: MAPPO, episodes: int, seed: int) -> float:
    """Mean per-agent return of greedy play over `episodes` episodes."""
    env = PettingZooVectorEnv(make_env, num_envs=episodes, seed=seed)
    step, total = env.reset(), np.zeros(episodes)
    for _ in range(25):
        step = env.step(learner.act_batch(step, greedy=True))
        total += step.rewards.numpy().mean(1)
    return float(total.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--num-envs", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(1)
    device = torch.device(args.device)
    env = PettingZooVectorEnv(make_env, num_envs=args.num_envs, seed=args.seed, device=device)
    learner = MAPPO(MAPPOConfig(num_envs=args.num_envs), env, device, seed=args.seed)
    step = env.reset()
    start, env_time, recent = time.perf_counter(), 0.0, []
    original_step = env.step

    def timed_step(actions):  # noqa: ANN001, ANN202 - share of the time spent in the env
        nonlocal env_time
        t = time.perf_counter()
        out = original_step(actions)
        env_time += time.perf_counter() - t
        return out

    env.step = timed_step
    next_report = 0
    print(f"MAPPO simple_spread: {args.num_envs} copies, seed {args.seed}, budget {args.steps:,} env steps")
    while learner.env_steps < args.steps:
        step, _, _ = learner.collect_and_update(env, step)
        if len(step.finished_returns):
            recent.append(step.finished_returns.mean(1))
        if learner.env_steps >= next_report:
            per_agent = float(np.concatenate(recent[-4:]).mean()) if recent else float("nan")
            elapsed = time.perf_counter() - start
            print(f"steps {learner.env_steps:>10,}  {learner.env_steps / elapsed:>7,.0f} steps/s  env {env_time / elapsed:4.0%}  "
                  f"train return/agent {per_agent:7.2f}  official units {official_units(per_agent):8.1f}", flush=True)
            next_report += max(args.steps // 20, 1)
    elapsed = time.perf_counter() - start
    greedy = evaluate(learner, 100, args.seed + 1)
    print(f"done: {learner.env_steps:,} steps in {elapsed:.0f} s ({learner.env_steps / elapsed:,.0f} steps/s, {env_time / elapsed:.0%} in the env)")
    print(f"greedy evaluation, 100 episodes: return/agent {greedy:.2f}  official units {official_units(greedy):.1f}")
    print(f"reference: random {RANDOM_PER_AGENT} /agent ({official_units(RANDOM_PER_AGENT):.0f} official units); "
          f"official MAPPO at 20M steps about {PAPER_REFERENCE:.0f} official units")


if __name__ == "__main__":
    main()
