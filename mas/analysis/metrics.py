"""Cooperation, welfare and equality metrics: pure functions over the run store's frames.

Every function takes the DataFrames of `mas.analysis.load.Run` (or plain sequences) and
returns numbers or small DataFrames; none of them reads files or draws. Each docstring
states its formula so a reader can check a value by hand.

Conventions: `steps` has one row per agent per action step (columns episode, step,
round, agent, action, illegal, reward, cooperation); `cooperation` is the game's score
in [0, 1] and NaN/None where the game defines none (e.g. public-goods punish steps). An
agent "cooperates" in a step when its score is at least `threshold` (0.5), which is exact
for the binary scores of matrix games and the commons and splits public-goods
contributions at half the endowment.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: score at or above which a step counts as cooperative (binary games score 0 or 1)
COOPERATE_AT = 0.5


@dataclass(frozen=True)
class Interval:
    """A mean with a two-sided confidence interval."""

    mean: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        if self.n < 2:
            return number(self.mean)
        return f"{number(self.mean)} ± {number((self.high - self.low) / 2, 2)}"


def number(value: float, digits: int = 3) -> str:
    """A number for tables: `digits` significant digits, but whole numbers from 1000 up in
    full ("1264", not "1.26e+03")."""
    if math.isfinite(value) and abs(value) >= 1000:
        return f"{value:.0f}"
    return f"{value:.{digits}g}"


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Mean with a Student-t confidence interval (episodes are independent draws).

    With fewer than two values, or no spread, the interval collapses to the mean.
    """
    data = [float(v) for v in values if v is not None and not math.isnan(v)]
    n = len(data)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = sum(data) / n
    if n < 2:
        return Interval(mean, mean, mean, n)
    from scipy import stats

    sd = math.sqrt(sum((x - mean) ** 2 for x in data) / (n - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)


def scored_steps(steps: pd.DataFrame) -> pd.DataFrame:
    """The rows where the game scored cooperation, with a float `cooperation` column."""
    scored = steps[pd.notna(steps["cooperation"])].copy()
    scored["cooperation"] = scored["cooperation"].astype(float)
    return scored


# ----- cooperation --------------------------------------------------------------------
def cooperation_by_round(steps: pd.DataFrame) -> pd.DataFrame:
    """Mean cooperation score per round over all agents and episodes.

    Returns columns round, rate, low, high (95% Student-t interval over episodes of the
    per-episode mean), n (episodes contributing). Empty if the game scores no cooperation.
    """
    scored = scored_steps(steps)
    rows = []
    for game_round, group in scored.groupby("round"):
        per_episode = group.groupby("episode")["cooperation"].mean()
        ci = mean_ci(per_episode.tolist())
        rows.append({"round": int(game_round), "rate": ci.mean, "low": ci.low, "high": ci.high, "n": ci.n})
    return pd.DataFrame(rows, columns=["round", "rate", "low", "high", "n"])


def by_agent_and_round(table: pd.DataFrame, column: str) -> dict[str, pd.DataFrame]:
    """Per agent, the mean of `column` per round with a 95% interval over episodes (columns
    round, mean, low, high, n); rows where `column` is null are left out (world-model
    predictions' accuracy or log-loss, the reward model's component)."""
    out: dict[str, pd.DataFrame] = {}
    if column not in table.columns:
        return out
    kept = table[table[column].notna()]
    for agent, rows in kept.groupby("agent"):
        band = []
        for game_round, group in rows.groupby("round"):
            ci = mean_ci(group.groupby("episode")[column].mean().astype(float).tolist())
            band.append({"round": int(game_round) + 1, "mean": ci.mean, "low": ci.low, "high": ci.high, "n": ci.n})
        out[str(agent)] = pd.DataFrame(band)
    return out


def cooperation_by_agent(steps: pd.DataFrame) -> pd.Series:
    """Mean cooperation score of each agent over all its scored steps (index: agent)."""
    return scored_steps(steps).groupby("agent")["cooperation"].mean().rename("cooperation")


def _cooperated(steps: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Binary cooperation as a table: index (episode, step), one column per agent."""
    scored = scored_steps(steps)
    table = scored.pivot_table(index=["episode", "step"], columns="agent", values="cooperation", aggfunc="first")
    table = table[[a for a in pd.unique(scored["agent"]) if a in table.columns]]  # seat order, not alphabetical
    return table.ge(threshold).where(table.notna())


def mutual_cooperation_rate(steps: pd.DataFrame, threshold: float = COOPERATE_AT) -> float:
    """Fraction of scored steps in which every agent cooperated (CC rate in a 2-player PD)."""
    table = _cooperated(steps, threshold).dropna()
    if table.empty:
        return math.nan
    return float(table.astype(bool).all(axis=1).mean())


def mutual_cooperation_by_pair(steps: pd.DataFrame, threshold: float = COOPERATE_AT) -> pd.DataFrame:
    """For every pair of agents (i, j), the fraction of steps scored for both in which both
    cooperated; the diagonal is an agent's own cooperation rate. Symmetric agent x agent."""
    table = _cooperated(steps, threshold)
    cooperated, scored = _as_arrays(table)
    both = cooperated.T @ cooperated  # steps where i and j cooperated
    counted = scored.T @ scored  # steps scored for both
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = np.where(counted > 0, both / counted, np.nan)
    out = pd.DataFrame(rates, index=list(table.columns), columns=list(table.columns))
    out.index.name, out.columns.name = "agent", "partner"
    return out


def _as_arrays(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(cooperated, scored) as float 0/1 arrays [steps, agents] from a `_cooperated` table."""
    scored = table.notna().to_numpy(dtype=float)
    cooperated = table.fillna(False).astype(bool).to_numpy(dtype=float) * scored
    return cooperated, scored


def reciprocity(steps: pd.DataFrame, threshold: float = COOPERATE_AT) -> pd.DataFrame:
    """How an agent's cooperation responds to its partners' previous move.

    For every agent i and every other agent j (pooled over partners) and every scored step
    t of an episode that has an earlier scored step t' (the previous one), count whether i
    cooperated at t, split by whether j cooperated at t':

        after_cooperation = P(i cooperates at t | j cooperated at t')
        after_defection   = P(i cooperates at t | j defected at t')
        reciprocity       = after_cooperation - after_defection   (1 for tit-for-tat)

    Returns one row per agent with these and the counts n_after_cooperation,
    n_after_defection; a probability is NaN when its condition never happened.
    """
    table = _cooperated(steps, threshold)
    if table.empty:
        return pd.DataFrame()
    now_cooperated, now_scored = _as_arrays(table)
    prev_cooperated, prev_scored = _as_arrays(table.groupby(level="episode").shift(1))
    prev_defected = prev_scored - prev_cooperated
    others = 1.0 - np.eye(table.shape[1])  # pool over partners j != i

    def pooled(now: np.ndarray, previous: np.ndarray) -> np.ndarray:
        return ((now.T @ previous) * others).sum(axis=1)  # [i]: sum over t and j != i

    kept_c, n_c = pooled(now_cooperated, prev_cooperated), pooled(now_scored, prev_cooperated)
    kept_d, n_d = pooled(now_cooperated, prev_defected), pooled(now_scored, prev_defected)
    with np.errstate(invalid="ignore", divide="ignore"):
        after_c = np.where(n_c > 0, kept_c / n_c, np.nan)
        after_d = np.where(n_d > 0, kept_d / n_d, np.nan)
    out = pd.DataFrame({
        "after_cooperation": after_c, "after_defection": after_d, "reciprocity": after_c - after_d,
        "n_after_cooperation": n_c.astype(int), "n_after_defection": n_d.astype(int),
    }, index=pd.Index(list(table.columns), name="agent"))
    return out


# ----- welfare and equality ------------------------------------------------------------
def social_welfare(episodes: pd.DataFrame) -> pd.Series:
    """Sum of all agents' returns in each episode (index: episode)."""
    return episodes.groupby("episode")["return"].sum().rename("welfare")


def gini(values: Sequence[float]) -> float:
    """Gini coefficient: sum_i sum_j |x_i - x_j| / (2 n^2 mean).

    0 when everyone has the same, (n-1)/n when one has everything. Defined for
    non-negative values with a positive total; NaN otherwise (zero-sum games have none).
    """
    x = np.asarray([float(v) for v in values], dtype=float)
    if len(x) == 0 or np.any(x < 0) or x.sum() <= 0:
        return math.nan
    return float(np.abs(x[:, None] - x[None, :]).sum() / (2 * len(x) ** 2 * x.mean()))


def equality(episodes: pd.DataFrame) -> pd.Series:
    """1 - Gini of the agents' returns in each episode (index: episode; Perolat et al. 2017)."""
    return episodes.groupby("episode")["return"].apply(lambda r: 1.0 - gini(r.tolist())).rename("equality")


# ----- reliability of agents -----------------------------------------------------------
#: decision-record statuses that mean the action was not the agent's own valid choice
FALLBACK_STATUSES = frozenset({"fallback", "defaulted", "default", "invalid", "error", "failed"})


def record_is_fallback(record: dict) -> bool:
    """Whether a policy's decision record says its action was a fallback, not its choice.

    The LLM policy records `status` ("ok", "retried", "forced" or "fallback"); a status in
    `FALLBACK_STATUSES` or a true `fallback` key marks a fallback. "retried" (valid after
    a correction) and "forced" (only one legal action) are real choices.
    """
    if record.get("fallback") is True:
        return True
    status = record.get("status", record.get("parse_status"))
    return isinstance(status, str) and status.lower() in FALLBACK_STATUSES


def invalid_action_rate(steps: pd.DataFrame, decisions: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per agent: how often its action was not what it validly chose.

    - `illegal_rate`: illegal actions the env replaced / action steps.
    - `fallback_rate`: action-step records flagged by `record_is_fallback` / action-step
      records (NaN for agents that keep no records, such as scripted ones).
    - `invalid_reply_rate`: invalid model replies / model replies, from the records'
      `invalid` and `outputs` counts (NaN where no record counts replies, e.g. score mode).
    """
    out = steps.groupby("agent").agg(action_steps=("illegal", "size"), illegal=("illegal", "sum"))
    out["illegal_rate"] = out["illegal"] / out["action_steps"]
    out["fallback_rate"] = math.nan
    out["invalid_reply_rate"] = math.nan
    if decisions is not None and len(decisions):
        import json

        acting = decisions[decisions["talking"] == 0]
        records = acting["record"].map(lambda text: _as_dict(json.loads(text)))
        agents = acting["agent"]
        fallback = records.map(record_is_fallback).groupby(agents).mean()
        out.loc[fallback.index.intersection(out.index), "fallback_rate"] = fallback
        invalid = records.map(lambda r: float(r.get("invalid", 0) or 0)).groupby(agents).sum()
        replies = records.map(lambda r: float(r.get("outputs", 0) or 0)).groupby(agents).sum()
        counted = replies[replies > 0].index.intersection(out.index)
        out.loc[counted, "invalid_reply_rate"] = invalid[counted] / replies[counted]
    return out[["action_steps", "illegal_rate", "fallback_rate", "invalid_reply_rate"]]


def _as_dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}
