"""Demonstration: an LLM speaker and an LLM listener learn to talk (a benchmark, not a test).

    python benchmarks/llm_signalling_demo.py [--steps N] [--episodes N] [--seed S] [--out DIR] [--resume RUN]

`scenarios/llm_signalling.yaml`: two targets; the speaker sees the target and writes a short
message, the listener reads it and picks (the speaker's "say <word>" action is not heard,
so only the free text can carry the target). Both are trained by llm-ppo with
`train=both` (the speaker's messages, token by token, and both agents' actions), one
shared LoRA adapter. Success is the fraction of pick steps on which the listener picked
the target (base rate 0.5 for a listener that cannot read the speaker).

Writes to --out: the training run (curves.csv), curves.png (training return, = successes
per episode, and evaluation success), before/ and after/ run stores, transcript.md (what
the pair said and picked, before and after) and results.json; prints the figures.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import llm_demo_common as demo  # noqa: E402

SCENARIO = "scenarios/llm_signalling.yaml"


def named_target(run_dir: Path, scenario) -> dict[str, float]:
    """How the speaker's words carry the target, per pick: the share of picks whose talk
    step named a target (the first target name in the speaker's message), named the right
    one, and the listener's following of a named target; I(target; named word) in bits
    (plug-in, "none" a word of its own) against H(target). The target is read from the run
    store's states (analysis only: no agent's view holds it)."""
    import re
    from collections import Counter

    import numpy as np

    from mas.analysis.load import load_run

    run = load_run(run_dir)
    names = [str(t) for t in scenario.game.targets]
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b", re.IGNORECASE)
    said = run.messages[run.messages["sender"] == "speaker"].drop_duplicates(["episode", "round"])
    words = {(e, r): (pattern.findall(t) or ["none"])[0].lower() for e, r, t in zip(said["episode"], said["round"], said["text"])}
    steps = run.steps[(run.steps["agent"] == "listener") & run.steps["action_name"].str.startswith("pick")]
    picked = {(e, r): a.split(" ", 1)[1] for e, r, a in zip(steps["episode"], steps["round"], steps["action_name"])}
    rows = []  # (target, named word, picked): the target is set by the pick phase's state, picked a round later
    pick_phase = run.states[run.states["phase"] == "pick"]
    for e, r, target in zip(pick_phase["episode"], pick_phase["round"], pick_phase["target"]):
        key = (e, r + 1)
        if key in picked:
            rows.append((str(target), words.get(key, "none"), picked[key]))
    if not rows:
        return {}

    def entropy(counts: Counter) -> float:
        p = np.array(list(counts.values()), dtype=float) / sum(counts.values())
        return float(-(p * np.log2(p)).sum())

    targets, named = Counter(t for t, _, _ in rows), Counter(w for _, w, _ in rows)
    information = entropy(targets) + entropy(named) - entropy(Counter((t, w) for t, w, _ in rows))
    with_name = [(t, w, p) for t, w, p in rows if w != "none"]
    return {"picks": len(rows), "named a target": len(with_name) / len(rows),
            "named the right target": sum(t == w for t, w, _ in rows) / len(rows),
            "listener picked the named target": (sum(p == w for _, w, p in with_name) / len(with_name)) if with_name else float("nan"),
            "I(target; named word) bits": round(information, 3), "H(target) bits": round(entropy(targets), 3)}


def main() -> None:
    parser = demo.parser(__doc__, 448, "8 per episode", 8, "runs/demo_signalling")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", type=Path, help="a training run directory to continue (up to --steps in total)")
    args = parser.parse_args()
    demo.start(args.out)
    overrides = demo.overrides({"train": "both", "epochs": 2, "prefix_grad": False, "lr": 2e-3, "episodes_per_update": 4},
                               args.set)
    scenario = demo.scenario_with(SCENARIO)
    before = demo.play(scenario, args.episodes, args.seed + 1000, args.out / "before")
    result, wall = demo.train_run(scenario, args.steps, args.seed, args.out / "train", overrides,
                                  resume=args.resume)
    after = demo.play(demo.tuned(result), args.episodes, args.seed + 1000, args.out / "after")
    demo.figure({"llm-ppo train=both": [result.out_dir]}, "episode_return_mean",
                "signalling: successes per episode (of 4)", args.out / "curves.png")
    results = {
        "scenario": SCENARIO, "overrides": overrides, "train_steps": result.env_steps, "train_wall_s": round(wall),
        "success_before": before.get("signalling success"), "success_after": after.get("signalling success"),
        "words before": named_target(args.out / "before", scenario), "words after": named_target(args.out / "after", scenario),
        "episodes_each": args.episodes, "target": ">= 0.9",
    }
    demo.write_results(args.out, results, {
        "before (base model)": demo.transcript(args.out / "before"),
        "after (tuned adapter)": demo.transcript(args.out / "after"),
    })


if __name__ == "__main__":
    main()
