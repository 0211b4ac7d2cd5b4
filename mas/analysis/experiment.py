"""Experiments (`mas run FILE --seeds ...`, layout in `mas.experiment`) for analysis.

A metric of an experiment is computed per seed, as for any run, and given as the mean
over seeds with a 95% Student-t interval across seeds: seeds are the independent
replications, episodes within a seed share its master seed. Figures draw the per-agent
returns and the cooperation over rounds with intervals and bands across seeds; the other
figures and tables pool the seeds' episodes. The report names the configuration (game,
agents and policies, seeds, overrides) from `experiment.json`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from mas.analysis import metrics as m
from mas.analysis.load import Run, load_run
from mas.errors import StoreError
from mas.experiment import read_experiment, seed_dir
from mas.store import DB_NAME


@dataclass
class Experiment:
    """An experiment directory: its configuration and one `Run` per finished seed."""

    path: Path
    config: dict[str, Any]
    runs: dict[int, Run]

    @property
    def name(self) -> str:
        return str(self.config["scenario"].get("name") or self.path.name)

    @property
    def seeds(self) -> list[int]:
        return list(self.runs)


def load_experiment(path: str | Path) -> Experiment:
    """Read an experiment directory; StoreError if no seed has a stored run yet."""
    path = Path(path)
    config = read_experiment(path)
    runs = {int(s): load_run(seed_dir(path, int(s))) for s in config["seeds"] if (seed_dir(path, int(s)) / DB_NAME).is_file()}
    if not runs:
        raise StoreError(f"{path}: no seed of this experiment has stored episodes yet")
    return Experiment(path=path, config=config, runs=runs)


def across_seeds(values: list[float]) -> m.Interval:
    return m.mean_ci([v for v in values if v == v])


def overview(experiment: Experiment) -> dict[str, m.Interval]:
    """Every overview metric of the seeds' runs as a mean with a 95% interval across seeds."""
    from mas.analysis.summary import point, summarize

    per_seed = [summarize(run).overview for run in experiment.runs.values()]
    names: list[str] = []
    for seed_overview in per_seed:
        names += [n for n in seed_overview if n not in names]
    return {name: across_seeds([point(o.get(name)) for o in per_seed if name in o]) for name in names}


def agents_table(experiment: Experiment) -> pd.DataFrame:
    """Per agent: policy, and the per-seed mean return and cooperation across seeds."""
    rows = []
    first = next(iter(experiment.runs.values()))
    policies = dict(zip(first.agents["agent"], first.agents["policy"])) if len(first.agents) else {}
    from mas.analysis.summary import _policy_name

    for agent in policies:
        returns = [run.episodes.loc[run.episodes["agent"] == agent, "return"].mean() for run in experiment.runs.values()]
        coop = [m.scored_steps(run.steps[run.steps["agent"] == agent])["cooperation"].mean()
                for run in experiment.runs.values() if len(run.steps)]
        row = {"agent": agent, "policy": _policy_name(policies[agent]), "return": across_seeds(returns)}
        if any(c == c for c in coop):
            row["cooperation"] = across_seeds(coop)
        rows.append(row)
    return pd.DataFrame(rows)


def facts(experiment: Experiment) -> list[tuple[str, str]]:
    """The configuration, as the report's facts: game, agents and policies, seeds, overrides."""
    scenario = experiment.config["scenario"]
    agents = ", ".join(f"{a.get('id')} ({(a.get('policy') or {}).get('type', '?')})" for a in scenario.get("agents", []))
    planned = [int(s) for s in experiment.config["seeds"]]
    done = experiment.seeds
    seeds = ", ".join(map(str, done)) + (f" (of {len(planned)} planned)" if len(done) < len(planned) else "")
    rows = [("experiment directory", str(experiment.path)), ("game", str((scenario.get("game") or {}).get("kind", "—"))),
            ("agents", agents or "—"), ("seeds", seeds), ("episodes per seed", str(experiment.config.get("episodes", "—"))),
            ("scenario source", str(experiment.config.get("source", "—")))]
    if experiment.config.get("overrides"):
        rows.append(("overrides", " ".join(f"--set {o}" for o in experiment.config["overrides"])))
    rows.append(("created", str(experiment.config.get("created", "—"))))
    return rows


def pooled_run(experiment: Experiment) -> Run:
    """All seeds' episodes as one run (episode ids made distinct), for pooled tables and figures."""
    frames: dict[str, list[pd.DataFrame]] = {}
    offset = 0
    for run in experiment.runs.values():
        for name in ("episodes", "steps", "states", "messages", "decisions"):
            frame = getattr(run, name)
            frames.setdefault(name, []).append(frame.assign(episode=frame["episode"] + offset) if len(frame) else frame)
        offset += int(run.episodes["episode"].max()) + 1 if len(run.episodes) else 0
    first = next(iter(experiment.runs.values()))
    pooled = {name: pd.concat(parts, ignore_index=True) for name, parts in frames.items()}
    return Run(path=experiment.path, meta={**first.meta, "scenario": experiment.config["scenario"]}, agents=first.agents, **pooled)


def figures(experiments: Mapping[str, Experiment]) -> dict[str, Figure]:
    """Returns and cooperation with intervals across seeds (overlaid when several
    experiments), then the pooled figures of a single experiment (talk graph, stock, ...)."""
    from mas.analysis import plots
    from mas.analysis.figures import references, run_figures

    out: dict[str, Figure] = {}
    if len(experiments) == 1:
        (label, experiment), = experiments.items()
        out.update({k: v for k, v in run_figures({label: pooled_run(experiment)}).items()
                    if k not in ("returns", "cooperation_over_rounds")})
    returns = {label: _returns(e) for label, e in experiments.items()}
    out["seed_returns"] = plots.plot_agent_returns({label: t for label, t in returns.items() if len(t)})
    lines = references(e.config["scenario"] for e in experiments.values())
    plots.draw_references(out["seed_returns"].axes[0], lines, vertical=True)
    bands = {label: _cooperation_band(e) for label, e in experiments.items()}
    bands = {label: b for label, b in bands.items() if len(b)}
    if bands:
        out["seed_cooperation"] = plots.plot_band_curves(
            bands, "round", "round", "cooperation rate (fraction)", "Cooperation over rounds (95% band across seeds)", ylim=(-0.02, 1.02))
    return out


def _returns(experiment: Experiment) -> pd.DataFrame:
    table = agents_table(experiment)
    return pd.DataFrame({"agent": table["agent"], "mean": [i.mean for i in table["return"]],
                         "low": [i.low for i in table["return"]], "high": [i.high for i in table["return"]]}) if len(table) else table


def _cooperation_band(experiment: Experiment) -> pd.DataFrame:
    """Per round (1-based): the seeds' cooperation rates, mean and 95% interval across seeds."""
    per_seed = [m.cooperation_by_round(run.steps).set_index("round")["rate"] for run in experiment.runs.values()
                if len(run.steps) and run.steps["cooperation"].notna().any()]
    if not per_seed:
        return pd.DataFrame(columns=["round", "mean", "low", "high"])
    table = pd.concat(per_seed, axis=1)
    rows = [{"round": int(r) + 1, **dict(zip(("mean", "low", "high"), _bounds(across_seeds(list(values)))))}
            for r, values in table.iterrows()]
    return pd.DataFrame(rows)


def _bounds(interval: m.Interval) -> tuple[float, float, float]:
    return interval.mean, interval.low, interval.high


def report_context(experiment: Experiment, max_episodes: int) -> dict[str, Any]:
    """The report's context: the configuration, metrics across seeds, figures, and the
    first seed's transcripts."""
    from mas.analysis import report
    from mas.analysis.summary import format_value

    first_seed, first = next(iter(experiment.runs.items()))
    context = report.run_context(pooled_run(experiment), max_episodes)
    episodes = sorted(first.episodes["episode"].unique()) if len(first.episodes) else []
    agents = agents_table(experiment)
    tables = [report.table_block("Agents", agents, "One row per agent; ± is a 95% interval across seeds of each seed's mean.")]
    tables += [t for t in context["tables"] if t["title"] != "Agents"]
    context.update({
        "title": f"{experiment.name}: experiment report ({len(experiment.runs)} seeds)",
        "facts": facts(experiment),
        "overview": [(name, format_value(value)) for name, value in overview(experiment).items()],
        "overview_header": "mean over seeds (± 95% CI across seeds)",
        "tables": tables,
        "figures": report.embed_figures(figures({experiment.name: experiment}), first),
        "transcript": report.transcript_blocks(first, episodes[:max_episodes]),
        "transcript_note": f"Episodes of seed {first_seed} (each seed's run directory has its own: mas report {seed_dir(experiment.path, first_seed)}).",
    })
    return context
