"""Demonstration: an LLM speaker and an LLM listener learn to talk (a benchmark, not a test).

    python benchmarks/llm_signalling_demo.py [--steps N] [--episodes N] [--seed S] [--out DIR]

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


def main() -> None:
    parser = demo.parser(__doc__, 256, "8 per episode", 8, "runs/demo_signalling")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    demo.start(args.out)
    overrides = demo.overrides({"train": "both", "epochs": 2, "prefix_grad": False, "lr": 2e-3, "episodes_per_update": 4},
                               args.set)
    scenario = demo.scenario_with(SCENARIO)
    before = demo.play(scenario, args.episodes, args.seed + 1000, args.out / "before")
    result, wall = demo.train_run(scenario, args.steps, args.seed, args.out / "train", overrides)
    after = demo.play(demo.tuned(result), args.episodes, args.seed + 1000, args.out / "after")
    demo.figure({"llm-ppo train=both": [result.out_dir]}, "episode_return_mean",
                "signalling: successes per episode (of 4)", args.out / "curves.png")
    results = {
        "scenario": SCENARIO, "overrides": overrides, "train_steps": result.env_steps, "train_wall_s": round(wall),
        "success_before": before.get("signalling success"), "success_after": after.get("signalling success"),
        "I(target; message) bits before": before.get("I(target; message) bits"),
        "I(target; message) bits after": after.get("I(target; message) bits"),
        "episodes_each": args.episodes, "target": ">= 0.9",
    }
    demo.write_results(args.out, results, {
        "before (base model)": demo.transcript(args.out / "before"),
        "after (tuned adapter)": demo.transcript(args.out / "after"),
    })


if __name__ == "__main__":
    main()
