"""Environment steps per second of llm-ppo on the embedded model: one episode at a time
against many episodes at once (copies of the episode engine, every step's decisions of all
copies in one packed scoring call), side by side in one run.

    python benchmarks/llm_train_speed.py [--episodes 32] [--device cpu|cuda] [--clock cpu] [--threads 1]
    python benchmarks/llm_train_speed.py --against a1a2d55 [--train-steps 48] [--set KEY=VALUE]

`--against COMMIT` times whole training runs instead: `mas train SCENARIO --algo llm-ppo
--steps N --seed 0` of this repository at COMMIT (checked out in a temporary git worktree)
and of the current tree, the same scenario file, hyperparameters and seed, each in its own
process on one torch thread, the two at once; it prints each run's CPU seconds and env
steps per CPU second. a1a2d55 is the last commit before batched rollouts (the one-episode-
at-a-time path and its scorer, as the LLM-learning issue measured them).

Scenario: `scenarios/llm_vs_tft.yaml` (the LLM in score mode against tit for tat, rounds
continue with probability 0.75 up to 10). For each path it plays the same seeded episodes
(`--episodes`, the copies of the batched path) with the trainable model (LoRA adapters,
base-model scores for the KL term, as training does), first untimed (warm-up), then timed,
and prints env steps/s of the rollouts, then of whole llm-ppo iterations (rollouts plus one
update, `epochs` 1). Both paths play identical trajectories (tested), so the steps counted
are the same. Prints figures; never part of the tests.

Measured on the 2-core machine (loaded; `--clock cpu --threads 1`, 32 episodes, 87 env
steps): rollouts one at a time 8.7 steps/s, 32 copies at once 10.2 steps/s (1.2x); one
update (epochs 1) ~20 s either way, so an llm-ppo iteration is 2.8 vs 3.0 steps/s. Before
this benchmark's changes to the rollout scorer (remembered scores per weights version, the
system turn's keys/values kept and reused) the one-at-a-time path ran 2.7 steps/s. The
batching gain is small here because this game's prompts repeat (few distinct prompts per
step, each computed once either way) and the CPU is compute-bound; the update dominates.
"""

from __future__ import annotations

import argparse
import functools
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from mas.memory import release_freed_memory, resident_bytes
from mas.scenario import load_scenario

print = functools.partial(print, flush=True)  # noqa: A001 (figures appear as they are measured)


def against(commit: str, scenario: str, steps: int, sets: list[str]) -> None:
    """`mas train` at `commit` and now, side by side: CPU seconds and env steps per CPU second."""
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old"
        subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", "-q", str(old), commit], check=True)
        try:
            runs = {f"at {commit}": old, "now": root}
            env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
            started = {}
            for label, tree in runs.items():
                out = Path(tmp) / label.replace(" ", "_")
                command = [sys.executable, "-m", "mas.cli", "train", scenario, "--algo", "llm-ppo", "--steps", str(steps),
                           "--seed", "0", "--device", "cpu", "--out", str(out), "--no-progress"]
                command += [item for pair in sets for item in ("--set", pair)]
                started[label] = (subprocess.Popen(command, cwd=tree, env={**env, "PYTHONPATH": str(tree)},
                                                   stdout=subprocess.DEVNULL), out, time.perf_counter())
            print(f"{scenario}: mas train --algo llm-ppo --steps {steps} --seed 0 {' '.join(sets)}, one thread each, both at once")
            rates = {}
            by_pid = {process.pid: label for label, (process, _, _) in started.items()}
            while by_pid:
                pid, status, usage = os.wait4(-1, 0)
                if pid not in by_pid:
                    continue
                label = by_pid.pop(pid)
                process, out, start = started[label]
                process.returncode = os.waitstatus_to_exitcode(status)
                if process.returncode:
                    raise SystemExit(f"{label}: mas train exited with {process.returncode}")
                curve = pd.read_csv(out / "curves.csv")
                done, cpu = int(curve["step"].max()), usage.ru_utime + usage.ru_stime
                rates[label] = done / cpu
                print(f"  {label:16s} {done:4d} env steps, {cpu:8.1f} CPU s ({time.perf_counter() - start:7.1f} s wall, "
                      f"{curve['wall_s'].max():7.1f} s of it training) -> {rates[label]:6.3f} env steps per CPU s")
            rates = {label: rates[label] for label in started}
            before, now = rates.values()
            print(f"  training throughput now / at {commit}: {now / before:.1f}x")
        finally:
            subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(old)], check=False)


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="scenarios/llm_vs_tft.yaml")
    parser.add_argument("--episodes", type=int, default=32, help="episodes per measurement (= copies when batched)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="cpu: process CPU time, fair on a machine shared with other jobs")
    parser.add_argument("--no-update", action="store_true", help="time rollouts only")
    parser.add_argument("--against", metavar="COMMIT", help="time whole `mas train` runs: this repository at COMMIT and now")
    parser.add_argument("--train-steps", type=int, default=48, help="with --against: env steps of each training run")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="with --against: llm-ppo hyperparameter")
    args = parser.parse_args()
    if args.against:
        return against(args.against, args.scenario, args.train_steps, args.set)
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter

    from mas.agents.llm.models import load_model
    from mas.agents.rl.config import LLMPPOConfig
    from mas.agents.rl.llm_model import LoraSettings, TrainableLM
    from mas.agents.rl.scoring_backend import ScoringBackend
    from mas.agents.rl.llm_ppo import LLMPPO, Rollouts

    scenario = load_scenario(args.scenario)
    learners = [a.id for a in scenario.agents if a.policy.type == "llm"]
    lm = TrainableLM(load_model("default", args.device, "float32"), LoraSettings(), seed=0)
    rollouts = Rollouts(scenario, learners, ScoringBackend(lm, "embedded+lora"))

    def one_at_a_time(episodes: list[int]) -> list[Any]:
        return [rollouts.play(1, e) for e in episodes]

    def batched(episodes: list[int]) -> list[Any]:
        return rollouts.play_many(1, episodes)

    def timed(play: Any) -> tuple[float, int, list[Any]]:
        # warm-up on other episodes (kernels for these shapes, memory touched); then no kept
        # prefix keys/values, as after an update: the timed episodes' prompts are not cached
        play(list(range(1000, 1000 + args.episodes)))
        lm.forget_prefixes()
        start = clock()
        played = play(list(range(args.episodes)))
        return clock() - start, sum(stats.steps for _, stats in played), played

    print(f"{args.scenario}: {args.episodes} episodes, device {args.device}, {torch.get_num_threads()} threads, "
          f"{args.clock} clock")
    rates = {}
    for name, play in (("one episode at a time", one_at_a_time), (f"{args.episodes} copies at once", batched)):
        seconds, steps, played = timed(play)
        rates[name] = steps / seconds
        print(f"  rollouts, {name:24s} {steps:4d} env steps in {seconds:7.2f} s = {rates[name]:8.2f} steps/s")
        if not args.no_update:
            learner = LLMPPO(lm, LLMPPOConfig(epochs=1), centralised=False, state_dim=0, learners=learners, seed=0)
            start = clock()
            learner.update([t for trajectories, _ in played for t in trajectories])
            update = clock() - start
            print(f"  + one update of {steps} decisions: {update:6.2f} s -> llm-ppo iteration "
                  f"{steps / (seconds + update):8.2f} env steps/s")
            held = resident_bytes()
            release_freed_memory()  # as `mas train` does after every update
            print(f"  resident memory after the update: {held / 2**30:.2f} GB, after giving freed memory back: "
                  f"{resident_bytes() / 2**30:.2f} GB (peak so far {peak_gb():.2f} GB)")
    slow, fast = rates.values()
    print(f"  speed-up of the rollouts: {fast / slow:.1f}x")


if __name__ == "__main__":
    main()
