"""Demonstration: an LLM learner that talks, against tit for tat (a benchmark, not a test).

    python benchmarks/llm_tft_talk_demo.py [--steps N] [--episodes N] [--seed S] [--adapter tuned] [--out DIR]

`scenarios/llm_vs_tft.yaml` (an LLM agent in score mode against tit for tat, continuation
0.75, at most 10 rounds) with one talk step before every round: the LLM writes a message
(at most `--message-tokens` tokens), tit for tat says what it does ("I copy your last
move."). llm-ppo with `train=both` tunes the LLM's actions and messages. Reported before
(base model) and after (play.yaml, the tuned adapter), on the same evaluation seeds: the
LLM's cooperation rate, its promise keeping (mas.analysis.communication), what it says.
With `--adapter tuned` the LLM starts from the packaged tuned adapter (which states and keeps
"I will play C") instead of the base model, and training goes on from there.

Writes to --out: the training run (curves.csv), curves.png (training return and
cooperation), before/ and after/ run stores, transcript.md, results.json; prints the figures.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import llm_demo_common as demo  # noqa: E402

SCENARIO = "scenarios/llm_vs_tft.yaml"


def main() -> None:
    parser = demo.parser(__doc__, 160, "rounds", 8, "runs/demo_tft_talk")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--message-tokens", type=int, default=12)
    parser.add_argument("--adapter", help="start from this packaged adapter (e.g. tuned), not the base model")
    args = parser.parse_args()
    demo.start(args.out)

    def edit(data: dict) -> None:  # talk before every round
        data["comms"] = {"mode": "broadcast", "topology": "complete", "max_length": 80, "talk_rounds": 1}
        data["agents"][0]["policy"]["max_message_tokens"] = args.message_tokens
        data["agents"][1]["policy"] = {"type": "tit_for_tat", "message": "I copy your last move."}
        if args.adapter:
            data["agents"][0]["policy"]["backend"] = {"kind": "local", "model": "default", "adapter": args.adapter}

    overrides = demo.overrides({"train": "both", "epochs": 2, "prefix_grad": False, "episodes_per_update": 4}, args.set)
    scenario = demo.scenario_with(SCENARIO, edit)
    before = demo.play(scenario, args.episodes, args.seed + 1000, args.out / "before")
    result, wall = demo.train_run(scenario, args.steps, args.seed, args.out / "train", overrides)
    after = demo.play(demo.tuned(result), args.episodes, args.seed + 1000, args.out / "after")
    demo.figure({"llm-ppo train=both": [result.out_dir]}, "episode_return_mean",
                "LLM (talking) vs tit for tat: return per episode", args.out / "curves.png")
    keys = ("cooperation/llm", "promise keeping/llm", "promises/llm", "mutual cooperation")
    said = {when: Counter(demo.messages(args.out / when, "llm")).most_common(5) for when in ("before", "after")}
    results = {
        "scenario": SCENARIO, "edits": "talk_rounds 1; tit for tat says 'I copy your last move.'",
        "starts from": f"adapter {args.adapter}" if args.adapter else "the base model",
        "overrides": overrides, "train_steps": result.env_steps, "train_wall_s": round(wall),
        "episodes_each": args.episodes,
        "before": {k: before.get(k) for k in keys}, "after": {k: after.get(k) for k in keys},
        "most said before": said["before"], "most said after": said["after"],
    }
    demo.write_results(args.out, results, {
        f"before ({args.adapter or 'base model'})": demo.transcript(args.out / "before"),
        "after (tuned adapter)": demo.transcript(args.out / "after"),
    })


if __name__ == "__main__":
    main()
