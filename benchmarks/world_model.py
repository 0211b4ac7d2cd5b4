"""The LLM as world model on the embedded model: prediction accuracy, log-loss, and the
planner's return against the plain LLM agent, on the iterated PD against tit for tat and
on the commons (two LLM agents; the others' harvests and the stock level are predicted).

Tiny budgets (a few episodes of few rounds: about a minute or two on a laptop CPU). Prints
one line per setting; nothing here is part of the test run.

    python benchmarks/world_model.py [--episodes 1] [--rounds 3]
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import mas
from mas.analysis.load import load_run
from mas.runner import run

PD = {
    "name": "wm_pd",
    "game": {"kind": "normal_form", "actions": ["C", "D"], "cooperate": "C", "defect": "D",
             "payoffs": {"C,C": [3, 3], "C,D": [0, 5], "D,C": [5, 0], "D,D": [1, 1]}},
    "agents": [{"id": "llm", "policy": {"type": "llm", "choice": "argmax"}}, {"id": "tft", "policy": "tit_for_tat"}],
}
COMMONS = {
    "name": "wm_commons",
    "game": {"kind": "commons", "capacity": 100, "max_harvest": 20, "levels": 3},
    "agents": [{"id": "llm", "policy": {"type": "llm", "choice": "argmax"}}, {"id": "other", "policy": "random"}],
}


def measure(base: dict, world_model: dict | None, episodes: int, rounds: int, out: Path) -> dict:
    data = copy.deepcopy(base)
    data["rounds"] = rounds
    if world_model is not None:
        data["agents"][0]["policy"]["world_model"] = world_model
    start = time.perf_counter()
    run(mas.scenario.parse_scenario(data), episodes, 0, out)
    loaded = load_run(out)
    returns = loaded.episodes[loaded.episodes["agent"] == "llm"]["return"].mean()
    predictions = loaded.extra["predictions"]
    result = {"return": float(returns), "seconds": time.perf_counter() - start}
    for target, rows in predictions.groupby(predictions["target"].where(predictions["target"] == "outcome", "actions")):
        result[f"{target} accuracy"] = float(rows["correct"].mean())
        result[f"{target} log-loss"] = float(rows["log_loss"].mean())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=["pd", "commons"], help="one of the two games")
    args = parser.parse_args()
    settings = [("plain LLM", None), ("world model", {"predict": ["actions", "outcome"]}),
                ("planner", {"predict": ["actions", "outcome"], "plan": True})]
    with tempfile.TemporaryDirectory() as tmp:
        games = [("PD vs tit for tat", PD, "pd"), ("commons vs random", COMMONS, "commons")]
        for name, base, key in games:
            if args.only not in (None, key):
                continue
            for label, world_model in settings:
                found = measure(base, world_model, args.episodes, args.rounds, Path(tmp) / f"{base['name']}_{label}")
                shown = ", ".join(f"{k} {v:.3g}" for k, v in found.items())
                print(f"{name:18s} {label:12s} {shown}", flush=True)


if __name__ == "__main__":
    main()
