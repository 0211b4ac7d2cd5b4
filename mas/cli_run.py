"""`mas run` and `mas replay`: play with a live feed, print the summary, write the report
and figures into the run directory, and say what to look at next.

`mas run FILE --seeds 0-4` plays one run per seed into one experiment directory
(`mas.experiment` documents the layout) and summarises across seeds.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from mas.errors import MasError

#: environment variable that has the effect of --no-report when set (not to "0")
NO_REPORT_ENV = "MAS_NO_REPORT"


def cmd_run(args: argparse.Namespace) -> int:
    from mas.experiment import is_experiment, parse_seeds, write_experiment
    from mas.overrides import load_with_sets
    from mas.runner import stored_run

    if args.scenario is None and args.resume is None:
        raise MasError("give a scenario file, or --resume DIR to finish a stored run")
    if args.resume is not None and args.out is not None:
        raise MasError("--out and --resume exclude each other: --resume continues in its own directory")
    if args.set and args.scenario is None:
        raise MasError("--set changes a scenario file: give the file too")
    if args.seeds is not None and (args.seed is not None or args.resume is not None):
        raise MasError("--seeds excludes --seed and --resume (resume an experiment with --resume DIR alone)")
    if args.sweep is not None:
        if args.seeds is not None or args.seed is not None or args.resume is not None or args.episodes:
            raise MasError("--sweep excludes --seeds, --seed, --resume and --episodes (it plays episode 0 of each seed)")
        return _run_sweep(args)
    if args.resume is not None and is_experiment(args.resume):
        return _resume_experiment(args)
    # resuming: what is not given comes from the store; what is given must equal it (run checks)
    stored = stored_run(args.resume) if args.resume is not None else None
    scenario = load_with_sets(args.scenario, args.set) if args.scenario is not None else stored[0]
    if args.llm_url or args.llm_model or args.llm_api_key_env:
        from mas.agents.llm.retarget import backend_from_options, has_llm_agents, with_backend

        if not has_llm_agents(scenario):
            raise MasError(f"--llm-url/--llm-model: scenario '{scenario.name}' has no LLM agents")
        scenario = with_backend(scenario, backend_from_options(args.llm_url, args.llm_model, args.llm_api_key_env))
    episodes = args.episodes or (stored[2] if stored else scenario.episodes)
    if args.seeds is not None:
        seeds = parse_seeds(args.seeds)
        out = args.out or default_run_dir(f"{scenario.name}-seeds")
        write_experiment(out, scenario.to_dict(), seeds, episodes, str(args.scenario), list(args.set))
        return _run_seeds(args, scenario, seeds, episodes, out, resumed=set())
    seed = args.seed if args.seed is not None else stored[1] if stored else scenario.seed
    out = args.resume or args.out or default_run_dir(scenario.name)
    results = play(scenario, episodes, seed, out, args, resume=stored is not None)
    files = {} if _no_report(args) else _write_report(out)
    if args.json:
        from mas.analysis.run_summary import usage_totals
        from mas.cli_output import dumps, run_summary

        print(dumps({**run_summary(scenario, results, seed, out, usage_totals(results)), **files}))
        return 0
    print_summary(scenario, results, seed, out)
    _print_next(scenario, out, args.scenario or str(out), files)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from mas.agents.llm.retarget import replay_of

    replay = replay_of(args.run_dir)
    out = args.out or default_run_dir(f"{replay.scenario.name}-replay")
    results = play(replay.scenario, replay.episodes, replay.seed, out, args)
    print_summary(replay.scenario, results, replay.seed, out)
    return 0


def play(scenario: Any, episodes: int, seed: int, out: Path, args: argparse.Namespace, resume: bool = False,
         no_feed: bool = False) -> list:
    """Play and store the episodes with the live feed and progress (`mas.live`) on stderr
    (the feed: on a terminal, or everywhere with --feed; never with `no_feed`)."""
    from mas.live import RunProgress
    from mas.runner import run

    feed = False if no_feed else (True if getattr(args, "feed", False) else None)
    with RunProgress(scenario, episodes, enabled=not args.no_progress, feed=feed) as live:
        return run(scenario, episodes, seed, out_dir=out, on_episode=live.on_episode, resume=resume, on_step=live.on_step)


def default_run_dir(name: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate = Path("runs") / f"{name}-{stamp}"
    suffix = 1
    while candidate.exists():
        suffix += 1
        candidate = Path("runs") / f"{name}-{stamp}-{suffix}"
    return candidate


def print_summary(scenario: Any, results: list, seed: int, out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    from mas.analysis.run_summary import summarise_run

    summary = summarise_run(scenario, results)
    table = Table(title=f"{scenario.name}: {summary.episodes} episodes, seed {seed}, mean rounds {summary.rounds.mean:.3g}")
    table.add_column("agent")
    table.add_column("policy")
    table.add_column("return ± 95% CI", justify="right")
    if summary.has_cooperation:
        table.add_column("cooperation ± 95% CI", justify="right")
    if summary.has_usage:
        table.add_column("tokens", justify="right")
        table.add_column("invalid replies", justify="right")
        table.add_column("fallbacks", justify="right")
    for agent in summary.agents:
        row = [agent.agent, agent.policy, str(agent.returns)]
        if summary.has_cooperation:
            row.append(str(agent.cooperation))
        if summary.has_usage:
            used = agent.usage
            row += [f"{used['tokens']:,}", _rate(used["invalid"], used["outputs"]), _rate(used["fallbacks"], used["decisions"])] if used else ["", "", ""]
        table.add_row(*row)
    console = Console()
    if not console.is_terminal:  # logs and pipes: wide enough that no column is cut
        console = Console(width=max(console.width, 120))
    console.print(table)
    if summary.terminated:
        console.print(f"{summary.terminated} of {summary.episodes} episodes ended by the game itself (termination)")
    console.print(f"run stored in {out}")


def _rate(count: int, total: int) -> str:
    return f"{count}/{total} ({count / total:.0%})" if total else "-"


# ----- several seeds ----------------------------------------------------------------------------
def _run_seeds(args: argparse.Namespace, scenario: Any, seeds: list[int], episodes: int, out: Path, resumed: set[int]) -> int:
    """Play one run per seed into `out`/seed-<n> (those in `resumed` continue their store)."""
    from mas.experiment import seed_dir

    per_seed = {}
    for i, seed in enumerate(seeds):
        if not args.no_progress and not args.json:
            sys.stderr.write(f"seed {seed} ({i + 1} of {len(seeds)}) -> {seed_dir(out, seed)}\n")
        # the feed shows the first seed only: the others play the same scenario
        per_seed[seed] = play(scenario, episodes, seed, seed_dir(out, seed), args, resume=seed in resumed, no_feed=i > 0)
    files = {} if _no_report(args) else _write_report(out)
    table = _across_seeds(scenario, per_seed)
    if args.json:
        from mas.cli_output import dumps

        print(dumps({"scenario": scenario.name, "experiment_dir": out, "seeds": seeds, "episodes": episodes,
                     "agents": table, **files}))
        return 0
    _print_across_seeds(scenario, table, seeds, episodes, out)
    _print_next(scenario, out, str(args.scenario or out), files, experiment=True)
    return 0


def _run_sweep(args: argparse.Namespace) -> int:
    """`--sweep`: episode 0 under every seed as one engine batch (`mas.sweep`); the across-
    seeds table, and OUT/sweep.csv (a row per seed) when --out is given."""
    import numpy as np

    from mas.analysis.metrics import mean_ci
    from mas.experiment import parse_seeds
    from mas.overrides import load_with_sets
    from mas.sweep import MAX_SWEEP, sweep

    scenario = load_with_sets(args.scenario, args.set)
    seeds = parse_seeds(args.sweep, MAX_SWEEP, "--sweep")
    totals = sweep(scenario, seeds).totals
    rows = []
    for seat, agent in enumerate(scenario.agents):
        coop = [c for c in totals.cooperation[:, seat].tolist() if c == c]
        rows.append({"id": agent.id, "policy": agent.policy.type, "return": mean_ci(totals.returns[:, seat].tolist()),
                     "cooperation": mean_ci(coop) if coop else None})
    files = {}
    if args.out is not None:
        import pandas as pd

        frame = pd.DataFrame({"seed": seeds, "rounds": totals.rounds})
        for seat, agent in enumerate(scenario.agent_ids):
            frame[f"return_{agent}"] = totals.returns[:, seat]
            frame[f"cooperation_{agent}"] = np.where(np.isnan(totals.cooperation[:, seat]), None, totals.cooperation[:, seat])
        args.out.mkdir(parents=True, exist_ok=True)
        frame.to_csv(args.out / "sweep.csv", index=False)
        files["sweep_csv"] = args.out / "sweep.csv"
    if args.json:
        from mas.cli_output import dumps

        print(dumps({"scenario": scenario.name, "seeds": len(seeds), "agents": rows, **files}))
        return 0
    where = f"; a row per seed in {files['sweep_csv']}" if files else ""
    _print_across_seeds(scenario, rows, seeds, 1, Path("."), footer=f"{len(seeds)} seeds played as one batch{where}")
    return 0


def _resume_experiment(args: argparse.Namespace) -> int:
    from mas.experiment import read_experiment, seed_dir
    from mas.scenario import parse_scenario
    from mas.store import DB_NAME

    if args.set or args.episodes or args.seed is not None:
        raise MasError("--resume of an experiment takes its scenario, seeds and episodes from experiment.json")
    config = read_experiment(args.resume)
    scenario = parse_scenario(config["scenario"], source=f"{args.resume} (experiment.json)")
    seeds = [int(s) for s in config["seeds"]]
    resumed = {s for s in seeds if (seed_dir(args.resume, s) / DB_NAME).is_file()}
    return _run_seeds(args, scenario, seeds, int(config.get("episodes", scenario.episodes)), args.resume, resumed)


def _across_seeds(scenario: Any, per_seed: dict[int, list]) -> list[dict[str, Any]]:
    """Per agent: the mean return and cooperation of each seed, with a 95% interval across seeds."""
    from mas.analysis.metrics import mean_ci

    rows = []
    for agent in scenario.agents:
        returns = [sum(r.returns[agent.id] for r in results) / len(results) for results in per_seed.values()]
        coop = [[r.cooperation[agent.id] for r in results if r.cooperation.get(agent.id) is not None] for results in per_seed.values()]
        coop_means = [sum(c) / len(c) for c in coop if c]
        rows.append({"id": agent.id, "policy": agent.policy.type, "return": mean_ci(returns),
                     "cooperation": mean_ci(coop_means) if coop_means else None})
    return rows


def _print_across_seeds(scenario: Any, rows: list[dict[str, Any]], seeds: list[int], episodes: int, out: Path,
                        footer: str | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{scenario.name}: {len(seeds)} seeds x {episodes} episodes (± 95% interval across seeds)")
    for column in ("agent", "policy", "return", "cooperation"):
        table.add_column(column, justify="left" if column in ("agent", "policy") else "right")
    for row in rows:
        table.add_row(row["id"], row["policy"], str(row["return"]), str(row["cooperation"]) if row["cooperation"] else "")
    console = Console()
    console.print(table)
    console.print(footer or f"experiment stored in {out} (seeds {', '.join(map(str, seeds))}; one run directory per seed)")


# ----- report and next steps --------------------------------------------------------------------
def _no_report(args: argparse.Namespace) -> bool:
    """--no-report, or MAS_NO_REPORT=1 in the environment (test suites, batch scripts)."""
    return bool(args.no_report or os.environ.get(NO_REPORT_ENV, "") not in ("", "0"))


def _write_report(out: Path) -> dict[str, Any]:
    """Write the report and the PNG figures into `out`; returns their paths (empty if the
    analysis failed: the run itself is stored and the failure is one line on stderr)."""
    from mas.analysis.figures import write_figures
    from mas.analysis.load import load_result
    from mas.analysis.report import write_report

    try:
        result = load_result(out)
        report = write_report(result, out / "report.html")
        figures = write_figures([result], out / "figures", ("png",))
    except Exception as exc:  # noqa: BLE001 - a report problem must not hide a stored run
        sys.stderr.write(f"mas: warning: no report written ({exc.__class__.__name__}: {exc}); the run is stored: "
                         f"try 'mas report {out}'\n")
        return {}
    return {"report": report, "figures": sorted(figures)}


def _print_next(scenario: Any, out: Path, source: str, files: dict[str, Any], experiment: bool = False) -> None:
    """The commands that look further into this run, and the next things to try."""
    from rich.console import Console
    from rich.text import Text

    from mas.agents.llm.retarget import has_llm_agents

    console = Console(highlight=False, soft_wrap=True)
    if files:
        console.print(f"report: {files['report']}   figures: {out / 'figures'} ({len(files['figures'])} files)")
    steps = [(f"mas report {out} --open", "open the report: transcripts, metrics, figures")]
    if has_llm_agents(scenario):
        steps.append((f"mas transcript {out / 'seed-' if experiment else out}{'<n>' if experiment else ''}",
                      "what each LLM agent was shown, said and chose"))
    if experiment:
        steps.append((f"mas compare {out} OTHER_DIR", "metrics side by side, ± 95% interval across seeds"))
    else:
        steps.append((f"mas run {source} --seeds 0-4", "the same with five seeds (then mas compare / mas plot on its directory)"))
    steps += [("mas tournament axelrod_classic --workers 2", "strategies play each other; ratings with intervals"),
              ("mas train pd_iql_vs_tft --steps 50000", "agents that learn (RL); fine-tune LLM agents with --algo llm-ppo")]
    console.print(Text("next:", style="bold"))
    width = max(len(command) for command, _ in steps)
    for command, what in steps:
        console.print(Text(f"  {command:<{width}}  ", style="cyan") + Text(what, style="dim"))
