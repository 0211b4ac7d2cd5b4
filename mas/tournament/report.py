"""What `mas tournament` prints at the end: a summary line, the ranking table (rich) and
a legend of its columns."""

from __future__ import annotations

import math

from rich import box
from rich.table import Table

from mas.tournament.run import TournamentResults
from mas.tournament.schedule import game_capabilities, swaps_seats
from mas.tournament.spec import Tournament


def _number(value: float | None) -> str:
    """About three significant digits, never in exponent notation."""
    if value is None or math.isnan(value):
        return "-"
    decimals = 2 if value == 0 else max(0, 2 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


def is_competitive(tournament: Tournament) -> bool:
    """Whether wins are what counts (the game declares it): e.g. a constant-sum matrix game,
    where Elo is shown; for a non-zero-sum dilemma like the prisoner's dilemma it is stored
    but not shown, since beating the partner is not the point."""
    return game_capabilities(tournament).competitive


def summary_line(results: TournamentResults) -> str:
    """What was played, in one line: entrants, matches, repetitions, rounds, seats, seed."""
    spec = results.tournament.spec
    rounds = results.tournament.rounds
    rounds_text = f"{rounds} rounds" if isinstance(rounds, int) else f"continuation {rounds.continuation} (max {rounds.max})"
    seats = "seats swapped" if swaps_seats(results.tournament) else "fixed seats"
    repetitions = f"{spec.repetitions} repetition{'s' if spec.repetitions != 1 else ''}"
    return f"{spec.name}: {len(results.names)} entrants, {results.matches} matches ({repetitions}, {rounds_text}, {seats}), seed {spec.seed}"


def legend(results: TournamentResults) -> str:
    """What the table's columns mean."""
    spec = results.tournament.spec
    text = (
        "score: mean total payoff per match, with a percentile bootstrap interval over matches "
        f"(self-play counted once per {'match' if spec.ratings.self_play == 'match' else 'seat'}); "
        f"kept: share of {spec.ratings.bootstrap} resamples in which the entrant keeps its rank; "
        "/round: mean payoff per round; W/D/L: matches won (alone on top), drawn (shared top), lost"
    )
    if is_competitive(results.tournament):
        text += f"; Elo: ratings after every match in schedule order (k={spec.ratings.elo_k:g})"
    if results.ecology is not None:
        text += f"; share: population share after {len(results.ecology) - 1} steps of the ecological dynamics"
    return text


def ranking_table(results: TournamentResults) -> Table:
    """Rank, entrant name, mean score per match with its bootstrap interval, rank stability,
    score per round, win/draw/loss, Elo (competitive games) and, for an ecological tournament, the final
    population share."""
    spec = results.tournament.spec
    confidence = round(spec.ratings.confidence * 100)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    show_elo = is_competitive(results.tournament)
    for header in ("#", "entrant", f"score [{confidence}% CI]", "kept", "/round", "W/D/L") + (("Elo",) if show_elo else ()):
        table.add_column(header, justify="left" if header == "entrant" else "right", no_wrap=True)
    final = results.ecology[-1] if results.ecology is not None else None
    if final is not None:
        table.add_column("share", justify="right", no_wrap=True)
    for rating in results.ratings:
        entrant = spec.entrants[rating.entrant]
        row = [
            str(rating.rank),
            entrant.name,
            f"{_number(rating.mean)} [{_number(rating.low)}, {_number(rating.high)}]",
            "-" if math.isnan(rating.rank_stability) else f"{rating.rank_stability:.0%}",
            _number(rating.per_round),
            f"{rating.wins}/{rating.draws}/{rating.losses}",
        ] + ([f"{rating.elo:.0f}"] if show_elo else [])
        if final is not None:
            row.append(f"{final[rating.entrant]:.3f}")
        table.add_row(*row)
    return table
