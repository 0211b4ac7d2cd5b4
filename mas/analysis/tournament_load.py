"""Read a tournament run directory (`tournament.sqlite`) into pandas DataFrames.

    run = load_tournament_run("runs/axelrod_classic-20250101-120000")
    run.scores.groupby("entrant")["score"].mean()      # mean score per match
    run.payoff                                          # entrants x entrants matrix
    run.round_actions(match=0)                          # per-round actions of one match

The store's schema is documented in `mas/tournament/store.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mas.tournament.play import ActionCodec
from mas.tournament.store import TournamentStore


@dataclass
class TournamentRun:
    """A stored tournament as DataFrames.

    Attributes:
        path: the run directory.
        meta: resolved tournament (`meta["tournament"]`), seed, seat ids, action names, versions.
        entrants: entrant (index), name, policy (JSON text), persona.
        matches: one row per finished match: match, repetition, seed, rounds, steps,
            terminated, truncated, and `entrants` (names by seat, as a tuple).
        scores: one row per entrant and match: match, repetition, seat, entrant (name),
            opponents (names of the other seats, as a tuple), score, per_round,
            cooperation, illegal, rounds, actions (encoded; see `round_actions`).
        payoff: mean score per match of the row entrant against the column entrant
            (NaN where they never met), indexed by names.
        ratings: the ranking (rank, matches, mean, low, high, rank_stability, wins,
            draws, losses, elo, per_round), best first.
        ecology: population share per generation (columns: entrants), empty if the
            tournament was not ecological.
        messages, decisions: as in the run store, plus `match`.
    """

    path: Path
    meta: dict[str, Any]
    entrants: pd.DataFrame
    matches: pd.DataFrame
    scores: pd.DataFrame
    payoff: pd.DataFrame
    ratings: pd.DataFrame
    ecology: pd.DataFrame
    messages: pd.DataFrame
    decisions: pd.DataFrame

    def round_actions(self, match: int | None = None) -> pd.DataFrame:
        """Per-round actions, one row per match, round and seat: match, round, seat,
        entrant, action (index) and action_name. All matches when `match` is None."""
        codec = ActionCodec(**self.meta["action_codec"])
        names = self.meta["action_names"]
        rows = self.scores if match is None else self.scores[self.scores["match"] == match]
        records = [
            (m, r, seat, entrant, action, names[seat][action])
            for m, seat, entrant, encoded in rows[["match", "seat", "entrant", "actions"]].itertuples(index=False)
            for r, action in enumerate(codec.decode(encoded))
        ]
        return pd.DataFrame.from_records(records, columns=["match", "round", "seat", "entrant", "action", "action_name"])


def load_tournament_run(path: str | Path) -> TournamentRun:
    """Load a tournament run directory written by `mas tournament` (raises StoreError if
    it is missing, corrupt or of another schema version). Works on an unfinished
    tournament too: the summary tables are then empty or from an earlier finish."""
    with TournamentStore.open(Path(path)) as store:
        meta = store.meta()
        entrants = store.frame("entrants")
        names = dict(zip(entrants["entrant"], entrants["name"]))
        matches = store.frame("matches").sort_values("match").reset_index(drop=True)
        raw = store.frame("scores").sort_values(["match", "seat"]).reset_index(drop=True)
        seated = raw.groupby("match")["entrant"].apply(lambda s: tuple(names[e] for e in s))
        matches["entrants"] = matches["match"].map(seated)
        scores = raw.merge(matches[["match", "repetition", "rounds"]], on="match", how="left")
        scores["entrant"] = scores["entrant"].map(names)
        scores["opponents"] = [
            tuple(n for i, n in enumerate(seated[m]) if i != seat) for m, seat in zip(scores["match"], scores["seat"])
        ]
        scores["per_round"] = scores["score"] / scores["rounds"].where(scores["rounds"] > 0)
        columns = ["match", "repetition", "seat", "entrant", "opponents", "score", "per_round", "cooperation", "illegal", "rounds", "actions"]
        scores = scores[columns]
        payoff_rows = store.frame("payoff")
        order = [names[i] for i in sorted(names)]
        payoff = (
            payoff_rows.assign(row=payoff_rows["row"].map(names), col=payoff_rows["col"].map(names))
            .pivot(index="row", columns="col", values="mean")
            .reindex(index=order, columns=order)
            if len(payoff_rows)
            else pd.DataFrame(index=order, columns=order, dtype=float)
        )
        ratings = store.frame("ratings").sort_values(["rank", "entrant"]).reset_index(drop=True)
        ratings.insert(1, "name", ratings["entrant"].map(names))
        ecology_rows = store.frame("ecology")
        ecology = (
            ecology_rows.assign(entrant=ecology_rows["entrant"].map(names)).pivot(index="generation", columns="entrant", values="share")[order]
            if len(ecology_rows)
            else pd.DataFrame(columns=order, dtype=float)
        )
        return TournamentRun(
            path=Path(path), meta=meta, entrants=entrants, matches=matches, scores=scores, payoff=payoff,
            ratings=ratings, ecology=ecology, messages=store.frame("messages"), decisions=store.frame("decisions"),
        )
