"""Lewis signalling: a speaker and a listener learn a code from a shared reward.

MAPPO (centralised critic) and tabular IQL train the speaker and the listener of
`lewis.yaml` (3 targets, 6 words). After training, the pair plays 10 greedy episodes
(100 rounds) through `mas run`; per seed we report the success rate and the mutual
information between target and word against its maximum, the entropy of the targets
drawn (about log2(3) = 1.585 bits; a perfect code reaches it). The ablation (`game.listeners_hear=false`) trains the same pair with a listener that
never hears the word: success must stay at chance (1/3), whatever the speaker says.
Reference: Lewis (1969) signalling games; with reinforcement, perfect signalling systems
emerge from meaningless words (Skyrms 2010), success 1 and I = log2(targets).

    python experiments/lewis_signalling/run.py [--quick] [--seeds 8] [--workers 2]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import gallery as g  # noqa: E402

FOLDER = Path(__file__).resolve().parent
IQL = "{type: iql, variant: tabular, num_envs: 32, gamma: 0.9, exploration_fraction: 0.6}"
#: (label, algo, scenario fields)
SETTINGS = [
    ("MAPPO", "mappo", {}),
    ("MAPPO, listener deaf (ablation)", "mappo", {"game.listeners_hear": "false"}),
    ("IQL", "iql", {"agents.speaker.policy": IQL, "agents.listener.policy": IQL}),
    ("IQL, listener deaf (ablation)", "iql", {"agents.speaker.policy": IQL, "agents.listener.policy": IQL, "game.listeners_hear": "false"}),
]
STEPS, QUICK_STEPS = 40_000, 8_000


def success_and_information(run_dir: Path, _result: Any) -> tuple[float, float]:
    """(success rate, I(target; word) / H(target)) of the greedy episodes played after
    training: the plug-in information over its maximum for the targets drawn."""
    from mas.analysis.load import load_run
    from mas.registry import make_game

    run = load_run(run_dir / "eval")
    scenario = run.meta["scenario"]
    game = make_game(_game_config(scenario), len(run.agents))
    overview, _ = game.run_metrics(run)
    bits = float(overview["I(target; signal) bits"]) if "I(target; signal) bits" in overview else 0.0
    return float(overview["signalling success"].mean), bits / float(overview["H(target) bits"])


def _game_config(scenario: dict[str, Any]) -> Any:
    from mas.scenario import parse_scenario

    return parse_scenario(scenario).game


def one_seed(algo: str, seed: int, steps: int, device: str, fields: dict[str, str]) -> tuple[float, float]:
    return g.train_seed(FOLDER / "lewis.yaml", algo, steps, seed, device, final_episodes=10, read=success_and_information, **fields)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = g.parse(argv, __doc__.splitlines()[0], seeds=8, quick_seeds=1, folder=FOLDER)
    steps = QUICK_STEPS if args.quick else STEPS
    jobs = {label: dict(algo=algo, steps=steps, device=args.device, fields=f) for label, algo, f in SETTINGS}
    per_seed = g.run_settings(one_seed, jobs, args.seeds, args.workers)
    report(per_seed, args.seeds, steps, args.out)
    return {"per_seed": per_seed, "steps": steps}


def report(per_seed: dict[str, list[tuple[float, float]]], seeds: int, steps: int, out: Path) -> None:
    """The results table and figure from the per-seed (success, information) pairs."""
    rows = []
    for label, _, _ in SETTINGS:
        success, bits = (np.asarray(v) for v in zip(*per_seed[label]))
        ablation = "ablation" in label
        rows.append({"setting": label, "mas: success [95% CI]": g.fmt(g.mean_interval(success, 0.0, 1.0)),
                     "mas: I(target; word) / H(target) [95% CI]": g.fmt(g.mean_interval(bits, 0.0, 1.0)),
                     "reference": "success 1/3 (chance); the words may still vary with the target" if ablation
                     else "success 1, I / H = 1 (a signalling system)"})
    _figure(per_seed, out)
    g.write_results(out, f"Lewis signalling: success and information ({seeds} seeds, {steps} steps)", rows,
                    notes=NOTES, data={"steps": steps, "per_seed": per_seed})


NOTES = """Per seed: 10 greedy episodes (100 rounds) after training. I(target; word) is the plug-in estimate
over those rounds, divided by its maximum there, the entropy of the targets drawn. A deaf listener's seed can still show
information in the speaker's words (the speaker has no reason not to vary them): the ablation's
signature is success at chance."""


def _figure(per_seed: dict[str, list[tuple[float, float]]], out: Path) -> None:
    fig, axes = g.figure(ncols=2, width=4.6, height=3.6)
    rng = np.random.default_rng(0)
    for col, (ax, name, ref) in enumerate(zip(axes, ("success", "I(target; word) / H(target)"), (1.0, 1.0))):
        for i, values in enumerate(per_seed.values()):
            v = np.asarray([pair[col] for pair in values])
            ax.scatter(i + rng.uniform(-0.12, 0.12, len(v)), v, s=14, alpha=0.7, color="#0072B2")
            ax.hlines(v.mean(), i - 0.3, i + 0.3, color="#0072B2", lw=2)
        ax.axhline(ref, color="#E69F00", ls="--", label="signalling system")
        if col == 0:
            ax.axhline(1 / 3, color="#999999", ls=":", label="chance")
        ax.set_xticks(range(len(per_seed)), [k.replace(", ", "\n", 1) for k in per_seed], fontsize=7)
        ax.set_ylim(-0.05, 1.1)
        ax.set_ylabel(name)
        ax.legend(fontsize=7, loc="center right")
    g.save(fig, out)


if __name__ == "__main__":
    print({k: np.mean(v, axis=0).tolist() for k, v in main()["per_seed"].items()})
