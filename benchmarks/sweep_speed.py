"""Seeds per second of a seed sweep played as one engine batch (`mas.sweep`), next to the
same episodes played seed by seed (`mas.runner.play_episode`, what `mas run --seed S`
plays), in one run; with the peak memory of the process.

    .venv/bin/python benchmarks/sweep_speed.py [--seeds 10000] [--scenario prisoners_dilemma] [--alone 200]

Both sides play episode 0 of the scenario under each seed and keep its totals; the batch
is checked equal to the one-by-one episodes on the seeds both played.
"""

from __future__ import annotations

import argparse
import resource
import time

from mas.episode import EpisodeEngine
from mas.runner import play_episode
from mas.scenario import load_scenario
from mas.sweep import sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10_000)
    parser.add_argument("--scenario", default="prisoners_dilemma")
    parser.add_argument("--alone", type=int, default=200, help="seeds played one by one for the comparison")
    args = parser.parse_args()
    scenario = load_scenario(args.scenario)
    seeds = list(range(args.seeds))

    start = time.perf_counter()
    result = sweep(scenario, seeds)
    batch = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    start = time.perf_counter()
    alone = [play_episode(EpisodeEngine(scenario, seed=s), 0, s) for s in seeds[: args.alone]]
    one_by_one = time.perf_counter() - start
    same = all(result.returns[i].tolist() == [r.returns[a] for a in scenario.agent_ids] for i, r in enumerate(alone))

    rounds = int(result.totals.rounds.sum())
    print(f"{args.scenario}: {args.seeds} seeds, episode 0 each ({rounds} rounds in all)")
    print(f"one batch      : {batch:7.2f} s  {args.seeds / batch:10.0f} seeds/s  (peak RSS {peak:.0f} MiB)")
    print(f"seed by seed   : {one_by_one:7.2f} s  {args.alone / one_by_one:10.0f} seeds/s  ({args.alone} seeds)")
    print(f"batch speed-up : {(args.seeds / batch) / (args.alone / one_by_one):.1f}x; "
          f"first {args.alone} seeds identical to one by one: {same}")


if __name__ == "__main__":
    main()
