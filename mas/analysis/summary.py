"""The standard metric tables of a run: what `mas report`, `mas compare` and the figures
show. Picks the metrics that apply to the run's game and computes them from `Run`.

`summarize(run)` returns a `RunSummary`: `overview` (metric name -> Interval over
episodes, or a single number), `agents` (one row per agent) and `tables` (named
DataFrames such as the talk matrix). Metric names are stable, so runs can be compared.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from mas.analysis import communication as comm
from mas.analysis import game_metrics as gm
from mas.analysis import metrics as m
from mas.analysis.load import Run
from mas.errors import StoreError

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
        if self.kind:
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


def compare(runs: Sequence[Run], labels: Sequence[str]) -> pd.DataFrame:
    """The overview metrics of several runs side by side: one row per metric (in the order
    they first appear), one column per label, formatted values ("—" where a run lacks one)."""
    overviews = [summarize(run).overview for run in runs]
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
        kind = self.facts.kind
        if kind == "commons" and len(self.run.states):
            self._commons()
        if kind == "bargaining" and len(self.run.states):
            self._bargaining()
        if kind == "signalling" and len(self.run.states):
            self._signalling()
        self._communication()
        if len(self.run.training):
            self._training()
        name = str(self.run.meta.get("scenario", {}).get("name", self.run.path.name))
        return RunSummary(name=name, game_kind=kind, overview=self.overview, agents=self._agents(), tables=self.tables)

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
        """Social optimum of each episode over the rounds it was played (see game_metrics)."""
        facts, run = self.facts, self.run
        per_episode = run.episodes.drop_duplicates("episode").set_index("episode")
        rounds = per_episode["rounds"].astype(int)
        n = len(facts.agents)
        if facts.kind == "normal_form":
            return rounds * gm.matrix_optimum_per_round(np.asarray(facts.game.table, dtype=float))
        if facts.kind == "public_goods":
            scored = run.steps[run.steps["cooperation"].notna()].groupby("episode")["step"].nunique()
            per_round = gm.public_goods_optimum_per_round(n, facts.config.endowment, facts.config.multiplier)
            return scored.reindex(rounds.index).fillna(0) * per_round
        if facts.kind == "bargaining":
            best = max(facts.config.pie, 2 * facts.config.disagreement)
            return pd.Series(best, index=rounds.index, dtype=float)
        if facts.kind == "signalling" and len(run.states):
            picks = run.states[run.states["phase"] == "signal"].groupby("episode").size()
            return picks.reindex(rounds.index).fillna(0) * facts.config.reward * n
        if facts.kind == "commons" and len(run.states):
            collapse = gm.time_to_collapse(run.states).reindex(rounds.index)
            limit = gm.round_limit(facts.scenario.get("rounds", 10))
            horizons = np.where(collapse.notna(), np.maximum(limit, rounds), rounds)
            c = facts.config
            best = {h: gm.commons_optimum(c.start_stock, c.capacity, c.growth_rate, facts.game.amounts, n,
                                          c.collapse_threshold, int(h)) for h in set(horizons.tolist())}
            return pd.Series([best[h] for h in horizons], index=rounds.index, dtype=float)
        return None

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

    def _commons(self) -> None:
        c, states = self.facts.config, self.run.states
        collapse = gm.time_to_collapse(states)
        self.overview["survival rate"] = float(collapse.isna().mean())
        self.overview["time to collapse (collapsed episodes)"] = m.mean_ci(collapse.dropna().tolist())
        over = gm.over_harvest(states, c.start_stock, c.capacity)
        self.overview["over-harvest rate"] = m.mean_ci(over.groupby("episode")["over_harvest"].mean().tolist())
        final = states.sort_values("step").groupby("episode")["stock"].last()
        self.overview["final stock"] = m.mean_ci(final.tolist())
        self.tables["stock"] = gm.stock_trajectories(states, c.start_stock)

    def _bargaining(self) -> None:
        outcomes = gm.bargaining_outcomes(self.run.states, self.facts.config.pie)
        self.overview["agreement rate"] = float(outcomes["agreed"].mean())
        self.overview["bargaining efficiency"] = m.mean_ci(outcomes["efficiency"].tolist())
        self.overview["bargaining fairness"] = m.mean_ci(outcomes["fairness"].tolist())
        self.overview["offers made"] = m.mean_ci(outcomes["offers_made"].tolist())
        self.tables["bargaining outcomes"] = outcomes

    def _signalling(self) -> None:
        rounds = gm.signalling_rounds(self.run.states)
        self.overview["signalling success"] = m.mean_ci(rounds.groupby("episode")["success"].mean().tolist())
        spoken = rounds[rounds["signal"].notna()]
        self.overview["I(target; signal) bits"] = comm.mutual_information(spoken["target"].tolist(), spoken["signal"].tolist())
        self.overview["H(target) bits"] = comm.entropy(rounds["target"].tolist())
        speaker = self.facts.agents[0] if self.facts.agents else None
        sent = comm.sent_messages(self.run.messages)
        said = sent[sent["sender"] == speaker].set_index(["episode", "step"])["text"]
        if len(said):
            # the speaker's free-text message sent in the signal step, paired with that step's target
            frame = self.run.states[self.run.states["phase"] == "pick"]
            pairs = [(t, said.get((e, s))) for e, s, t in zip(frame["episode"], frame["step"], frame["target"])]
            pairs = [(t, text) for t, text in pairs if text is not None]
            if pairs:
                self.overview["I(target; message) bits"] = comm.mutual_information(*zip(*pairs))
        self.tables["signalling rounds"] = rounds

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
