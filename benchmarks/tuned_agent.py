"""The default LLM agent with and without the packaged `tuned` adapter, in the built-in
prisoner's dilemma scenarios: cooperation, fallbacks and promise keeping.

    PYTHONPATH=. python benchmarks/tuned_agent.py [--adapters none tuned] [--cases tft alld ...] [--episodes N]

Each case is a built-in scenario (as shipped, or with its scripted seat swapped by `--set`)
played with `mas run`'s library call on its own seed and episode count; the figures are the
run summary's (`mas.analysis.summary`): the LLM agents' cooperation rate (overall and from
round 2 on, when the opponent's first move is known), the fallback rate of their actions
and their promise keeping (stated intentions in talk steps kept at the next action).
Prints one JSON line per (case, adapter) and a table; `--out DIR` keeps the run stores.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from mas.analysis.load import load_run
from mas.analysis.summary import point, summarize
from mas.overrides import load_with_sets
from mas.runner import run

#: name -> (scenario, --set overrides, what a reciprocator should do)
CASES = {
    "tft": ("llm_vs_tft", [], "cooperate >= 0.9"),
    "alld": ("llm_vs_always_defect", [], "cooperate <= 0.1 (from round 2)"),
    "generate_tft": ("llm_vs_tit_for_tat", [], "cooperate >= 0.9, no fallbacks"),
    "generate_alld": ("llm_vs_tit_for_tat", ["agents.tft.policy=always_defect"], "cooperate <= 0.1 (from round 2)"),
    "two_llms": ("llm_prisoners_dilemma", [], "cooperate, keep promises"),
    "flagship": ("flagship", [], "cooperate, keep promises"),
}


def llm_agents(scenario) -> list[str]:
    return [a.id for a in scenario.agents if a.policy.type == "llm"]


def measure(case: str, adapter: str | None, out: Path, episodes: int | None = None) -> dict:
    name, sets, goal = CASES[case]
    if adapter is not None:
        scenario = load_with_sets(name, sets)
        sets = sets + [f"agents.{a}.policy.backend={{kind: local, model: default, adapter: {adapter}}}"
                       for a in llm_agents(scenario)]
    scenario = load_with_sets(name, sets)
    llms = llm_agents(scenario)
    started = time.perf_counter()
    run(scenario, episodes or scenario.episodes, scenario.seed, out)
    wall = time.perf_counter() - started
    loaded = load_run(out)
    summary = summarize(loaded)
    steps = loaded.steps[loaded.steps["agent"].isin(llms)]
    later = steps[steps["round"] > 0] if "round" in steps else steps.iloc[0:0]
    agents = summary.agents.loc[llms]
    row = {"case": case, "scenario": name, "adapter": adapter or "none", "goal": goal, "wall_s": round(wall, 1),
           "decisions": int(len(steps)),
           "cooperation": float(steps["cooperation"].mean()),
           "cooperation_from_round_2": float(later["cooperation"].mean()) if len(later) else float("nan")}
    row.update(expected_cooperation(loaded, scenario, llms))
    for column, key in (("fallback rate", "fallback_rate"), ("promises kept", "promise_keeping")):
        if column in agents:
            row[key] = float(np.nanmean([point(v) for v in agents[column]]))
    promises = summary.tables.get("promises")
    row["promises"] = 0 if promises is None else int(promises["kept"].notna().sum())
    messages = loaded.messages[loaded.messages["sender"].isin(llms)] if len(loaded.messages) else loaded.messages
    if len(messages):
        row["example_messages"] = list(dict.fromkeys(messages["text"].astype(str)))[:3]
    return row


def expected_cooperation(loaded, scenario, llms: list[str]) -> dict:
    """The policy's own probability of cooperating (score mode: its stored distribution's
    weight on the game's cooperate action), in round 1 and from round 2 on: what the sampled
    rates above estimate, without the sampling noise of a few decisions."""
    from mas.registry import make_game

    info = make_game(scenario.game, len(scenario.agents)).info()
    if info.capabilities.cooperate is None:
        return {}
    cooperate = info.action_names[0][info.capabilities.cooperate]
    decisions = loaded.decisions[loaded.decisions["agent"].isin(llms) & (loaded.decisions["talking"] == 0)]
    probs: dict[str, list[float]] = {"p_coop_round_1": [], "p_coop_from_round_2": []}
    for round_, record in zip(decisions["round"], decisions["record"]):
        record = json.loads(record) if isinstance(record, str) else record
        dist = record.get("distribution")
        if dist:
            probs["p_coop_round_1" if round_ == 0 else "p_coop_from_round_2"].append(float(dist.get(cooperate, 0.0)))
    return {key: float(np.mean(v)) for key, v in probs.items() if v}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapters", nargs="+", default=["none", "tuned"], help="'none', 'tuned' or adapter directories")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--out", type=Path, default=None, help="keep the run stores here")
    parser.add_argument("--episodes", type=int, default=None, help="episodes per case (default: the scenario's own)")
    args = parser.parse_args(argv)
    base = args.out or Path(tempfile.mkdtemp(prefix="tuned-agent-"))
    rows = []
    for case in args.cases:
        for i, adapter in enumerate(args.adapters):
            row = measure(case, None if adapter == "none" else adapter, base / f"{case}-{i}", args.episodes)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"\n{'case':<14} {'adapter':<10} {'coop':>6} {'coop r2+':>9} {'P(C) r1':>8} {'P(C) r2+':>9} {'fallback':>9} "
          f"{'promises kept':>14} {'wall s':>7}")
    for r in rows:
        kept = f"{r['promise_keeping']:.2f} ({r['promises']})" if "promise_keeping" in r else "-"
        fallback = f"{r['fallback_rate']:.2f}" if "fallback_rate" in r else "-"
        p1, p2 = (f"{r[k]:.2f}" if k in r else "-" for k in ("p_coop_round_1", "p_coop_from_round_2"))
        print(f"{r['case']:<14} {Path(r['adapter']).name:<10} {r['cooperation']:>6.2f} {r['cooperation_from_round_2']:>9.2f} "
              f"{p1:>8} {p2:>9} {fallback:>9} {kept:>14} {r['wall_s']:>7}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
