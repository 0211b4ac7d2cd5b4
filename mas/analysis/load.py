"""Read a run directory into pandas DataFrames (the analysis side of the run store).

A run directory holds what `mas run` wrote (`run.sqlite`) or what `mas train` wrote:
training curves (see `mas.analysis.training`) and, in `eval/run.sqlite`, the episodes the
trained agents played at the end, which become the run's episodes. Tournaments have their own reader (`mas.analysis.tournaments`);
`load_result` picks the right one for a path.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from mas.errors import StoreError
from mas.store import DB_NAME, RunStore

if TYPE_CHECKING:
    from mas.analysis.experiment import Experiment
    from mas.analysis.tournaments import Tournament

#: columns of each store table, for runs that have training curves but no episodes
_STORE_COLUMNS = {
    "agents": ["seat", "agent", "policy", "persona"],
    "episodes": ["episode", "seed", "rounds", "steps", "terminated", "truncated", "agent", "return", "cooperation"],
    "steps": ["episode", "step", "round", "agent", "action", "action_name", "illegal", "reward", "cooperation"],
    "states": ["episode", "step", "round"],
    "messages": ["episode", "step", "round", "sender", "recipient", "text", "delivered", "reason"],
    "decisions": ["episode", "step", "round", "agent", "talking", "record"],
}
#: where `mas train` stores the episodes played by the trained agents at the end
EVAL_DIR = "eval"
#: JSON files a trainer may leave with the resolved config, read into `meta` when there is no store
_META_FILES = ("meta.json", "config.json", "run.json", "train.json", "experiment.json")


@dataclass
class Run:
    """A stored run as DataFrames: `episodes` (one row per episode and agent, with its
    return and cooperation), `steps`, `states` (game summaries, JSON expanded into
    columns), `messages`, `decisions` (policy records, JSON text), `agents`, `meta`
    (scenario, seed, versions) and `training` (curves of `mas train`; empty otherwise)."""

    path: Path
    meta: dict[str, Any]
    agents: pd.DataFrame
    episodes: pd.DataFrame
    steps: pd.DataFrame
    states: pd.DataFrame
    messages: pd.DataFrame
    decisions: pd.DataFrame
    extra: dict[str, pd.DataFrame] = field(default_factory=dict)
    training: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def name(self) -> str:
        """The scenario's name, else the directory's."""
        scenario = self.meta.get("scenario")
        return str(scenario.get("name")) if isinstance(scenario, dict) and scenario.get("name") else self.path.name


def load_run(path: str | Path) -> Run:
    """Load a run directory written by `mas run` or `mas train`.

    Raises:
        StoreError: nothing readable there (one line naming the path and what was expected).
    """
    from mas.analysis import training

    from mas.analysis.tournaments import is_tournament

    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: no such run directory")
    if is_tournament(path):
        raise StoreError(f"{path}: is a tournament, not a run (mas report and mas plot read tournaments too)")
    store_path = path
    if path.is_dir() and not (path / DB_NAME).is_file() and training.has_training(path):
        if not (path / EVAL_DIR / DB_NAME).is_file():
            return Run(path=path, meta=_json_meta(path), **_empty_frames(), training=training.read_curves(path))
        store_path = path / EVAL_DIR  # a training run: its evaluation episodes are the run's episodes
    with RunStore.open(store_path) as store:
        try:
            episodes = store.frame("episodes").merge(store.frame("returns"), on="episode", how="left")
            states = _expand_states(store.frame("states"))
            frames = {name: store.frame(name) for name in ("agents", "steps", "messages", "decisions")}
            extra = {"predictions": store.frame("predictions")}
            meta = store.meta()
        except (pd.errors.DatabaseError, sqlite3.DatabaseError, json.JSONDecodeError) as exc:
            raise StoreError(f"{store.path}: damaged run database ({str(exc).splitlines()[0]})") from None
    run_dir = path if path.is_dir() else path.parent
    curves = training.read_curves(run_dir) if run_dir.is_dir() and training.has_training(run_dir) else pd.DataFrame()
    return Run(path=run_dir, meta=meta, episodes=episodes, states=states, training=curves, extra=extra, **frames)


def load_result(path: str | Path) -> "Run | Tournament | Experiment":
    """A run (run.sqlite and/or training curves), a tournament (tournament.sqlite) or an
    experiment of several seeds (experiment.json, `mas.experiment`)."""
    from mas.analysis.tournaments import is_tournament, load_tournament
    from mas.experiment import is_experiment

    if is_experiment(Path(path)):
        from mas.analysis.experiment import load_experiment

        return load_experiment(path)
    return load_tournament(path) if is_tournament(Path(path)) else load_run(path)


def _expand_states(states: pd.DataFrame) -> pd.DataFrame:
    if not len(states):
        return states.drop(columns=["summary"])
    expanded = pd.json_normalize([json.loads(s) for s in states["summary"]])
    return pd.concat([states.drop(columns=["summary"]).reset_index(drop=True), expanded], axis=1)


def _empty_frames() -> dict[str, pd.DataFrame]:
    return {name: pd.DataFrame(columns=columns) for name, columns in _STORE_COLUMNS.items()}


def _json_meta(run_dir: Path) -> dict[str, Any]:
    for name in _META_FILES:
        path = run_dir / name
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError) as exc:
                raise StoreError(f"{path}: not valid JSON ({exc})") from None
            return data if isinstance(data, dict) else {"config": data}
    return {}
