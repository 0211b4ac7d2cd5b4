"""The standard metric tables of a run: what `mas report`, `mas compare` and the figures
show. Computes the shared metrics from `Run` and asks the run's game (rebuilt through the
registry from the stored scenario) for its own: `Game.episode_optimum`, `Game.run_metrics`.

`summarize(run)` returns a `RunSummary`: `overview` (metric name -> Interval over
episodes, or a single number), `agents` (one row per agent) and `tables` (named
DataFrames such as the talk matrix). Metric names are stable, so runs can be compared.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from mas.analysis import communication as comm
from mas.analysis import game_metrics as gm
from mas.analysis import metrics as m
from mas.analysis.load import Run
from mas.errors import StoreError

if TYPE_CHECKING:
    from mas.analysis.experiment import Experiment

Value = m.Interval | float


@dataclass
class RunSummary:
    """Metric tables of one run (see the module docstring)."""

    name: str
    game_kind: str
    overview: dict[str, Value]
    agents: pd.DataFrame
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


def format_value(value: Value | None) -> str:
    """An Interval as 'mean ± half-width', a number with 3 significant digits, NaN as '—'."""
    if value is None:
        return "—"
    if isinstance(value, m.Interval):
        return "—" if value.n == 0 or math.isnan(value.mean) else str(value)
    if isinstance(value, float) and math.isnan(value):
        return "—"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e12:
        return str(int(value))  # counts and whole-number totals read better in full
    return m.number(value) if isinstance(value, float) else str(value)


def point(value: Value | None) -> float:
    """The number behind a value (an Interval's mean)."""
    if value is None:
        return math.nan
    return value.mean if isinstance(value, m.Interval) else float(value)


class GameFacts:
    """The run's game rebuilt from its stored scenario (rules, names, parameters)."""

    def __init__(self, run: Run) -> None:
        from mas import registry

        self.scenario: dict[str, Any] = run.meta.get("scenario", {})
        config = self.scenario.get("game", {})
        self.kind: str = config.get("kind", "")
        self.agents = list(run.agents["agent"]) if len(run.agents) else []
        self.config = self.game = None
        if self.kind and self.agents:  # a curves-only training run has a scenario but no seats
            try:
                self.config = registry.game_config_model(self.kind).model_validate(config)
                self.game = registry.make_game(self.config, len(self.agents))
            except (ValidationError, ValueError) as exc:
                raise StoreError(f"{run.path}: the stored scenario's game does not load ({str(exc).splitlines()[0]})") from None

    def action_phrases(self) -> dict[str, dict[int, list[str]]]:
        """Per agent, the phrases that name each of its actions in text."""
        if self.game is None:
            return {}
        descriptions = getattr(self.config, "action_descriptions", None)
        return {agent: comm.action_phrases(self.game.action_names(seat), descriptions) for seat, agent in enumerate(self.agents)}


def overview_of(result: "Run | Experiment") -> dict[str, Value]:
    """A run's overview (intervals over episodes), or an experiment's (across seeds)."""
    from mas.analysis.experiment import Experiment, overview

    return overview(result) if isinstance(result, Experiment) else summarize(result).overview


def compare(runs: Sequence["Run | Experiment"], labels: Sequence[str]) -> pd.DataFrame:
    """The overview metrics of several runs side by side: one row per metric (in the order
    they first appear), one column per label, formatted values ("—" where a run lacks one).
    An experiment of several seeds gives its metrics with intervals across seeds."""
    overviews = [overview_of(run) for run in runs]
    metrics: list[str] = []
    for overview in overviews:
        metrics += [name for name in overview if name not in metrics]
    table = pd.DataFrame({label: [format_value(o.get(name)) for name in metrics] for label, o in zip(labels, overviews)}, index=metrics)
    table.index.name = "metric"
    return table


def summarize(run: Run) -> RunSummary:
    """Compute every metric that applies to `run`'s game (see `RunSummary`)."""
    return _Summarizer(run).summary()


class _Summarizer:
    """Builds a RunSummary step by step; one method per family of metrics."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.facts = GameFacts(run)
        self.overview: dict[str, Value] = {}
        self.tables: dict[str, pd.DataFrame] = {}
        self.episode_ids = sorted(run.episodes["episode"].unique()) if len(run.episodes) else []

    def summary(self) -> RunSummary:
        self._general()
        self._cooperation()
        self._welfare()
        self._game_specific()
        self._communication()
        if len(self.run.training):
            self._training()
        self._plugins()
        name = str(self.run.meta.get("scenario", {}).get("name", self.run.path.name))
        return RunSummary(name=name, game_kind=self.facts.kind, overview=self.overview, agents=self._agents(), tables=self.tables)

    # ----- families ------------------------------------------------------------------
    def _general(self) -> None:
        self.overview["episodes"] = float(len(self.episode_ids))
        rounds = self.run.episodes.drop_duplicates("episode")["rounds"] if len(self.run.episodes) else []
        self.overview["rounds per episode"] = m.mean_ci(list(rounds))
        rates = m.invalid_action_rate(self.run.steps, self.run.decisions) if len(self.run.steps) else None
        if rates is not None:
            weights = rates["action_steps"]
            self.overview["illegal action rate"] = float((rates["illegal_rate"] * weights).sum() / weights.sum())
            fallback = rates["fallback_rate"].dropna()
            if len(fallback):
                self.overview["fallback action rate"] = float((fallback * weights[fallback.index]).sum() / weights[fallback.index].sum())
            invalid = rates["invalid_reply_rate"].dropna()
            if len(invalid):
                self.overview["invalid reply rate (mean over agents)"] = float(invalid.mean())

    def _cooperation(self) -> None:
        steps = self.run.steps
        if steps.empty or steps["cooperation"].isna().all():
            return
        per_episode = m.scored_steps(steps).groupby("episode")["cooperation"].mean()
        self.overview["cooperation rate"] = m.mean_ci(per_episode.tolist())
        self.overview["mutual cooperation"] = m.mutual_cooperation_rate(steps)
        self.tables["cooperation by round"] = m.cooperation_by_round(steps)
        self.tables["mutual cooperation by pair"] = m.mutual_cooperation_by_pair(steps)

    def _welfare(self) -> None:
        episodes = self.run.episodes
        if episodes.empty:
            return
        welfare = m.social_welfare(episodes)
        self.overview["social welfare"] = m.mean_ci(welfare.tolist())
        optimum = self._optimum()
        if optimum is not None:
            self.overview["welfare / optimum"] = m.mean_ci(gm.welfare_ratio(welfare, optimum).tolist())
        self.overview["equality (1 - Gini)"] = m.mean_ci(m.equality(episodes).tolist())

    def _optimum(self) -> pd.Series | None:
        """Social optimum of each episode over the rounds it was played (the game's hook)."""
        return None if self.facts.game is None else self.facts.game.episode_optimum(self.run)

    def _training(self) -> None:
        from mas.analysis import training as tr

        curves = self.run.training
        self.overview["training curves (seeds)"] = float(curves["curve"].nunique())
        self.overview["training steps"] = float(curves["step"].max())
        for candidates, label in ((tr.RETURN_COLUMNS, "final training return"), (tr.EVAL_RETURN_COLUMNS, "final evaluation return"),
                                  (tr.COOPERATION_COLUMNS, "final training cooperation"),
                                  (tr.EVAL_COOPERATION_COLUMNS, "final evaluation cooperation")):
            column = tr.pick_column(curves, candidates)
            if column is not None:
                self.overview[label] = tr.final_value(curves, column)

    def _game_specific(self) -> None:
        """The metrics the run's game defines for itself (its `run_metrics` hook)."""
        if self.facts.game is None:
            return
        overview, tables = self.facts.game.run_metrics(self.run)
        self.overview.update(overview)
        self.tables.update(tables)

    def _plugins(self) -> None:
        """The installed plugins' metrics (entry point group `mas.metrics`)."""
        from mas import registry
        from mas.errors import PluginError

        for name, function in registry.metric_functions().items():
            if name in self.overview:
                raise PluginError(f"plugin metric '{name}' clashes with the built-in metric of that name; rename it")
            try:
                value = function(self.run)
            except Exception as exc:  # third-party code: name it, in one line
                raise PluginError(f"plugin metric '{name}' failed on {self.run.path}: {type(exc).__name__}: "
                                  f"{(str(exc).strip().splitlines() or [''])[0]}") from None
            if value is not None:
                self.overview[name] = value if isinstance(value, m.Interval) else float(value)

    def _communication(self) -> None:
        messages = self.run.messages
        if messages.empty:
            return
        sent = comm.sent_messages(messages)
        self.overview["messages sent per episode"] = m.mean_ci(
            sent.groupby("episode").size().reindex(self.episode_ids).fillna(0).tolist())
        self.overview["delivered fraction"] = float((sent["recipients"] > 0).mean())
        self.tables["talk matrix"] = comm.talk_matrix(messages, self.facts.agents)
        self.tables["vocabulary over time"] = comm.vocabulary_over_time(messages)
        promises = self._promises()
        if promises is not None and promises["kept"].notna().any():
            self.overview["promise keeping"] = float(promises["kept"].dropna().astype(float).mean())
            self.tables["promises"] = promises

    def _promises(self) -> pd.DataFrame | None:
        if self.facts.game is None or self.run.steps.empty:
            return None
        promises = comm.promise_keeping(self.run.messages, self.run.steps, self.facts.action_phrases())
        seats = {agent: seat for seat, agent in enumerate(self.facts.agents)}

        def name(agent: str, index: float) -> str | None:
            names = self.facts.game.action_names(seats[agent])
            return names[int(index)] if index == index and 0 <= int(index) < len(names) else None

        return promises.assign(
            stated_name=[name(a, i) for a, i in zip(promises["sender"], promises["stated"])],
            action_name=[name(a, i) for a, i in zip(promises["sender"], promises["action"])],
        )

    def _agents(self) -> pd.DataFrame:
        run = self.run
        out = pd.DataFrame(index=pd.Index(self.facts.agents, name="agent"))
        if len(run.agents):
            policies = run.agents.set_index("agent")["policy"]
            out["policy"] = policies.map(lambda p: _policy_name(p)).reindex(out.index)
        if len(run.episodes):
            returns = run.episodes.groupby("agent")["return"].apply(list)
            out["return"] = [m.mean_ci(returns.get(a, [])) for a in out.index]
        if len(run.steps) and run.steps["cooperation"].notna().any():
            out["cooperation"] = m.cooperation_by_agent(run.steps).reindex(out.index)
            recip = m.reciprocity(run.steps)
            if len(recip):
                out["reciprocity"] = recip["reciprocity"].reindex(out.index)
        if len(run.steps):
            rates = m.invalid_action_rate(run.steps, run.decisions)
            out["illegal rate"] = rates["illegal_rate"].reindex(out.index)
            for column, title in (("fallback_rate", "fallback rate"), ("invalid_reply_rate", "invalid reply rate")):
                if rates[column].notna().any():
                    out[title] = rates[column].reindex(out.index)
        if len(run.messages):
            stats = comm.message_stats(run.messages, self.facts.agents, len(self.episode_ids))
            out["messages / episode"] = stats["per_episode"]
            out["words / message"] = stats["mean_words"]
            promises = self.tables.get("promises")
            if promises is not None and len(promises):
                kept = promises.dropna(subset=["kept"]).groupby("sender")["kept"].apply(lambda k: float(np.mean(k.astype(float))))
                out["promises kept"] = kept.reindex(out.index)
        return out


def _policy_name(policy_json: str) -> str:
    import json

    try:
        return str(json.loads(policy_json).get("type", "?"))
    except (ValueError, AttributeError):
        return "?"
