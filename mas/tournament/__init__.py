"""Tournaments: round-robin and ecological tournaments of any registered policies.

A tournament file (`scenarios/tournaments/*.yaml`) names a base scenario, a roster of
entrants, the format, repetitions, rounds per match and a seed. Matches run in worker
processes (or on Ray), each committed to `tournament.sqlite` as it finishes, so a killed
tournament resumes without losing or repeating a match. Modules:

- `spec`: the file format and its validation.
- `schedule`: who plays whom, seat swaps, balanced groups, per-match seeds.
- `play`: one match through `mas.runner.play_episode`.
- `executors`: serial, process pool and Ray.
- `shared_models`: LLM entrants in workers share one model server.
- `store`: the SQLite schema (versioned).
- `ratings`: bootstrap intervals, rank stability, win/draw/loss, Elo, payoff matrix.
- `ecology`: replicator dynamics and the Moran process.
- `run`: the orchestration (`run_tournament`, `resume_tournament`).
- `report`: the ranking table as text.

Analysis reads a stored tournament with `mas.analysis.tournament_load.load_tournament_run`.
"""

from __future__ import annotations

from mas.tournament.run import TournamentResults, resume_tournament, run_tournament
from mas.tournament.spec import Tournament, TournamentError, load_tournament, parse_tournament

__all__ = ["Tournament", "TournamentError", "TournamentResults", "load_tournament", "parse_tournament", "resume_tournament", "run_tournament"]
