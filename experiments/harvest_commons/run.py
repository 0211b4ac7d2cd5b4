"""Commons harvest with MAPPO learners: the social outcomes over training (Perolat et al. 2017).

Six harvesters of `harvest.yaml` (the grid world's commons: apples regrow only next to
apples, a beam tags an agent out for 25 steps) train with MAPPO. At evenly spaced points of
training the checkpoint then held plays a few episodes through `mas run` (actions sampled
from the policy, as in training), and mas's analysis reads efficiency (apples per step),
equality (1 - Gini of the returns), sustainability (the mean round of a reward) and peace
(agents on the map per step) from the store, with the tagging rate; step 0 is random play.
Reference (Perolat et al. 2017, 10 agents, 1000-step episodes, millions of steps): training
passes a naive phase (random play: little eaten, the resource lasts, peace high), a tragedy
(learners eat the patches bare: efficiency up then sustainability down) and a sustainable
phase (efficiency and sustainability both up, with tagging: peace down).
Budget: the full run (150k steps a seed) takes about 2 CPU-minutes a seed.

    python experiments/harvest_commons/run.py [--quick] [--seeds 4] [--workers 2] [--steps N]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import gallery as g  # noqa: E402
import grid_social as social  # noqa: E402

FOLDER = Path(__file__).resolve().parent
SCENARIO = FOLDER / "harvest.yaml"
STEPS, QUICK_STEPS = 150_000, 30_000
SNAPSHOTS, QUICK_SNAPSHOTS = 6, 1
EPISODES, QUICK_EPISODES = 4, 2


def one_seed(seed: int, steps: int, snapshots: int, episodes: int, device: str) -> list[dict[str, float]]:
    """The outcomes at step 0 (random play) and at each snapshot: [{step, metric: value}]."""

    def replay(_run_dir: Path, checkpoints: list[Path]) -> list[dict[str, float]]:
        points = [(0, None)] + [(int(c.stem), c) for c in checkpoints]
        return [{"step": step, **social.play(SCENARIO, episodes, 1000 + seed, c)} for step, c in points]

    return g.train_snapshots(SCENARIO, "mappo", steps, seed, snapshots, replay, device)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    def options(parser: Any) -> None:
        parser.add_argument("--steps", type=int, default=None, help=f"training steps a seed (default {STEPS:,}; {QUICK_STEPS:,} with --quick)")

    args = g.parse(argv, __doc__.splitlines()[0], seeds=4, quick_seeds=1, folder=FOLDER, options=options)
    steps = args.steps or (QUICK_STEPS if args.quick else STEPS)
    job = dict(steps=steps, snapshots=QUICK_SNAPSHOTS if args.quick else SNAPSHOTS,
               episodes=QUICK_EPISODES if args.quick else EPISODES, device=args.device)
    per_seed = g.run_settings(one_seed, {"mappo": job}, args.seeds, args.workers)["mappo"]
    report(per_seed, steps, args.out)
    return {"per_seed": per_seed, "steps": steps}


def report(per_seed: list[list[dict[str, float]]], steps: int, out: Path) -> None:
    """Rows at random play, at the peak of efficiency... : the table; the curves: the figure."""
    curves = {m: np.asarray([[p[m] for p in seed] for seed in per_seed]) for m in social.METRICS}
    points = [p["step"] for p in per_seed[0]]
    rows = []
    for i, step in enumerate(points):
        row = {"training step": f"{step:,}" + (" (random play)" if step == 0 else "")}
        for m in social.METRICS:
            row[f"{m} [95% CI]"] = g.fmt(g.mean_interval(curves[m][:, i]))
        rows.append(row)
    _figure(curves, points, out)
    g.write_results(out, f"Commons harvest, MAPPO: social outcomes over training ({len(per_seed)} seeds, {steps:,} steps)",
                    rows, notes=NOTES, data={"steps": steps, "per_seed": per_seed})


NOTES = """Each point: the checkpoint then held plays episodes of 100 rounds with actions sampled from its
policy; the interval is across seeds. Efficiency: apples eaten per step by all six; equality: 1 - Gini
of the six returns; sustainability: the mean round (1-100) in which a reward came; peace: agents on
the map per step (6 without tagging); tagging rate: the share of agent steps that fire the beam.
Reference phases (Perolat et al. 2017): naive (random play), tragedy (efficiency up,
sustainability down), sustainable (efficiency and sustainability up, peace down)."""


def _figure(curves: dict[str, np.ndarray], points: list[int], out: Path) -> None:
    fig, axes = g.figure(ncols=len(social.METRICS), width=3.2, height=3.0)
    x = np.asarray(points) / 1000
    for ax, m in zip(axes, social.METRICS):
        values = curves[m]
        for seed in values:
            ax.plot(x, seed, color="#0072B2", alpha=0.25, lw=0.8)
        ax.plot(x, np.nanmean(values, axis=0), color="#0072B2", lw=2, marker="o", ms=3, label="mean over seeds")
        ax.set_xlabel("training steps (thousands)")
        ax.set_title(m, fontsize=9)
    axes[0].legend(fontsize=7)
    g.save(fig, out)


if __name__ == "__main__":
    result = main()
    for point in np.asarray([[list(p.values()) for p in s] for s in result["per_seed"]]).mean(0):
        print(np.round(point, 3).tolist())
