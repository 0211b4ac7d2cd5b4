"""The social outcome metrics of Perolat et al. (2017) for grid-world runs.

Per episode of T rounds, with R_i agent i's return and N agents:

- efficiency   U = sum_i R_i / T (collective reward per step);
- equality     E = 1 - Gini(R_1..R_N);
- sustainability S = mean over agents of the average round (counted from 1) in which the
  agent was rewarded (late rewards: the resource lasted); agents never rewarded are left out;
- peace        P = (N T - sum_i sum_t [agent i tagged out at t]) / T (agents on the map
  per step; N without tagging).

Pure functions over a run's frames (`mas.analysis.load.Run`); `out` in `states` is the
grid summary's per-agent tag-out countdown after each step.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mas.analysis import metrics as m


def efficiency(episodes: pd.DataFrame) -> pd.Series:
    """U per episode: the summed return over the episode's rounds."""
    per = episodes.groupby("episode").agg(total=("return", "sum"), rounds=("rounds", "first"))
    return (per["total"] / per["rounds"].clip(lower=1)).rename("efficiency")


def sustainability(steps: pd.DataFrame) -> pd.Series:
    """S per episode: the mean over agents of the mean round (from 1) of their rewards."""
    rewarded = steps[steps["reward"] > 0]
    if rewarded.empty:
        return pd.Series(dtype=float, name="sustainability")
    per_agent = (rewarded["round"] + 1).groupby([rewarded["episode"], rewarded["agent"]]).mean()
    return per_agent.groupby(level="episode").mean().rename("sustainability")


def peace(states: pd.DataFrame, episodes: pd.DataFrame, n_agents: int) -> pd.Series:
    """P per episode: the mean number of agents not tagged out per round."""
    rounds = episodes.groupby("episode")["rounds"].first().clip(lower=1)
    if states.empty or "out" not in states:
        return pd.Series(float(n_agents), index=rounds.index, name="peace")
    tagged_out = states["out"].apply(lambda out: sum(1 for x in out if x > 0) if isinstance(out, list) else 0)
    lost = tagged_out.groupby(states["episode"]).sum().reindex(rounds.index, fill_value=0)
    return ((n_agents * rounds - lost) / rounds).rename("peace")


def social_outcomes(run: Any, n_agents: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The four metrics as overview intervals over episodes, and a per-episode table."""
    episodes = run.episodes
    if episodes.empty:
        return {}, {}
    table = pd.concat([efficiency(episodes), m.equality(episodes), sustainability(run.steps),
                       peace(run.states, episodes, n_agents)], axis=1)
    overview = {name: m.mean_ci([v for v in table[name].tolist() if np.isfinite(v)]) for name in table.columns}
    return overview, {"social outcomes (Perolat et al. 2017)": table.reset_index()}
