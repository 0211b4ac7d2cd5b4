"""Demonstration: two LLM learners that talk in the iterated prisoner's dilemma (a benchmark).

    python benchmarks/llm_pd_pair_demo.py [--modes selfplay per_agent] [--seeds 0 1] [--steps N] [--out DIR]

`scenarios/llm_prisoners_dilemma.yaml` (alice and bob, both LLM agents on the embedded
model, one talk step before each of 5 rounds), both trained by llm-ppo with `train=both`
(their messages and their actions) from their own returns, with `adapters=selfplay` (one
adapter in both seats) and `adapters=per_agent` (an adapter each), over several seeds.
For the CPU the messages are cut to `--message-tokens` tokens and `debias` is off (stated
in results.json). Reported before (base model) and after (each run's play.yaml), on the same
evaluation seeds: cooperation rate, mutual cooperation, promise keeping (a stated "I will
cooperate/defect" matched with the next action; mas.analysis.communication) and how often
the agents state an intention at all.

Writes to --out: one training run per mode and seed, curves.png (training return and
cooperation, a band across seeds per mode), before/ and after_<mode>_<seed>/ run stores,
curves_<mode>_seed<N>.csv (each run's training curve), transcript.md, results.json; prints
the figures. `--earlier DIR ...` adds the seeds of earlier outputs of this script (their
results.json, curves_*.csv and transcript.md; a run made now wins over an earlier one of the
same mode and seed), so seeds trained in separate processes report together; with
`--seeds` and no seed left to train (`--seeds` given empty) it only merges.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import llm_demo_common as demo  # noqa: E402

SCENARIO = "scenarios/llm_prisoners_dilemma.yaml"
MEASURES = ("cooperation rate", "mutual cooperation", "promise keeping", "messages sent per episode")


def main() -> None:
    parser = demo.parser(__doc__, 80, "per run; 5 per episode", 6, "runs/demo_pd_pair")
    parser.add_argument("--modes", nargs="+", default=["selfplay", "per_agent"], choices=["selfplay", "per_agent", "shared"])
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1])
    parser.add_argument("--earlier", nargs="*", type=Path, default=[], help="earlier outputs of this script to report with these seeds")
    parser.add_argument("--message-tokens", type=int, default=12)
    args = parser.parse_args()
    demo.start(args.out)

    def edit(data: dict) -> None:
        for agent in data["agents"]:
            agent["policy"].update(debias=False, max_message_tokens=args.message_tokens)

    overrides = demo.overrides({"train": "both", "epochs": 2, "prefix_grad": False, "episodes_per_update": 4}, args.set)
    scenario = demo.scenario_with(SCENARIO, edit)
    before = demo.play(scenario, args.episodes, 1000, args.out / "before")
    results: dict = {"scenario": SCENARIO, "edits": {"debias": False, "max_message_tokens": args.message_tokens},
                     "overrides": overrides, "episodes_each": args.episodes,
                     "before": {k: before.get(k) for k in MEASURES} | {k: v for k, v in before.items() if "/" in k}}
    runs: dict[str, list[Path]] = {}
    transcripts = {"before (base model)": demo.transcript(args.out / "before")}
    for mode in args.modes:
        for seed in args.seeds:
            name = f"{mode}_{seed}"
            result, wall = demo.train_run(scenario, args.steps, seed, args.out / f"train_{name}", {**overrides, "adapters": mode})
            after = demo.play(demo.tuned(result), args.episodes, 1000, args.out / f"after_{name}")
            shutil.copyfile(result.out_dir / "curves.csv", args.out / f"curves_{mode}_seed{seed}.csv")
            results[f"after {name}"] = {"train_steps": result.env_steps, "train_wall_s": round(wall)} | \
                {k: after.get(k) for k in MEASURES} | {k: v for k, v in after.items() if "/" in k}
            transcripts[f"after, adapters={mode}, seed {seed}"] = demo.transcript(args.out / f"after_{name}")
    for earlier in args.earlier:
        merge_earlier(earlier, args.out, args.modes, results, transcripts)
    for key in sorted(k for k in results if k.startswith("after ")):
        mode, seed = key.removeprefix("after ").rsplit("_", 1)
        runs.setdefault(mode, []).append(args.out / f"curves_{mode}_seed{seed}.csv")
    demo.figure(runs, "episode_return_mean", "PD with talk, two LLM learners: return per episode", args.out / "curves.png")
    demo.figure(runs, "cooperation_rate", "PD with talk, two LLM learners: cooperation", args.out / "cooperation.png")
    demo.write_results(args.out, results, transcripts)


def merge_earlier(earlier: Path, out: Path, modes: list[str], results: dict, transcripts: dict[str, str]) -> None:
    """Add the runs of `earlier` (an output of this script, same scenario, edits and
    evaluation) whose mode is in `modes` and that this run did not make itself."""
    found = json.loads((earlier / "results.json").read_text())
    same = ("scenario", "edits", "before", "episodes_each")
    if any(found.get(k) != results.get(k) for k in same):
        raise SystemExit(f"--earlier {earlier}: made with other settings ({', '.join(same)} must match)")
    sections = dict(part.split("\n\n", 1) for part in (earlier / "transcript.md").read_text().split("## ")[1:])
    for key, value in found.items():
        if not key.startswith("after ") or key in results:
            continue
        mode, seed = key.removeprefix("after ").rsplit("_", 1)
        if mode not in modes:
            continue
        if found["overrides"] != results["overrides"]:
            raise SystemExit(f"--earlier {earlier}: its runs used other hyperparameters ({found['overrides']})")
        results[key] = value
        shutil.copyfile(earlier / f"curves_{mode}_seed{seed}.csv", out / f"curves_{mode}_seed{seed}.csv")
        name = f"after, adapters={mode}, seed {seed}"
        transcripts[name] = sections[name].strip().removeprefix("```text\n").removesuffix("\n```")


if __name__ == "__main__":
    main()
