"""Environment steps per second while training, on CPU and (when present) on CUDA.

    python benchmarks/train_speed.py [--seconds 3] [--device cpu cuda] [--clock cpu]

Each case trains for about `--seconds` of wall time after a short warm-up and counts
environment steps (copies x vector steps) including the learner's updates. It also times
the batched env alone, with and without a scripted opponent, because scripted opponents
act through the `Policy` interface copy by copy (their memory is per agent id), which is
the cost that decides whether to vectorise them. Prints one table; nothing is asserted.

Side by side with tabular IQL it times a plain numpy tabular Q-learner on the same game
(the iterated PD against tit for tat, 20 rounds, the same copies, epsilon-greedy, the same
batched update), written directly over arrays: the speed a tabular learner can have here.
Measured 2026-12-01 on the 2-core dev box (loaded; CPU seconds, interleaved runs): tabular
IQL / plain 0.11 -> 0.12-0.13 at 16 copies, 0.12-0.13 -> 0.15-0.16 at 256 copies, after one
Q-table lookup per observation batch (shared by acting and the update, reused across steps)
and the env reusing the engine's observations and masks. Then (`--clock cpu`, one run of
each tree side by side): 0.12 -> 0.19 at 16 copies (86.9k -> 139.5k steps/s), 0.14 -> 0.20
at 256 copies (910k -> 1.31M), self-play 762k -> 1.06M, after numpy end to end for tabular
learners (`VectorEnv.use_tabular_steps`: no tensors, no global state), no replacing of
illegal actions when all are legal, and a small batch's Q-table rows looked up by bytes.
Then (`--clock cpu`, one run of each tree): 0.20 -> 0.52 at 16 copies (145k -> 374k
steps/s), 0.19 -> 0.54 at 256 copies (1.23M -> 3.54M), self-play 1.11M -> 2.18M, after
memoised training steps (`mas.batch_memo`: every copy's state an id; the step, the
observations and tit for tat's moves read from tables by id and joint action) and Q-table
rows by state id. What remains per vector step at 16 copies (~40 us against the plain
learner's ~21): the engine's ~17 small numpy calls and bookkeeping (~11 us), the env's
views and returns (~6 us) and the learner (~23 us, about the plain learner's own work).
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

clock = time.perf_counter  # --clock cpu: process CPU time, fair on a machine shared with other jobs

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
    start, steps = clock(), 0
    while clock() - start < seconds:
        step, _, n = learner.collect_and_update(env, step)
        steps += n
    return name, steps / (clock() - start)


class PlainQ:
    """A plain tabular Q-learner over B copies of the iterated PD against tit for tat: the
    state is the last joint action (4) or the start (index 4), Q is a [5, 2] numpy array."""

    PAYOFF = np.array([[3.0, 0.0], [5.0, 1.0]])  # mine, by (my action, its action): C=0, D=1

    def __init__(self, copies: int, rounds: int = 20, seed: int = 0, alpha: float = 0.1, gamma: float = 0.95) -> None:
        self.b, self.rounds, self.alpha, self.gamma = copies, rounds, alpha, gamma
        self.rng = np.random.default_rng(seed)
        self.q = np.zeros((5, 2))
        self.state = np.full(copies, 4)
        self.theirs = np.zeros(copies, dtype=np.int64)  # tit for tat: cooperate first
        self.round = np.zeros(copies, dtype=np.int64)
        self.epsilon = 0.1

    def step(self) -> None:
        greedy = self.q[self.state].argmax(1)
        explore = self.rng.random(self.b) < self.epsilon
        mine = np.where(explore, self.rng.integers(0, 2, self.b), greedy)
        reward = self.PAYOFF[mine, self.theirs]
        nxt = mine * 2 + self.theirs
        self.round += 1
        done = self.round >= self.rounds
        target = reward + self.gamma * self.q[nxt].max(1)  # truncation bootstraps, as in mas
        td = target - self.q[self.state, mine]
        flat = self.state * 2 + mine
        sums = np.bincount(flat, weights=td, minlength=10)
        counts = np.bincount(flat, minlength=10)
        touched = counts > 0
        self.q.reshape(-1)[touched] += self.alpha * sums[touched] / counts[touched]
        self.theirs = mine  # tit for tat copies my move
        self.state = np.where(done, 4, nxt)
        self.theirs = np.where(done, 0, self.theirs)
        self.round = np.where(done, 0, self.round)


def time_plain(name: str, copies: int, seconds: float) -> tuple[str, float]:
    learner = PlainQ(copies)
    start, steps = clock(), 0
    while clock() - start < seconds:
        learner.step()
        steps += copies
    return name, steps / (clock() - start)


def time_env(name: str, scenario_learners: tuple, num_envs: int, seconds: float) -> tuple[str, float]:
    scenario, learners = scenario_learners
    env = VectorEnv(scenario, learners, num_envs, seed=0)
    env.reset()
    actions = np.random.default_rng(0).integers(0, 2, size=(64, num_envs, len(learners)))
    start, steps, i = clock(), 0, 0
    while clock() - start < seconds:
        env.step(actions[i % 64])
        steps, i = steps + num_envs, i + 1
    return name, steps / (clock() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--device", nargs="+", default=["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall time, or this process's CPU time (for a loaded machine)")
    args = parser.parse_args()
    global clock
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    torch.set_num_threads(1)  # as `mas train` does on CPU
    rows = [
        time_env("env only: PD self-play, 1024 copies", pd(None), 1024, args.seconds),
        time_env("env only: PD vs tit-for-tat (per-copy policy), 64 copies", pd("tit_for_tat"), 64, args.seconds),
    ]
    side = [
        time_training("[cpu] tabular IQL, PD vs tit-for-tat, 16 copies", pd("tit_for_tat"), "iql", IQLConfig(), "cpu", args.seconds),
        time_plain("[cpu] plain numpy tabular Q, PD vs tit-for-tat, 16 copies", 16, args.seconds),
        time_training("[cpu] tabular IQL, PD vs tit-for-tat, 256 copies", pd("tit_for_tat"), "iql", IQLConfig(num_envs=256), "cpu", args.seconds),
        time_plain("[cpu] plain numpy tabular Q, PD vs tit-for-tat, 256 copies", 256, args.seconds),
    ]
    rows += side
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
    print(f"\ntabular IQL / plain numpy Q-learner: {side[0][1] / side[1][1]:.2f} (16 copies), {side[2][1] / side[3][1]:.2f} (256 copies)")


if __name__ == "__main__":
    main()
