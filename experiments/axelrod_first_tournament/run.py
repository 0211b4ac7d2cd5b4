"""Axelrod's first tournament (1980): the 15 original entrants, 200 rounds, 5 repetitions.

The entrants are the `axelrod` library's implementations of the 1980 programs (its
`axelrod_first_strategies`), entered through mas's `axelrod` extra
(`policy: {type: axelrod, ...}`) and played by `mas tournament` (engine, store, ratings):
not mas's own scripted strategies, and not the original Fortran. The tournament is run
once per seed; a seed's result is every entrant's rank by mean score per match (a
self-play match counted once, as in 1980 and in the library). Next to it: the same
tournament played by the library alone (`axelrod.Tournament`, same seeds), and the 1980
result (Axelrod 1980, "Effective choice in the prisoner's dilemma": Tit For Tat first with
504 points per match on average).

    python experiments/axelrod_first_tournament/run.py [--quick] [--seeds 32] [--workers 2]
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import gallery as g  # noqa: E402

FOLDER = Path(__file__).resolve().parent
TOURNAMENT = FOLDER / "first_tournament.yaml"
#: the 1980 ranking (Axelrod 1980, table 2), by the library's names, with TFT's 504 points
REFERENCE_1980 = ["Tit For Tat", "First by Tideman and Chieruzzi", "First by Nydegger", "First by Grofman",
                  "First by Shubik", "First by Stein and Rapoport", "Grudger", "First by Davis", "First by Graaskamp",
                  "First by Downing", "First by Feld", "First by Joss", "First by Tullock", "First by Anonymous", "Random"]
TFT_1980 = 504.0


def _strategies(data: dict[str, Any]) -> list[str]:
    return [e["policy"]["strategy"] for e in data["entrants"]]


def mas_seed(seed: int, repetitions: int) -> dict[str, Any]:
    """One tournament through mas: strategy -> (rank, mean score per match)."""
    from mas.tournament.run import run_tournament
    from mas.tournament.spec import parse_tournament

    data = yaml.safe_load(TOURNAMENT.read_text(encoding="utf-8"))
    data.update(seed=seed, repetitions=repetitions)
    tournament = parse_tournament(data, str(TOURNAMENT), base_dir=FOLDER)
    with tempfile.TemporaryDirectory() as tmp:
        results = run_tournament(tournament, Path(tmp) / "t", backend="serial")
    names = _strategies(data)
    return {names[r.entrant]: (r.rank, r.mean) for r in results.ratings}


def library_seed(seed: int, repetitions: int) -> dict[str, Any]:
    """The same tournament played by the axelrod library alone: strategy -> (rank, mean per match)."""
    import axelrod as axl

    players = [cls() for cls in axl.axelrod_first_strategies]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = axl.Tournament(players, turns=200, repetitions=repetitions, seed=seed).play(progress_bar=False)
    # match scores: the library's payoff matrix holds the mean per turn of each pairing, self-play included
    per_match = np.asarray(result.payoff_matrix).mean(axis=1) * 200
    return {players[i].name: (rank + 1, float(per_match[i])) for rank, i in enumerate(result.ranking)}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = g.parse(argv, __doc__.splitlines()[0], seeds=32, quick_seeds=2, folder=FOLDER)
    repetitions = 1 if args.quick else 5
    jobs = [dict(seed=s, repetitions=repetitions) for s in range(args.seeds)]
    mas_runs = g.run_seeds(mas_seed, jobs, args.workers)
    library_runs = g.run_seeds(library_seed, jobs, args.workers)
    names = REFERENCE_1980
    rows = []
    for name in names:
        ranks = [run[name][0] for run in mas_runs]
        lib_ranks = [run[name][0] for run in library_runs]
        rows.append({
            "entrant (axelrod library)": name, "1980 rank": names.index(name) + 1,
            "mas: mean rank [95% CI]": g.fmt(g.mean_interval(ranks, 1, 15), 1),
            "mas: first in": f"{sum(r == 1 for r in ranks)}/{len(ranks)}",
            "mas: score per match": g.fmt(g.mean_interval([run[name][1] for run in mas_runs]), 0),
            "library alone: mean rank": g.fmt(float(np.mean(lib_ranks)), 1),
            "library alone: first in": f"{sum(r == 1 for r in lib_ranks)}/{len(lib_ranks)}",
        })
    data = {"repetitions": repetitions, "seeds": args.seeds,
            "mas": [{k: list(v) for k, v in run.items()} for run in mas_runs],
            "library": [{k: list(v) for k, v in run.items()} for run in library_runs]}
    _figure(mas_runs, library_runs, args.out)
    g.write_results(args.out, f"Axelrod's first tournament: ranks over {args.seeds} seeds ({repetitions} repetitions)",
                    rows, notes=NOTES, data=data)
    return {"mas": mas_runs, "library": library_runs, "repetitions": repetitions}


NOTES = f"""The entrants are the axelrod library's implementations of the 1980 programs, entered through mas's
`axelrod` extra; mas plays them (engine, store, ratings). 1980 reference: Tit For Tat first with
{TFT_1980:.0f} points per match on average (Axelrod 1980). Ranks: by mean score per match, a self-play
match counted once. Deterministic matches score exactly as in the library (tests/test_axelrod_policy.py);
stochastic entrants draw from mas's seeds, so seed-by-seed ranks differ from the library's while their
distributions agree."""


def _figure(mas_runs: list[dict[str, Any]], library_runs: list[dict[str, Any]], out: Path) -> None:
    fig, (ax,) = g.figure(width=8.0, height=4.2)
    x = np.arange(len(REFERENCE_1980))
    for runs, shift, color, label in ((mas_runs, -0.15, "#0072B2", "mas"), (library_runs, 0.15, "#009E73", "axelrod library alone")):
        ranks = np.array([[run[n][0] for n in REFERENCE_1980] for run in runs])
        ax.scatter(np.repeat(x[None, :] + shift, len(runs), axis=0).ravel(), ranks.ravel(), s=10, alpha=0.4, color=color)
        ax.plot(x + shift, ranks.mean(axis=0), "_", ms=14, mew=2, color=color, label=f"{label} (mean rank)")
    ax.plot(x, x + 1, "x", color="#E69F00", label="1980 rank")
    ax.set_xticks(x, [n.replace("First by ", "") for n in REFERENCE_1980], rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("rank (1 = best)")
    ax.invert_yaxis()
    ax.legend(fontsize=7, loc="lower left")
    g.save(fig, out)


if __name__ == "__main__":
    result = main()
    print({name: float(np.mean([run[name][0] for run in result["mas"]])) for name in REFERENCE_1980})
