"""Game-specific metrics: the social optimum, commons sustainability, bargaining and
signalling outcomes. Pure functions over the run store's frames and a game's parameters.

`states` is `Run.states`: the game's summary after each action step, JSON keys expanded
into columns (commons: stock, collapsed, last_harvests; bargaining: offers_made, agreed,
shares; signalling: phase, target, signal, last_success). Summaries describe the state
*after* the step, so a signalling row with phase "pick" holds the word just said for the
target just shown, and a row with phase "signal" holds the success of the pick just made.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

#: slack when comparing float harvests with the sustainable share
_EPS = 1e-9


# ----- social optimum ------------------------------------------------------------------
def round_limit(rounds: Any) -> int:
    """The most action steps an episode may last, from a scenario's `rounds` field."""
    if isinstance(rounds, dict):
        return int(rounds["max"])
    return int(rounds)


def matrix_optimum_per_round(table: np.ndarray) -> float:
    """Best total payoff of any joint action of a payoff tensor [A]*N + [N]."""
    return float(table.sum(axis=-1).max())


def public_goods_optimum_per_round(n_agents: int, endowment: float, multiplier: float) -> float:
    """Best total payoff of one contribute step: sum_i reward_i = N e + (m - 1) sum_j c_j,
    so everyone contributes everything when m > 1 (N e m) and nothing otherwise (N e)."""
    return n_agents * endowment * max(1.0, multiplier)


def commons_optimum(
    start_stock: float, capacity: float, growth_rate: float, amounts: np.ndarray, n_agents: int,
    collapse_threshold: float, horizon: int, grid: int = 2001,
) -> float:
    """Largest total catch the group can take in `horizon` rounds of the commons.

    Dynamic programming over the stock on an evenly spaced grid of `grid` points in
    [0, capacity] (values between points are interpolated linearly, so the result is
    exact when every reachable stock is a grid point and otherwise within the grid's
    resolution):

        V_T(S) = 0,   V_t(S) = max_H [ min(H, S) + (V_{t+1}(S') if S' >= threshold else 0) ]

    where H ranges over the group's possible total requests (sums of N individual
    `amounts`, which are evenly spaced), R = S - min(H, S) and S' = min(K, R + r R (1 - R/K)).
    """
    step = float(amounts[1] - amounts[0]) if len(amounts) > 1 else 0.0
    totals = np.arange(n_agents * (len(amounts) - 1) + 1) * step  # every reachable group request
    stocks = np.linspace(0.0, capacity, grid)
    catch = np.minimum(totals[None, :], stocks[:, None])  # [S, H]
    remaining = stocks[:, None] - catch
    regrown = np.minimum(capacity, remaining + growth_rate * remaining * (1.0 - remaining / capacity))
    alive = regrown >= collapse_threshold
    value = np.zeros(grid)
    for _ in range(horizon):
        future = np.interp(regrown, stocks, value)
        value = (catch + np.where(alive, future, 0.0)).max(axis=1)
    return float(np.interp(start_stock, stocks, value))


def welfare_ratio(welfare: pd.Series, optimum: pd.Series) -> pd.Series:
    """Realised social welfare / social optimum, per episode (NaN where the optimum is 0)."""
    ratio = welfare / optimum.replace(0, np.nan)
    return ratio.rename("welfare_ratio")


# ----- commons ---------------------------------------------------------------------------
def stock_trajectories(states: pd.DataFrame, start_stock: float) -> pd.DataFrame:
    """Resource stock after each round of each episode, with the start as rounds_played 0.

    Returns columns episode, rounds_played (0 = before the first round), stock.
    """
    after = pd.DataFrame({
        "episode": states["episode"], "rounds_played": states["round"] + 1, "stock": states["stock"].astype(float),
    })
    start = pd.DataFrame({"episode": sorted(states["episode"].unique()), "rounds_played": 0, "stock": float(start_stock)})
    return pd.concat([start, after]).sort_values(["episode", "rounds_played"]).reset_index(drop=True)


def time_to_collapse(states: pd.DataFrame) -> pd.Series:
    """Rounds played when the resource collapsed, per episode (NaN if it never did)."""
    collapsed = states[states["collapsed"].astype(bool)]
    first = collapsed.groupby("episode")["round"].min() + 1
    return first.reindex(sorted(states["episode"].unique())).astype(float).rename("time_to_collapse")


def over_harvest(states: pd.DataFrame, start_stock: float, capacity: float) -> pd.DataFrame:
    """Whether the group over-harvested in each round.

    A round is over-harvested when the group's actual total catch exceeds the surplus
    above the maximum-sustainable-yield level, max(0, S - K/2), of the stock S the round
    started with (so the stock left falls below K/2). Returns columns episode, round,
    stock_before, catch, over_harvest (bool).
    """
    frame = states.sort_values(["episode", "step"])
    before = frame.groupby("episode")["stock"].shift(1).fillna(start_stock).astype(float)
    catch = frame["last_harvests"].map(lambda h: float(sum(h)) if isinstance(h, (list, tuple)) else 0.0)
    surplus = np.maximum(0.0, before - capacity / 2)
    return pd.DataFrame({
        "episode": frame["episode"], "round": frame["round"], "stock_before": before, "catch": catch,
        "over_harvest": catch > surplus + _EPS,
    }).reset_index(drop=True)


# ----- bargaining ------------------------------------------------------------------------
def bargaining_outcomes(states: pd.DataFrame, pie: float) -> pd.DataFrame:
    """One row per episode from its last state: agreed, offers_made, the two shares,
    efficiency = (share_0 + share_1) / pie and fairness = 1 - |share_0 - share_1| /
    (share_0 + share_1) (1 for an equal split, 0 when one takes all; NaN if nothing was
    shared). Episodes cut off before the game ended count as no agreement, shares 0."""
    last = states.sort_values(["episode", "step"]).groupby("episode").tail(1).set_index("episode")
    rows = []
    for episode, row in last.iterrows():
        shares = row.get("shares")
        s0, s1 = (float(shares[0]), float(shares[1])) if isinstance(shares, (list, tuple)) else (0.0, 0.0)
        total = s0 + s1
        rows.append({
            "episode": episode, "agreed": bool(row.get("agreed")), "offers_made": int(row.get("offers_made", 0)),
            "share_0": s0, "share_1": s1, "efficiency": total / pie,
            "fairness": 1.0 - abs(s0 - s1) / total if total > 0 else math.nan,
        })
    return pd.DataFrame(rows)


# ----- signalling ------------------------------------------------------------------------
def signalling_rounds(states: pd.DataFrame) -> pd.DataFrame:
    """One row per signalling round: episode, round (game round of the signal step),
    target, signal (the word said; None if the speaker only waited) and success (the
    fraction of listeners who then picked the target; NaN if the episode ended first)."""
    frame = states.sort_values(["episode", "step"]).reset_index(drop=True)
    said = frame[frame["phase"] == "pick"]
    picked = frame[frame["phase"] == "signal"].set_index(["episode", "round"])["last_success"]
    success = [picked.get((e, r + 1), math.nan) for e, r in zip(said["episode"], said["round"])]
    return pd.DataFrame({
        "episode": said["episode"].to_numpy(), "round": said["round"].to_numpy(), "target": said["target"].to_numpy(),
        "signal": said["signal"].to_numpy(), "success": np.asarray(success, dtype=float),
    })
