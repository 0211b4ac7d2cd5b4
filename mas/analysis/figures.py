"""The standard figure set of runs, training runs and tournaments: computes each
figure's table with the metric modules and hands it to `plots`. Several runs overlay in
one figure per kind (ablations); the names returned are the file stems `mas plot` writes.
"""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from mas.analysis import communication as comm
from mas.analysis import game_metrics as gm
from mas.analysis import metrics as m
from mas.analysis import plots
from mas.analysis import training as tr
from mas.analysis import tournaments as tn
from mas.analysis.baselines import scenario_baselines
from mas.analysis.experiment import Experiment
from mas.analysis.load import Run
from mas.analysis.summary import GameFacts
from mas.analysis.tournaments import Tournament

#: figure stem -> what it shows (for the report's captions)
CAPTIONS = {
    "returns": "Mean return per episode of each agent, with 95% confidence intervals over episodes; grey lines are the "
               "scenario's exact baselines (mas solve), where it has any.",
    "cooperation_over_rounds": "Cooperation rate in each round, averaged over agents; the band is a 95% interval over episodes.",
    "cooperation_by_pair": "Fraction of rounds in which both agents of a pair cooperated (diagonal: the agent's own rate).",
    "resource_stock": "Resource stock after each round; thin lines are single episodes, the bold line their mean.",
    "training_return": "Episode return during training; the band is a 95% interval across seeds; grey lines are the "
                       "scenario's exact baselines (mas solve), where it has any.",
    "training_cooperation": "Cooperation rate during training; the band is a 95% interval across seeds.",
    "training_kl": "KL divergence of the tuned policy from the frozen base model at each update (llm-ppo, llm-mappo); "
                   "the band is a 95% interval across seeds.",
    "training_entropy": "Entropy of the policy's action distribution at each update; the band is a 95% interval across seeds.",
    "communication_graph": "Who talked to whom: edge width is proportional to the number of delivered messages.",
    "messages_over_time": "Mean message length and vocabulary (distinct words per round and cumulative) over rounds.",
    "ranking": "Tournament ranking by mean score per match, with the tournament's bootstrap intervals.",
    "payoff_matrix": "Mean score per match of the row entrant against the column entrant.",
    "cooperation_matrix": "Cooperation rate of the row entrant in its matches against the column entrant.",
    "seed_returns": "Mean return per episode of each agent: the mean over seeds with a 95% interval across seeds.",
    "seed_cooperation": "Cooperation rate in each round, averaged over agents; the band is a 95% interval across seeds.",
    "world_model_accuracy": "World model: share of predictions whose most likely label happened, per agent and round "
                            "(95% band over episodes).",
    "world_model_log_loss": "World model: mean log-loss -ln p(what happened) of the predictions, per agent and round.",
    "reward_model": "Reward-model component (the judge's weighted likelihood) per agent and round, apart from the game's reward.",
    "population_shares": "Ecological analysis: population share of each strategy over generations ({model}).",
}
#: figures drawn across the report's full width (matrices need room for their labels and numbers)
WIDE = ("payoff_matrix", "cooperation_matrix", "cooperation_by_pair")


def _key(stem: str, keys: Sequence[str]) -> str | None:
    for key in sorted(keys, key=len, reverse=True):
        if stem == key or stem.startswith(key + "_") or stem.endswith("_" + key):
            return key
    return None


def caption(stem: str, result: Run | Tournament | None = None) -> str:
    """The caption of a figure stem, also for prefixed or suffixed ones ("a_ranking");
    the population-shares caption names the tournament's ecology model."""
    key = _key(stem, list(CAPTIONS))
    if key is None:
        return ""
    model = tn.ecology_model(result) if isinstance(result, Tournament) else "replicator dynamics"
    return CAPTIONS[key].format(model=model)


def is_wide(stem: str) -> bool:
    """Whether the figure is a matrix shown across the report's full width."""
    return _key(stem, WIDE) is not None


def describe_run(run: Run) -> str:
    """What a run's figures show: its scenario and the policies in its seats
    ("prisoners_dilemma: tit_for_tat vs grim_trigger", "commons: 4 × sustainable_harvester, 2 × random")."""
    policies: Counter[str] = Counter()
    for policy in run.agents.get("policy", []):
        try:
            spec = json.loads(policy) if isinstance(policy, str) else policy
        except ValueError:
            spec = policy
        policies[str(spec.get("type", "?")) if isinstance(spec, dict) else str(spec)] += 1
    groups = [f"{n} × {name}" if n > 1 else name for name, n in policies.items()]
    seats = (" vs " if len(groups) == 2 else ", ").join(groups)
    return f"{run.name}: {seats}" if seats else run.name


def describe_tournament(tournament: Tournament) -> str:
    """What a tournament's figures show: its name, base scenario and entrants."""
    spec = tournament.meta.get("tournament") if isinstance(tournament.meta.get("tournament"), dict) else {}
    base = spec.get("scenario")
    scenario = base.get("name", "inline scenario") if isinstance(base, dict) else str(base or "?")
    names = list(tournament.ratings["name"])
    entrants = ", ".join(names) if len(names) <= 6 else f"{len(names)} entrants"
    return f"{tournament.name} ({scenario}): {entrants}"


def _name(figures: dict[str, Figure], text: str) -> dict[str, Figure]:
    """Put what the figures show (scenario, policies) above each figure's own title."""
    for fig in figures.values():
        fig.suptitle(textwrap.shorten(text, 110, placeholder=" …"), fontsize="medium", color="#333333")
    return figures


def run_figures(runs: Mapping[str, Run]) -> dict[str, Figure]:
    """The standard figures of one or more runs (label -> run), overlaid where several runs
    share a figure. Figures whose data no run has are left out."""
    figures: dict[str, Figure] = {}
    lines = references(run.meta.get("scenario", {}) for run in runs.values())
    returns = {label: _returns_table(run) for label, run in runs.items() if len(run.episodes)}
    if returns:
        figures["returns"] = plots.plot_agent_returns(returns)
        plots.draw_references(figures["returns"].axes[0], lines, vertical=True)
    cooperation = {label: m.cooperation_by_round(run.steps) for label, run in runs.items() if _has_cooperation(run)}
    if cooperation:
        figures["cooperation_over_rounds"] = plots.plot_cooperation_over_rounds(cooperation)
    if len(runs) == 1:
        (label, run), = runs.items()
        if _has_cooperation(run) and run.steps["agent"].nunique() > 1:
            pairs = m.mutual_cooperation_by_pair(run.steps)
            figures["cooperation_by_pair"] = plots.plot_heatmap(
                pairs, "mutual cooperation rate (fraction)", "Mutual cooperation by pair", "partner", "agent", limits=(0.0, 1.0))
    resources = {label: _resource(run) for label, run in runs.items()}
    stocks = {label: run for label, run in runs.items() if resources[label] is not None}
    if stocks:
        trajectories = {label: gm.stock_trajectories(run.states, resources[label]["start_stock"]) for label, run in stocks.items()}
        first = resources[next(iter(stocks))]
        figures["resource_stock"] = plots.plot_stock(trajectories, first["capacity"], first["collapse_threshold"])
    if len(runs) == 1:
        figures.update(model_figures(next(iter(runs.values()))))
    figures.update(training_figures({label: run.training for label, run in runs.items() if len(run.training)}, lines))
    talkers = {label: run for label, run in runs.items() if len(run.messages)}
    if len(talkers) == 1:
        (label, run), = talkers.items()
        agents = list(run.agents["agent"])
        figures["communication_graph"] = plots.plot_talk_graph(comm.talk_matrix(run.messages, agents))
    else:
        for label, run in talkers.items():
            figures[f"communication_graph_{_stem(label)}"] = plots.plot_talk_graph(comm.talk_matrix(run.messages, list(run.agents["agent"])))
    vocabulary = {label: comm.vocabulary_over_time(run.messages) for label, run in talkers.items()}
    if vocabulary:
        figures["messages_over_time"] = plots.plot_messages_over_time(vocabulary)
    described = [describe_run(run) for run in runs.values()]
    return _name(figures, described[0] if len(described) == 1 else "; ".join(f"{label} = {d}" for label, d in zip(runs, described)))


def model_figures(run: Run) -> dict[str, Figure]:
    """The LLM world model's scores and the reward model's component of one run, per agent over rounds."""
    figures: dict[str, Figure] = {}
    predictions = run.extra.get("predictions")
    if predictions is not None and len(predictions):
        table = predictions.assign(correct=predictions["correct"].astype(float))
        figures["world_model_accuracy"] = plots.plot_band_curves(
            m.by_agent_and_round(table, "correct"), "round", "round", "accuracy (fraction)", "World model accuracy", ylim=(-0.02, 1.02))
        figures["world_model_log_loss"] = plots.plot_band_curves(
            m.by_agent_and_round(table, "log_loss"), "round", "round", "log-loss (nats)", "World model log-loss")
    judged = m.by_agent_and_round(run.steps, "reward_model")
    if judged:
        figures["reward_model"] = plots.plot_band_curves(judged, "round", "round", "reward-model component", "Reward model")
    return figures


def references(scenarios: Iterable[dict]) -> list[tuple[str, float]]:
    """The exact baselines of stored scenarios as (label, return per episode), each once
    (`mas.analysis.baselines`); [] when their games offer none."""
    found: list[tuple[str, float]] = []
    for scenario in scenarios:
        found += [(b.label, b.value) for b in scenario_baselines(scenario) if (b.label, b.value) not in found]
    return found


def training_figures(curves: Mapping[str, pd.DataFrame], lines: Sequence[tuple[str, float]] = ()) -> dict[str, Figure]:
    """Return (and, if logged, cooperation) over training steps with 95% bands over seeds;
    the return curve gets the reference `lines` (label, return per episode)."""
    figures: dict[str, Figure] = {}
    for stem, candidates, evaluation, label, title in (
        ("training_return", tr.RETURN_COLUMNS, tr.EVAL_RETURN_COLUMNS, "episode return (payoff units)", "Return during training"),
        ("training_cooperation", tr.COOPERATION_COLUMNS, tr.EVAL_COOPERATION_COLUMNS, "cooperation rate (fraction)",
         "Cooperation during training"),
        ("training_kl", tr.KL_COLUMNS, (), "KL to the base model (nats)", "KL divergence from the base model"),
        ("training_entropy", tr.ENTROPY_COLUMNS, (), "policy entropy (nats)", "Policy entropy"),
    ):
        bands = {}
        for run_label, frame in curves.items():
            column = tr.pick_column(frame, candidates)
            if column is not None:
                bands[f"{run_label} (training)" if len(curves) > 1 else "training"] = tr.band(frame, column)
            column = tr.pick_column(frame, evaluation)
            if column is not None:
                bands[f"{run_label} (greedy evaluation)" if len(curves) > 1 else "greedy evaluation"] = tr.band(frame, column)
        if bands:
            figures[stem] = plots.plot_training_curves(bands, label, title, (0.0, 1.0) if stem == "training_cooperation" else None)
            if stem == "training_return":
                plots.draw_references(figures[stem].axes[0], lines)
    return figures


def tournament_figures(tournament: Tournament) -> dict[str, Figure]:
    """Ranking with intervals, payoff-matrix heatmap, cooperation heatmap (where the game
    defines cooperation) and the ecological population shares (where computable)."""
    figures = {
        "ranking": plots.plot_ranking(tn.ranking_table(tournament), "score per match"),
        "payoff_matrix": plots.plot_heatmap(tournament.payoff, "mean score per match (payoff units)",
                                            "Payoff matrix (row entrant's score)", "opponent", "entrant"),
    }
    cooperation = tn.cooperation_matrix(tournament)
    if cooperation.notna().any().any():
        figures["cooperation_matrix"] = plots.plot_heatmap(cooperation, "cooperation rate (fraction)",
                                                           "Cooperation of the row entrant", "opponent", "entrant", limits=(0.0, 1.0))
    if len(tournament.ecology):
        model = tn.ecology_model(tournament)
        figures["population_shares"] = plots.plot_population_shares(
            tournament.ecology, model, "birth-death step" if model.startswith("Moran") else "generation")
    return _name(figures, describe_tournament(tournament))


def figures_for(results: Sequence[Run | Tournament | Experiment], labels: Sequence[str] | None = None) -> dict[str, Figure]:
    """Standard figures of runs and tournaments given together (tournament figures get the
    tournament's label as a prefix when there are several inputs)."""
    labels = list(labels) if labels is not None else unique_labels([r.path for r in results])
    runs = {label: r for label, r in zip(labels, results) if isinstance(r, Run)}
    figures = run_figures(runs) if runs else {}
    experiments = {label: r for label, r in zip(labels, results) if isinstance(r, Experiment)}
    if experiments:  # several seeds: intervals and bands across seeds (prefixed beside runs)
        from mas.analysis.experiment import figures as experiment_figures

        figures.update({stem if not runs else f"experiments_{stem}": fig for stem, fig in experiment_figures(experiments).items()})
    tournaments = [(label, r) for label, r in zip(labels, results) if isinstance(r, Tournament)]
    for label, tournament in tournaments:
        for stem, fig in tournament_figures(tournament).items():
            figures[stem if len(results) == 1 else f"{_stem(label)}_{stem}"] = fig
    return figures


def write_figures(
    results: Sequence[Run | Tournament | Experiment], out_dir: Path, formats: Sequence[str] = ("png", "svg"), labels: Sequence[str] | None = None,
) -> list[Path]:
    """Draw the standard figures of `results` (overlaid when several) and write each in
    every format to `out_dir`; returns the files written."""
    written: list[Path] = []
    for stem, fig in figures_for(results, labels).items():
        written += plots.save_figure(fig, Path(out_dir), stem, tuple(formats))
    return written


def unique_labels(paths: Sequence[Path]) -> list[str]:
    """Short labels for run paths: the directory names, with parents added where needed."""
    resolved = [Path(p).resolve() for p in paths]
    labels = [path.name for path in resolved]
    if len({path.name for path in set(resolved)}) != len(set(resolved)):
        labels = [str(Path(p)) for p in paths]  # different directories of one name
    # the same directory given twice still needs two columns: number the repeats
    seen: dict[str, int] = {}
    unique = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        unique.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return unique


def _returns_table(run: Run) -> pd.DataFrame:
    rows = []
    for agent, group in run.episodes.groupby("agent", sort=False):
        ci = m.mean_ci(group["return"].tolist())
        rows.append({"agent": agent, "mean": ci.mean, "low": ci.low, "high": ci.high})
    order = list(run.agents["agent"]) if len(run.agents) else None
    table = pd.DataFrame(rows)
    if order:
        table = table.set_index("agent").reindex([a for a in order if a in set(table["agent"])]).reset_index()
    return table


def _resource(run: Run) -> dict | None:
    """The resource constants of a run whose game has a stock (it declares a `capacity`,
    `collapse_threshold` and `start_stock` and records `stock`), else None."""
    if not len(run.states) or "stock" not in run.states.columns:
        return None
    game = GameFacts(run).game
    constants = game.constants() if game is not None else {}
    keys = ("capacity", "collapse_threshold", "start_stock")
    return {k: float(constants[k]) for k in keys} if all(k in constants for k in keys) else None


def _has_cooperation(run: Run) -> bool:
    return len(run.steps) > 0 and run.steps["cooperation"].notna().any()


def _stem(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in label)
