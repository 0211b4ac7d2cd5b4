"""Read a run directory into pandas DataFrames (the analysis side of the run store)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from mas.store import RunStore


@dataclass
class Run:
    """A stored run as DataFrames: `episodes` (one row per episode and agent, with its
    return and cooperation), `steps`, `states` (game summaries, JSON expanded into
    columns), `messages`, `decisions` (policy records, JSON text), `agents`, and `meta` (scenario, seed, versions)."""

    path: Path
    meta: dict[str, Any]
    agents: pd.DataFrame
    episodes: pd.DataFrame
    steps: pd.DataFrame
    states: pd.DataFrame
    messages: pd.DataFrame
    decisions: pd.DataFrame
    extra: dict[str, pd.DataFrame] = field(default_factory=dict)


def load_run(path: str | Path) -> Run:
    """Load a run directory written by `mas run` (raises StoreError if missing/corrupt)."""
    with RunStore.open(Path(path)) as store:
        episodes = store.frame("episodes").merge(store.frame("returns"), on="episode", how="left")
        states = store.frame("states")
        if len(states):
            expanded = pd.json_normalize([json.loads(s) for s in states["summary"]])
            states = pd.concat([states.drop(columns=["summary"]).reset_index(drop=True), expanded], axis=1)
        return Run(
            path=Path(path),
            meta=store.meta(),
            agents=store.frame("agents"),
            episodes=episodes,
            steps=store.frame("steps"),
            states=states,
            messages=store.frame("messages"),
            decisions=store.frame("decisions"),
        )
