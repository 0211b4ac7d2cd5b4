"""Tournament results ready for analysis, on top of the tournament's own reader
(`mas.analysis.tournament_load`, which reads `tournament.sqlite` as DataFrames).

The tournament computes its ranking (mean score per match with bootstrap intervals),
payoff matrix and, for the ecological format, population shares when it finishes. This
module only fills gaps: a tournament stopped before its summary was written is rated from
its finished matches with the tournament's own functions, and for a round robin (which
stores no ecology) the tournament's replicator dynamics run on the payoff matrix. It also
derives the cooperation matrix from the per-seat cooperation of each match.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mas.errors import StoreError

DB_NAME = "tournament.sqlite"
#: generations of the replicator dynamics drawn for a round robin
ECOLOGY_GENERATIONS = 200


@dataclass
class Tournament:
    """A stored tournament with its summary complete.

    Attributes:
        data: the stored tables (`TournamentRun`: entrants, matches, scores, messages, ...).
        ratings: one row per entrant, best first: entrant, name, rank, matches, mean (score
            per match), low, high (its interval), rank_stability, wins, draws, losses, elo,
            per_round.
        payoff: mean score per match of the row entrant against the column entrant, in
            ranking order.
        ecology: population shares, generation x entrant (empty if not computable).
        computed: True when ratings and payoff were computed here (the tournament was
            stopped before it wrote its summary).
    """

    data: Any
    ratings: pd.DataFrame
    payoff: pd.DataFrame
    ecology: pd.DataFrame
    computed: bool = False

    @property
    def path(self) -> Path:
        return Path(self.data.path)

    @property
    def meta(self) -> dict[str, Any]:
        return self.data.meta

    @property
    def scores(self) -> pd.DataFrame:
        return self.data.scores

    @property
    def name(self) -> str:
        spec = self.meta.get("tournament")
        return str(spec.get("name")) if isinstance(spec, dict) and spec.get("name") else self.path.name

    @property
    def ecological(self) -> bool:
        """Whether the tournament itself ran an ecological analysis (else ecology is ours)."""
        spec = self.meta.get("tournament")
        return isinstance(spec, dict) and (spec.get("format") or {}).get("kind") == "ecological"


def is_tournament(path: Path) -> bool:
    """Whether `path` is a tournament directory or its database."""
    return (path / DB_NAME).is_file() or (path.is_file() and path.name == DB_NAME)


def load_tournament(path: str | Path) -> Tournament:
    """Read a tournament directory; StoreError (one line) if missing, foreign or damaged."""
    from mas.analysis.tournament_load import load_tournament_run

    try:
        data = load_tournament_run(path)
    except (pd.errors.DatabaseError, sqlite3.DatabaseError, KeyError, ValueError) as exc:
        raise StoreError(f"{path}: damaged tournament database ({str(exc).splitlines()[0]})") from None
    if data.matches.empty:
        raise StoreError(f"{path}: the tournament has no finished matches yet; nothing to analyse")
    computed = data.ratings.empty
    ratings, payoff = _rate(data) if computed else (data.ratings, data.payoff)
    order = list(ratings["name"])
    payoff = payoff.reindex(index=order, columns=order)
    payoff.index.name, payoff.columns.name = "entrant", "opponent"
    ecology = data.ecology if len(data.ecology) else _replicator(payoff)
    return Tournament(data=data, ratings=ratings, payoff=payoff, ecology=ecology, computed=computed)


def _rate(data: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ratings and payoff matrix of the finished matches, with the tournament's settings
    and seed (as the tournament itself would compute them when it finishes)."""
    from mas.tournament.ratings import MatchTable, payoff_matrix, rate

    spec = data.meta.get("tournament") if isinstance(data.meta.get("tournament"), dict) else {}
    settings = spec.get("ratings") or {}
    names = dict(zip(data.entrants["entrant"], data.entrants["name"]))
    index = {name: entrant for entrant, name in names.items()}
    rows = [(m, seat, index[name], score, rounds) for m, seat, name, score, rounds
            in data.scores[["match", "seat", "entrant", "score", "rounds"]].itertuples(index=False)]
    n = len(names)
    table = MatchTable.from_rows(rows, n, str(settings.get("self_play", "seats")))
    lines = rate(table, n, int(settings.get("bootstrap", 1000)), float(settings.get("confidence", 0.95)),
                 float(settings.get("elo_k", 32.0)), int(data.meta.get("seed", 0)))
    ratings = pd.DataFrame([vars(line) for line in lines])
    ratings.insert(1, "name", ratings["entrant"].map(names))
    means, _ = payoff_matrix(table, n)
    order = [names[i] for i in range(n)]
    return ratings, pd.DataFrame(means, index=order, columns=order)


def _replicator(payoff: pd.DataFrame) -> pd.DataFrame:
    """Shares per generation from the tournament's replicator dynamics, if every pair met."""
    values = payoff.to_numpy(dtype=float)
    if values.size == 0 or not np.isfinite(values).all():
        return pd.DataFrame()
    from mas.tournament.ecology import replicator

    shares = replicator(values, np.ones(len(values)), ECOLOGY_GENERATIONS)
    table = pd.DataFrame(shares, columns=list(payoff.index))
    table.index.name = "generation"
    return table


def ecology_model(tournament: Tournament) -> str:
    """The dynamics behind `tournament.ecology`, in words: the tournament's own Moran process
    ("Moran process, population N") or replicator dynamics (its own, or ours for a round robin)."""
    spec = tournament.meta.get("tournament") if isinstance(tournament.meta.get("tournament"), dict) else {}
    fmt = spec.get("format") or {}
    if tournament.ecological and len(tournament.data.ecology) and fmt.get("dynamics") == "moran":
        return f"Moran process, population {int(fmt.get('population', 100))}"
    return "replicator dynamics"


def cooperation_matrix(tournament: Tournament) -> pd.DataFrame:
    """Mean cooperation of the row entrant in matches against the column entrant (from
    the per-seat cooperation of each match; NaN where the game defines none)."""
    scores = tournament.scores.dropna(subset=["cooperation"])
    order = list(tournament.ratings["name"])
    if scores.empty:
        return pd.DataFrame(np.nan, index=order, columns=order)
    pairs = scores.merge(scores[["match", "seat", "entrant"]], on="match", suffixes=("", "_opponent"))
    pairs = pairs[pairs["seat"] != pairs["seat_opponent"]]
    matrix = pairs.groupby(["entrant", "entrant_opponent"])["cooperation"].mean().unstack().reindex(index=order, columns=order)
    matrix.index.name, matrix.columns.name = "entrant", "opponent"
    return matrix


def ranking_table(tournament: Tournament) -> pd.DataFrame:
    """The ranking for plots and reports: rank, player, mean, low, high (score per match)."""
    r = tournament.ratings
    return pd.DataFrame({"rank": r["rank"], "player": r["name"], "mean": r["mean"], "low": r["low"], "high": r["high"]})
