"""Claus & Boutilier (1998): independent Q-learners in the climbing and penalty games.

Two tabular independent learners (mas's `iql`, one game copy, alpha 0.1) play a stateless
3x3 common-payoff game; after training, each seed "ends at" the joint action of the two
greedy actions. The table gives the share of seeds ending at each joint action with a 95%
Wilson interval, next to the reference pattern measured with a plain Python implementation
(REFERENCES.md): climbing game, epsilon-greedy: (c,c) in 87 of 100 seeds, never (a,a);
Boltzmann: (b,b) in 82, (a,a) in 18; penalty game (k = -100), epsilon-greedy: (b,b) in 100.

    python experiments/claus_boutilier/run.py [--quick] [--seeds 100] [--workers 2]
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import gallery as g  # noqa: E402

FOLDER = Path(__file__).resolve().parent
ACTIONS = ["a", "b", "c"]
JOINT = [f"({x},{y})" for x in ACTIONS for y in ACTIONS]
#: exploration settings compared (tabular IQL hyperparameters)
EXPLORATION = {
    "epsilon-greedy": {"exploration": "epsilon_greedy", "epsilon_start": 1.0, "epsilon_end": 0.0},
    "Boltzmann": {"exploration": "boltzmann", "temperature_start": 16.0, "temperature_end": 0.05},
}
#: reference share of seeds per (game, exploration, joint action); None: not measured
REFERENCE: dict[tuple[str, str], dict[str, float]] = {
    ("climbing", "epsilon-greedy"): {"(c,c)": 0.87, "(a,a)": 0.0},
    ("climbing", "Boltzmann"): {"(b,b)": 0.82, "(a,a)": 0.18},
    ("penalty", "epsilon-greedy"): {"(b,b)": 1.0},
}
STEPS, QUICK_STEPS = 5000, 1500


def final_joint_action(run_dir: Path, _result: Any) -> str:
    """The joint action of the two learners' greedy choices (argmax of their one Q row)."""
    from mas.training.checkpoint import load_checkpoint

    tables = load_checkpoint(run_dir / "checkpoint.pt")["learner"]["tables"]
    row, col = (int(t["q"][0].argmax()) for t in tables)
    return f"({ACTIONS[row]},{ACTIONS[col]})"


def one_seed(game: str, exploration: str, seed: int, steps: int, device: str) -> str:
    return g.train_seed(FOLDER / f"{game}.yaml", "iql", steps, seed, device, overrides=dict(EXPLORATION[exploration]),
                        read=final_joint_action)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = g.parse(argv, __doc__.splitlines()[0], seeds=100, quick_seeds=4, folder=FOLDER)
    steps = QUICK_STEPS if args.quick else STEPS
    jobs = {f"{game}/{exp}": dict(game=game, exploration=exp, steps=steps, device=args.device)
            for game in ("climbing", "penalty") for exp in EXPLORATION}
    ends = g.run_settings(one_seed, jobs, args.seeds, args.workers)
    shares: dict[str, dict[str, int]] = {}
    rows = []
    for name, job in jobs.items():
        game, exp = job["game"], job["exploration"]
        counts = Counter(ends[name])
        shares[f"{game}/{exp}"] = {j: counts.get(j, 0) for j in JOINT}
        ref = REFERENCE.get((game, exp), {})
        for joint in JOINT:
            if counts.get(joint, 0) or joint in ref:
                rows.append({"game": game, "exploration": exp, "joint action": joint,
                             "mas: share of seeds [95% CI]": g.fmt(g.share_interval(counts.get(joint, 0), args.seeds)),
                             "reference share": f"{ref[joint]:.2f}" if joint in ref else "-"})
    _figure(shares, args.seeds, args.out)
    g.write_results(args.out, f"Claus & Boutilier: where independent learners end ({args.seeds} seeds, {steps} steps)", rows,
                    notes=NOTES, data={"steps": steps, "seeds": args.seeds, "ends": shares})
    return {"ends": shares, "seeds": args.seeds, "steps": steps}


NOTES = """Reference: measured with a plain tabular implementation (REFERENCES.md, 5,000 steps, 100 seeds).
Joint actions: row learner's action first. Exploration: epsilon decays linearly 1 -> 0 over 80% of
the steps; the Boltzmann temperature decays geometrically 16 -> 0.05 over the same span."""


def _figure(shares: dict[str, dict[str, int]], seeds: int, out: Path) -> None:
    fig, axes = g.figure(ncols=len(shares), width=3.6, height=3.4)
    for ax, (name, counts) in zip(axes, shares.items()):
        game, exp = name.split("/")
        ref = REFERENCE.get((game, exp), {})
        x = range(len(JOINT))
        ax.bar([i - 0.2 for i in x], [counts[j] / seeds for j in JOINT], width=0.4, label="mas", color="#0072B2")
        ax.bar([i + 0.2 for i in x], [ref.get(j, 0.0) for j in JOINT], width=0.4, label="reference", color="#E69F00")
        ax.set_xticks(list(x), JOINT, rotation=60, fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_title(f"{game}, {exp}", fontsize=9)
        ax.set_ylabel("share of seeds")
    axes[0].legend(fontsize=8)
    g.save(fig, out)


if __name__ == "__main__":
    print(main()["ends"])
