"""Gathering with tagging: conflict against scarcity (Leibo et al. 2017).

Two IPPO learners (PPO with independent critics, like the paper's independent learners) of
`gathering.yaml` gather apples that respawn with a fixed probability per empty apple cell per
step, and may fire a beam that tags the other out for 25 steps. The sweep trains them at
several respawn probabilities, from abundant to scarce; after training each pair plays a
few episodes through `mas run` (actions sampled from its policy) and we read the tagging
rate (the share of agent steps firing the beam) and peace (agents on the map per step) from
the store. Reference (Leibo et al. 2017): the scarcer the apples, the more the learned
policies tag (aggressiveness rises with scarcity). Random play tags in 1/6 of its steps.
Budget: the full sweep (3 scarcities x 3 seeds x 30k steps) takes about 3 CPU-minutes.

    python experiments/gathering_scarcity/run.py [--quick] [--seeds 3] [--workers 2]
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
SCENARIO = FOLDER / "gathering.yaml"
#: respawn probability per empty apple cell per step, most abundant first
RESPAWN, QUICK_RESPAWN = (0.1, 0.01, 0.003), (0.1, 0.003)
STEPS, QUICK_STEPS = 30_000, 15_000
EPISODES = 4


def one_seed(seed: int, respawn: float, steps: int, device: str) -> dict[str, float]:
    """The trained pair's outcomes (see `grid_social.METRICS`) at one respawn probability."""
    fields = {"game.regrowth": f"[{respawn}]"}

    def replay(_run_dir: Path, checkpoints: list[Path]) -> dict[str, float]:
        return social.play(SCENARIO, EPISODES, 1000 + seed, checkpoints[-1], **fields)

    return g.train_snapshots(SCENARIO, "ippo", steps, seed, 1, replay, device, **fields)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = g.parse(argv, __doc__.splitlines()[0], seeds=3, quick_seeds=2, folder=FOLDER)
    steps = QUICK_STEPS if args.quick else STEPS
    levels = QUICK_RESPAWN if args.quick else RESPAWN
    settings = {f"{p:g}": dict(respawn=p, steps=steps, device=args.device) for p in levels}
    per_seed = g.run_settings(one_seed, settings, args.seeds, args.workers)
    report(per_seed, steps, args.out)
    return {"per_seed": per_seed, "steps": steps}


def report(per_seed: dict[str, list[dict[str, float]]], steps: int, out: Path) -> None:
    rows = []
    for label, seeds in per_seed.items():
        tags = [s["tagging rate"] for s in seeds]
        rows.append({"apple respawn probability": label,
                     "mas: tagging rate [95% CI]": g.fmt(g.mean_interval(tags, 0.0, 1.0), 3),
                     "mas: peace [95% CI]": g.fmt(g.mean_interval([s["peace"] for s in seeds], 0.0, 2.0)),
                     "mas: efficiency [95% CI]": g.fmt(g.mean_interval([s["efficiency"] for s in seeds], 0.0)),
                     "seeds": len(seeds)})
    _figure(per_seed, out)
    g.write_results(out, f"Gathering: conflict against scarcity ({steps:,} steps a seed)", rows, notes=NOTES,
                    data={"steps": steps, "per_seed": per_seed})


NOTES = """Reference (Leibo et al. 2017): the tagging rate rises as apples get scarcer. Random play tags in 1/6
of its steps; efficiency is apples eaten per step by both; peace is agents on the map per step (2 without tagging)."""


def _figure(per_seed: dict[str, list[dict[str, float]]], out: Path) -> None:
    fig, axes = g.figure(ncols=2, width=4.4, height=3.4)
    x = np.asarray([float(k) for k in per_seed])
    for ax, metric in zip(axes, ("tagging rate", "efficiency")):
        values = np.asarray([[s[metric] for s in seeds] for seeds in per_seed.values()])
        for column in values.T:
            ax.scatter(x, column, s=12, alpha=0.6, color="#0072B2")
        ax.plot(x, values.mean(1), color="#0072B2", lw=2, marker="o", label="IPPO, mean over seeds")
        ax.set_xscale("log")
        ax.invert_xaxis()  # scarcer to the right
        ax.set_xlabel("apple respawn probability (scarcer ->)")
        ax.set_ylabel(metric)
    axes[0].axhline(1 / 6, color="#999999", ls=":", label="random play")
    axes[0].legend(fontsize=7)
    g.save(fig, out)


if __name__ == "__main__":
    for label, seeds in main()["per_seed"].items():
        print(label, {m: round(float(np.mean([s[m] for s in seeds])), 3) for m in social.METRICS})
