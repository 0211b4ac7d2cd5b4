"""Sandholm & Crites (1996): Q-learners in the iterated prisoner's dilemma.

Two memory-one tabular Q-learners (state: the last joint action; gamma 0.95, alpha 0.1)
play each other, and one plays a fixed tit-for-tat. After training, the learners play one
greedy 20-round episode through `mas run` (the trained `play.yaml`); a seed's result is
the share of its rounds in which both players cooperated. The reference (REFERENCES.md,
measured with a plain implementation, 200k rounds, 20 seeds): 0.73 on average, 13 seeds at
0.9 or more, 3 that always defect; against tit-for-tat the learner cooperates.

The number of game copies stepped at once matters to tabular IQL (issue 18, item 9): the
same rounds are played in 1 copy or in the default 16, where the copies that visit a
(state, action) in one vector step make one averaged update, so 16 copies make 16x fewer
updates. The self-play setting runs both ways.

    python experiments/sandholm_crites/run.py [--quick] [--seeds 20] [--workers 2]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import gallery as g  # noqa: E402

FOLDER = Path(__file__).resolve().parent
#: (label, scenario file, hyperparameters)
SETTINGS = [
    ("self-play, 1 copy", "ipd_selfplay", {"num_envs": 1}),
    ("self-play, 16 copies (default)", "ipd_selfplay", {"num_envs": 16}),
    ("vs tit-for-tat, 16 copies", "ipd_vs_tft", {"num_envs": 16}),
]
REFERENCE = {"ipd_selfplay": "0.73 (13 of 20 seeds >= 0.9, 3 at 0)", "ipd_vs_tft": "learns to cooperate (~1.0)"}
STEPS, QUICK_STEPS = 200_000, 8_000


def mutual_cooperation(run_dir: Path, _result: Any) -> float:
    """Share of the greedy episode's rounds in which both players cooperated."""
    from mas.analysis.load import load_run
    from mas.analysis.metrics import mutual_cooperation_rate

    return mutual_cooperation_rate(load_run(run_dir / "eval").steps)


def one_seed(name: str, seed: int, steps: int, device: str, overrides: dict[str, Any]) -> float:
    return g.train_seed(FOLDER / f"{name}.yaml", "iql", steps, seed, device, overrides=overrides,
                        final_episodes=1, read=mutual_cooperation)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = g.parse(argv, __doc__.splitlines()[0], seeds=20, quick_seeds=2, folder=FOLDER)
    steps = QUICK_STEPS if args.quick else STEPS
    jobs = {label: dict(name=name, steps=steps, device=args.device, overrides=hp) for label, name, hp in SETTINGS}
    per_seed = g.run_settings(one_seed, jobs, args.seeds, args.workers)
    rows = []
    for label, name, _ in SETTINGS:
        v = np.asarray(per_seed[label])
        rows.append({"setting": label, "mas: mutual cooperation, mean [95% CI]": g.fmt(g.mean_interval(v, 0.0, 1.0)),
                     "seeds >= 0.9": int((v >= 0.9).sum()), "seeds at 0": int((v == 0).sum()), "reference": REFERENCE[name]})
    _figure(per_seed, args.out)
    g.write_results(args.out, f"Sandholm & Crites: mutual cooperation of Q-learners ({args.seeds} seeds, {steps} rounds)", rows,
                    notes=NOTES, data={"steps": steps, "per_seed": per_seed})
    return {"per_seed": per_seed, "steps": steps}


NOTES = """A seed's value: the share of rounds of one greedy 20-round episode after training in which both
players cooperated. Epsilon decays linearly 1 -> 0.05 over half the rounds. Reference: REFERENCES.md
(measured with a plain tabular implementation, 200k rounds, 20 seeds, one game)."""


def _figure(per_seed: dict[str, list[float]], out: Path) -> None:
    fig, (ax,) = g.figure(width=7.5, height=3.8)
    rng = np.random.default_rng(0)
    for i, (label, values) in enumerate(per_seed.items()):
        ax.scatter(i + rng.uniform(-0.12, 0.12, len(values)), values, s=14, alpha=0.7, color="#0072B2")
        ax.hlines(np.mean(values), i - 0.3, i + 0.3, color="#0072B2", lw=2)
    ax.hlines(0.73, -0.4, 1.4, color="#E69F00", ls="--", label="reference mean, self-play (0.73)")
    ax.set_xticks(range(len(per_seed)), [label.replace(", ", "\n", 1) for label in per_seed], fontsize=7)
    ax.set_ylabel("mutual cooperation (share of rounds)")
    ax.set_ylim(-0.05, 1.05)
    ax.legend(fontsize=8, loc="lower right")
    g.save(fig, out)


if __name__ == "__main__":
    print({k: float(np.mean(v)) for k, v in main()["per_seed"].items()})
