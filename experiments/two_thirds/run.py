"""Guess two-thirds of the average: do learners' choices go toward 0?

Ten MAPPO players (shared actor, centralised critic) play `two_thirds.yaml`: 20 rounds,
numbers 0..100 on a grid of 5, the closest to 2/3 of the mean wins. After training, they
play greedy episodes through `mas run`; we report the mean number chosen in each round,
with a 95% interval across seeds, next to the Nash equilibrium (0), uniform random play
(50) and people's first-round mean in Nagel's (1995) experiment (about 36, falling over
rounds). GAMA-Bench (2025) uses this setting to score LLMs (GPT-4o 66.7 overall); LLM players
are in experiments/llm_social_dilemmas/.

    python experiments/two_thirds/run.py [--quick] [--seeds 8] [--workers 2]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import gallery as g  # noqa: E402

FOLDER = Path(__file__).resolve().parent
ROUNDS = 20
STEPS, QUICK_STEPS = 60_000, 5_000


def choices_by_round(run_dir: Path, _result: Any) -> list[float]:
    """Mean number chosen in each round of the greedy episodes played after training."""
    from mas.analysis.load import load_run

    steps = load_run(run_dir / "eval").steps
    steps = steps.assign(number=steps["action_name"].astype(float))
    return steps.groupby("round")["number"].mean().reindex(range(ROUNDS)).tolist()


def one_seed(seed: int, steps: int, device: str) -> list[float]:
    return g.train_seed(FOLDER / "two_thirds.yaml", "mappo", steps, seed, device, final_episodes=2, read=choices_by_round)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = g.parse(argv, __doc__.splitlines()[0], seeds=8, quick_seeds=2, folder=FOLDER)
    steps = QUICK_STEPS if args.quick else STEPS
    per_seed = g.run_seeds(one_seed, [dict(seed=s, steps=steps, device=args.device) for s in range(args.seeds)], args.workers)
    curve = np.asarray(per_seed)  # [seeds, rounds]
    intervals = [g.mean_interval(curve[:, r], 0.0, 100.0) for r in range(ROUNDS)]
    rows = [{"round": r + 1, "mas (MAPPO): mean choice [95% CI]": g.fmt(intervals[r], 1),
             "reference": {0: "people (Nagel 1995): ~36; random: 50; Nash: 0"}.get(r, "Nash: 0")} for r in (0, 4, 9, 19)]
    _figure(intervals, args.out)
    g.write_results(args.out, f"Guess two-thirds of the average: choices over rounds ({args.seeds} seeds, {steps} steps)", rows,
                    notes=NOTES, data={"steps": steps, "per_seed": per_seed})
    return {"per_seed": per_seed, "steps": steps}


NOTES = """Mean number chosen by the ten trained players in each round of two greedy episodes, then the mean
and 95% Student-t interval across seeds. Untrained (uniform) players choose 50 on average."""


def _figure(intervals: list[tuple[float, float, float]], out: Path) -> None:
    fig, (ax,) = g.figure(width=6.4, height=3.8)
    rounds = np.arange(1, ROUNDS + 1)
    mean, low, high = (np.asarray(x) for x in zip(*intervals))
    ax.plot(rounds, mean, color="#0072B2", label="mas: trained MAPPO players")
    ax.fill_between(rounds, low, high, color="#0072B2", alpha=0.2)
    ax.axhline(50, color="#999999", ls=":", label="uniform random (50)")
    ax.plot([1], [36], "o", color="#E69F00", label="people, first round (Nagel 1995)")
    ax.axhline(0, color="#000000", lw=0.8, label="Nash equilibrium (0)")
    ax.set_xlabel("round")
    ax.set_ylabel("mean number chosen")
    ax.set_ylim(-2, 60)
    ax.legend(fontsize=8)
    g.save(fig, out)


if __name__ == "__main__":
    print(np.asarray(main()["per_seed"]).mean(axis=0).round(1).tolist())
