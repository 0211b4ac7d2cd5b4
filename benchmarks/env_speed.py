"""Environment speed, side by side in one run (ratios matter, machines are noisy).

1. Steps per second of `mas.make_env` for a 2-player prisoner's dilemma and an 8-player
   commons, next to PettingZoo's own `rps_v2` parallel env (needs `pip install pygame`).
   Actions are drawn in bulk beforehand, so the figure is the env's own cost.
2. Agent-steps per second of the batched game (the code RL training uses) for 4,096
   copies, stepping numpy arrays directly.

Next to them a trivial dict-in dict-out PD `ParallelEnv` (`TrivialPD`): the floor of any
PettingZoo env. Measured 2026-12-01 on the 2-core dev box (loaded; `--clock cpu`, one run
of each tree side by side): mas PD 58.6k -> 274k steps/s, trivial 1.07M, ratio 0.055 ->
0.257, after memoised single-copy steps (`mas.state_memo`: a state and joint action seen
before is a dict lookup, the step record's arrays are shared read-only constants, counters
plain ints); earlier 29.7k (0.027) before the single-copy fast path. What remains per step
is Python dict building (observation, reward, info dicts) and four small array copies (the
observations and masks users keep). The commons (no memoisable step) stays at ~16k.

Run: .venv/bin/python benchmarks/env_speed.py [--seconds 3] [--clock cpu]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import mas
from pettingzoo import ParallelEnv

from mas import registry
from mas.scenario import CommsConfig

clock = time.perf_counter  # --clock cpu: process CPU time, fair on a machine shared with other jobs


class TrivialPD(ParallelEnv):
    """The floor: a dict-in dict-out iterated PD written directly in Python (observation:
    the opponent's last action, 2 before the first round), no arrays, no checks."""

    metadata = {"name": "trivial_pd_v0"}
    PAYOFF = {(0, 0): (3.0, 3.0), (0, 1): (0.0, 5.0), (1, 0): (5.0, 0.0), (1, 1): (1.0, 1.0)}

    def __init__(self, rounds: int = 1000) -> None:
        from gymnasium import spaces

        self.possible_agents = ["a", "b"]
        self.rounds = rounds
        self._action = spaces.Discrete(2)
        self._observation = spaces.Discrete(3)

    def action_space(self, agent: str):
        return self._action

    def observation_space(self, agent: str):
        return self._observation

    def reset(self, seed=None, options=None):
        self.agents = list(self.possible_agents)
        self.round = 0
        return {"a": 2, "b": 2}, {"a": {}, "b": {}}

    def step(self, actions):
        a, b = actions["a"], actions["b"]
        ra, rb = self.PAYOFF[a, b]
        self.round += 1
        done = self.round >= self.rounds
        if done:
            self.agents = []
        return ({"a": b, "b": a}, {"a": ra, "b": rb}, {"a": False, "b": False},
                {"a": done, "b": done}, {"a": {}, "b": {}})


def time_parallel_env(env, seconds: float, rng: np.random.Generator) -> float:
    """Steps/s of a PettingZoo parallel env with pre-drawn discrete actions."""
    agents = list(env.possible_agents)
    n_actions = {a: env.action_space(a).n for a in agents}
    draws = {a: rng.integers(0, n_actions[a], size=100_000) for a in agents}
    env.reset(seed=0)
    steps, i = 0, 0
    start = clock()
    while clock() - start < seconds:
        for _ in range(1000):
            if not env.agents:
                env.reset()
            env.step({a: int(draws[a][i]) for a in env.agents})
            i = (i + 1) % 100_000
        steps += 1000
    return steps / (clock() - start)


def time_batched_game(scenario_name: str, batch: int, seconds: float, rng: np.random.Generator) -> float:
    """Agent-steps/s of the batched game itself (no PettingZoo layer)."""
    scenario = mas.load_scenario(scenario_name)
    game = registry.make_game(scenario.game, len(scenario.agents))
    state = game.reset(batch, rng)
    actions = rng.integers(0, game.num_actions, size=(64, batch, game.n_agents))
    steps, i = 0, 0
    start = clock()
    while clock() - start < seconds:
        result = game.step(state, actions[i % 64], rng)
        game.observe(result.state)
        state = result.state
        if result.terminated.any():
            state = game.reset(batch, rng)
        steps += 1
        i += 1
    return steps * batch * game.n_agents / (clock() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall time, or this process's CPU time (for a loaded machine)")
    args = parser.parse_args()
    global clock
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    rng = np.random.default_rng(0)

    quiet_pd = mas.load_scenario("prisoners_dilemma").model_copy(update={"rounds": 1000})
    quiet_commons = mas.load_scenario("commons").model_copy(update={"comms": CommsConfig(), "rounds": 1000})
    rows = [
        ("mas prisoners_dilemma (2 agents)", time_parallel_env(mas.make_env(quiet_pd), args.seconds, rng)),
        ("mas commons (8 agents)", time_parallel_env(mas.make_env(quiet_commons), args.seconds, rng)),
    ]
    try:
        from pettingzoo.classic import rps_v2

        rows.append(("pettingzoo rps_v2 (2 agents)", time_parallel_env(rps_v2.parallel_env(max_cycles=1000), args.seconds, rng)))
    except ImportError as exc:
        print(f"(rps_v2 skipped: {exc}; pip install pygame)")
    rows.append(("trivial dict PD (2 agents)", time_parallel_env(TrivialPD(1000), args.seconds, rng)))
    print(f"{'env':40s} {'steps/s':>12s}")
    for name, rate in rows:
        print(f"{name:40s} {rate:12,.0f}")
    rates = dict(rows)
    trivial = rates["trivial dict PD (2 agents)"]
    print(f"ratio mas PD / trivial dict PD: {rows[0][1] / trivial:.3f}")
    if "pettingzoo rps_v2 (2 agents)" in rates:
        print(f"ratio mas PD / rps_v2: {rows[0][1] / rates['pettingzoo rps_v2 (2 agents)']:.2f}")

    print()
    print(f"{'batched game, 4096 copies':40s} {'agent-steps/s':>14s}")
    for name in ("prisoners_dilemma", "commons", "public_goods", "signalling"):
        print(f"{name:40s} {time_batched_game(name, 4096, args.seconds, rng):14,.0f}")


if __name__ == "__main__":
    main()
