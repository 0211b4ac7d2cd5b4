"""Matches per second of the classic iterated-PD tournament: mas with 1 and 2 workers next
to the `axelrod` library's tournament on the same twelve strategies and settings (200
rounds, T=5 R=3 P=1 S=0, self-play, the same repetitions), in one run.

    .venv/bin/pip install axelrod torch==2.13.0   # benchmark only; axelrod depends on torch: keep the pin
    .venv/bin/python benchmarks/tournament_speed.py [--repetitions 5] [--scale 10]
    .venv/bin/python benchmarks/tournament_speed.py --workers-scaling [--scale 10] [--trials 3] [--repetitions 5]
    .venv/bin/python benchmarks/tournament_speed.py --entrants 200 [--repetitions 1]
    .venv/bin/python benchmarks/tournament_speed.py --llm 4 [--repetitions 1]

The scripted roster plays every match as a copy of one engine (`mas.tournament.batch`).
With `--scale K` it also times a roster K times the classic one (each strategy K times,
the random ones with varied parameters; the classic tournament's settings, its 5
repetitions included, or `--repetitions`) on 1 and 2 worker processes: 10x is 36,300
matches.
`--workers-scaling` times only that, 1 and 2 workers alternately `--trials` times (the
forkserver started beforehand, so both pay the same fixed costs), with each run's CPU
time: this process's and the whole machine's (/proc/stat; more than the two runs use
means other work shared the cores). `--entrants N` plays N entrants (`wide_roster`) and
prints matches/s and the peak memory (the tournament in a child process; neither axelrod
nor torch needed for these two modes). `--llm N` plays N LLM entrants (the embedded model,
score mode, each with its own persona) and tit for tat, 3 rounds, in this process: the
matches as one batch (every round one packed model call for all of them) and one match at
a time, side by side, with their actions compared.

Both sides are timed end to end: mas plays, commits every match to its SQLite store and
computes the ranking (1,000 bootstrap resamples, replicator dynamics); axelrod plays and
builds its result set. As a cross-check the script also compares the per-round scores
of every deterministic pair with axelrod's.
"""

from __future__ import annotations

import argparse
import copy
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mas.tournament import load_tournament, parse_tournament, run_tournament

CLASSIC = Path(__file__).resolve().parent.parent / "scenarios" / "tournaments" / "axelrod_classic.yaml"
DETERMINISTIC = {"tit_for_tat", "tit_for_two_tats", "grudger", "pavlov", "suspicious_tit_for_tat", "alternator",
                 "always_cooperate", "always_defect", "tester"}


def axelrod_players(axl):
    """The same roster in the axelrod library, in the order of axelrod_classic.yaml."""
    return {
        "tit_for_tat": axl.TitForTat(),
        "tit_for_two_tats": axl.TitFor2Tats(),
        "grudger": axl.Grudger(),
        "pavlov": axl.WinStayLoseShift(),
        "suspicious_tit_for_tat": axl.SuspiciousTitForTat(),
        "generous_tit_for_tat": axl.GTFT(p=1 / 3),
        "alternator": axl.Alternator(),
        "always_cooperate": axl.Cooperator(),
        "always_defect": axl.Defector(),
        "random": axl.Random(0.5),
        "joss": axl.FirstByJoss(0.9),
        "tester": axl.SecondByGladstein(),
    }


def scaled(tournament, times: int, repetitions: int = 1):
    """The classic roster `times` over: copies named name_k, stochastic ones varied."""
    data = copy.deepcopy(tournament.to_dict())
    entrants = []
    for k in range(times):
        for entrant in data["entrants"]:
            policy = dict(entrant["policy"])
            for key in ("generosity", "p", "sneakiness"):
                if key in policy:
                    policy[key] = round(min(0.95, policy[key] * (1 + 0.05 * k)), 4)
            entrants.append({**entrant, "name": f"{entrant['name']}_{k}", "policy": policy})
    data.update(entrants=entrants, repetitions=repetitions)
    return parse_tournament(data)


def time_mas(tournament, backend: str, workers: int) -> tuple[float, object]:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        results = run_tournament(tournament, Path(tmp) / "run", backend=backend, workers=workers)
        return time.perf_counter() - start, results


def wide_roster(n: int, repetitions: int = 1):
    """`n` entrants: the nine deterministic classic strategies, then generous tit for tat,
    random and joss with evenly spread generosity, p and sneakiness (round robin, 200
    rounds, self-play)."""
    data = copy.deepcopy(load_tournament(CLASSIC).to_dict())
    entrants = [e for e in data["entrants"] if e["name"] in DETERMINISTIC][:n]
    kinds = (("generous_tit_for_tat", "generosity"), ("random", "p"), ("joss", "sneakiness"))
    variants = n - len(entrants)
    for i in range(variants):
        kind, key = kinds[i % 3]
        value = round(0.02 + 0.96 * (i // 3) / max(1, (variants - 1) // 3), 4)
        entrants.append({"name": f"{kind}_{i // 3}", "policy": {"type": kind, key: value}})
    data.update(entrants=entrants, repetitions=repetitions, format="round_robin")
    return parse_tournament(data)


def cpu_busy() -> float:
    """CPU seconds spent by the whole machine so far (every core, every process)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # less idle and iowait


def timed_run(tournament, workers: int) -> dict[str, float]:
    """Wall, CPU and the phases of one run: `start` (until the schedule is built: the first
    progress call), `play` (from there until the last chunk is stored: its last progress
    call), `end` (the ranking and summary after that)."""
    marks: list[float] = []

    def progress(done: int, total: int) -> None:
        if not marks or done == total:
            marks.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as tmp:
        busy, cpu, start = cpu_busy(), time.process_time(), time.perf_counter()
        results = run_tournament(tournament, Path(tmp) / "run", backend="process", workers=workers, on_progress=progress)
        end = time.perf_counter()
        return {"wall": end - start, "cpu": time.process_time() - cpu, "machine": cpu_busy() - busy,
                "matches": results.matches, "start": marks[0] - start, "play": marks[-1] - marks[0], "end": end - marks[-1]}


def workers_scaling(scale: int, trials: int, repetitions: int = 1) -> None:
    data = copy.deepcopy(load_tournament(CLASSIC).to_dict())
    data.update(format="round_robin")
    big = scaled(parse_tournament(data), scale, repetitions)
    n = len(big.names)
    print(f"{scale}x the classic roster: {n} strategies, 200 rounds, self-play, {repetitions} repetition(s) "
          f"= {n * (n + 1) // 2 * repetitions} matches")
    print(f"{os.cpu_count()} CPUs, load average before: {os.getloadavg()[0]:.2f}")
    timed_run(scaled(parse_tournament(data), 1), 2)  # start the forkserver (imports mas once)
    runs: dict[int, list[dict[str, float]]] = {1: [], 2: []}
    for _ in range(trials):
        for workers in (1, 2):
            runs[workers].append(timed_run(big, workers))
    print(f"{'':<12}{'wall s':>8}{'matches/s':>11}{'parent CPU s':>14}{'machine CPU s':>15}   (median of {trials})")
    wall = {}
    for workers, rows in runs.items():
        wall[workers] = statistics.median(r["wall"] for r in rows)
        cpu = statistics.median(r["cpu"] for r in rows)
        machine = statistics.median(r["machine"] for r in rows)
        print(f"{workers} worker{'s' if workers > 1 else ' ':<5}{wall[workers]:>8.2f}{rows[0]['matches'] / wall[workers]:>11.0f}{cpu:>14.2f}{machine:>15.2f}")
    each = ", ".join(f"{a['wall'] / b['wall']:.2f}" for a, b in zip(runs[1], runs[2]))
    print(f"speed-up from 2 workers: {wall[1] / wall[2]:.2f}x (each trial: {each})")
    phases = {w: {k: statistics.median(r[k] for r in rows) for k in ("start", "play", "end")} for w, rows in runs.items()}
    print("phases, median s: " + "; ".join(f"{w} worker(s): schedule {p['start']:.3f}, play and store {p['play']:.3f}, "
                                           f"ranking {p['end']:.3f}" for w, p in phases.items())
          + f" -> play and store alone {phases[1]['play'] / phases[2]['play']:.2f}x")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    # CPU seconds do not depend on what else runs: the wall time of an idle machine is the
    # parent's CPU (schedule, store, ratings) plus the busiest worker's play
    parent = statistics.median(r["cpu"] for rows in runs.values() for r in rows)
    per_worker = slice_cpu(big)
    projected = {w: parent + max(cpu) for w, cpu in per_worker.items()}
    print(f"CPU-time model: parent {parent:.2f} s + play per worker "
          f"{' / '.join(f'{w}: ' + ', '.join(f'{c:.2f}' for c in cpu) for w, cpu in per_worker.items())} s "
          f"-> 2 workers {projected[1] / projected[2]:.2f}x one on an idle machine (worker start not counted)")


def slice_cpu(tournament) -> dict[int, list[float]]:
    """CPU seconds each worker spends playing its chunks (`chunk_sizes`), for 1 and 2 workers."""
    from mas.tournament.batch import max_copies
    from mas.tournament.executors import chunk_sizes
    from mas.tournament.play import MatchPlayer
    from mas.tournament.schedule import build_schedule

    player, schedule = MatchPlayer(tournament), build_schedule(tournament)
    out = {}
    for workers in (1, 2):
        cpu, start = [0.0] * workers, 0
        for i, size in enumerate(chunk_sizes(len(schedule), workers, max_copies(tournament))):
            before = time.process_time()
            player.play_many(schedule[start : start + size])
            cpu[i % workers] += time.process_time() - before
            start += size
        out[workers] = cpu
    return out


def entrants_scale(n: int, repetitions: int, workers: int) -> None:
    """Matches/s and peak memory of an n-entrant round robin, each size in a fresh process."""
    for reps in (repetitions, 4 * repetitions):
        out = subprocess.run([sys.executable, __file__, "--play-wide", str(n), "--repetitions", str(reps), "--workers", str(workers)],
                             check=True, capture_output=True, text=True).stdout.strip()
        print(out)


def play_wide(n: int, repetitions: int, workers: int) -> None:
    tournament = wide_roster(n, repetitions)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        results = run_tournament(tournament, Path(tmp) / "run", backend="serial" if workers == 0 else "process", workers=max(workers, 1))
        seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"{n} entrants x {repetitions} repetition(s) = {results.matches} matches, "
          f"{'in-process' if workers == 0 else f'{workers} worker(s)'}: {seconds:.2f} s, {results.matches / seconds:.0f} matches/s, "
          f"peak RSS of the tournament process {peak:.0f} MiB")


def llm_batches(n: int, repetitions: int) -> None:
    """LLM entrants' matches as one batch and one at a time, in this process (model loaded first)."""
    from mas.tournament.play import MatchPlayer
    from mas.tournament.schedule import build_schedule

    llm = {"type": "llm", "backend": {"kind": "local", "model": "default"}, "mode": "score", "choice": "argmax", "history_rounds": 2}
    personas = ["You value trust.", "You like to win.", "You are cautious.", "You forgive quickly.", "You hold grudges.", "You are curious."]
    data = copy.deepcopy(load_tournament(CLASSIC).to_dict())
    data.update(rounds=3, repetitions=repetitions, format="round_robin", entrants=[
        *({"name": f"llm_{i}", "policy": llm, "persona": personas[i % len(personas)]} for i in range(n)),
        {"name": "tit_for_tat", "policy": "tit_for_tat"}])
    tournament = parse_tournament(data)
    player, schedule = MatchPlayer(tournament), build_schedule(tournament)
    player.play(schedule[0])  # load the model
    start = time.process_time()
    batched = list(player.play_many(schedule))
    middle = time.process_time()
    alone = [player.play(match) for match in schedule]
    end = time.process_time()
    same = all((b.actions, b.scores) == (a.actions, a.scores) for b, a in zip(batched, alone))
    decisions = sum(len(r.decisions) for r in alone)
    print(f"{n} LLM entrants + tit for tat, 3 rounds, {len(schedule)} matches, {decisions} LLM decisions (CPU seconds, this process):")
    print(f"  one batch: {middle - start:.1f} s, {decisions / (middle - start):.2f} decisions/s")
    print(f"  one match at a time: {end - middle:.1f} s, {decisions / (end - middle):.2f} decisions/s")
    print(f"  -> {(end - middle) / (middle - start):.2f}x; actions and scores identical: {same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--scale", type=int, default=10, help="roster multiple for the workers' speed-up (0: skip)")
    parser.add_argument("--workers-scaling", action="store_true", help="only 1 vs 2 workers on the scaled roster")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--entrants", type=int, default=0, help="only: N entrants' matches/s and peak memory")
    parser.add_argument("--workers", type=int, default=0, help="with --entrants: worker processes (0: in-process)")
    parser.add_argument("--play-wide", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--llm", type=int, default=0, help="only: N LLM entrants' matches batched vs one at a time")
    args = parser.parse_args()
    if args.llm:
        return llm_batches(args.llm, 1 if args.repetitions == 5 else args.repetitions)
    if args.play_wide:
        return play_wide(args.play_wide, args.repetitions, args.workers)
    if args.entrants:
        return entrants_scale(args.entrants, 1 if args.repetitions == 5 else args.repetitions, args.workers)
    if args.workers_scaling:
        return workers_scaling(args.scale, args.trials, args.repetitions)
    try:
        import axelrod as axl
    except ModuleNotFoundError:
        raise SystemExit("needs the axelrod library: .venv/bin/pip install axelrod torch==2.13.0") from None

    data = copy.deepcopy(load_tournament(CLASSIC).to_dict())
    data.update(repetitions=args.repetitions, format="round_robin")
    tournament = parse_tournament(data)
    names = tournament.names
    matches = len(names) * (len(names) + 1) // 2 * args.repetitions
    print(f"classic roster: {len(names)} strategies, 200 rounds, self-play, {args.repetitions} repetitions = {matches} matches\n")

    rows = []
    time_mas(tournament, "process", 2)  # start the forkserver (it imports mas once): not timed, as neither side pays it twice
    for label, backend, workers in (("mas serial (in-process)", "serial", 1), ("mas 1 worker", "process", 1), ("mas 2 workers", "process", 2)):
        seconds, results = time_mas(tournament, backend, workers)
        assert results.matches == matches
        rows.append((label, seconds))
        mas_payoff = results.payoff
    roster = axelrod_players(axl)
    players = [roster[n] for n in names]
    axl_results = None
    for label, processes in (("axelrod serial", None), ("axelrod 2 processes", 2)):  # processes=1 would still fork a pool
        start = time.perf_counter()
        axl_results = axl.Tournament(players, turns=200, repetitions=args.repetitions, seed=1).play(progress_bar=False, processes=processes)
        rows.append((label, time.perf_counter() - start))

    rates = {label: matches / seconds for label, seconds in rows}
    print(f"{'':<26}{'seconds':>9}{'matches/s':>11}")
    for label, seconds in rows:
        print(f"{label:<26}{seconds:>9.2f}{rates[label]:>11.1f}")
    print(f"\nratio mas / axelrod, both in-process       : {rates['mas serial (in-process)'] / rates['axelrod serial']:.2f}")
    print(f"ratio mas 1 worker / axelrod serial        : {rates['mas 1 worker'] / rates['axelrod serial']:.2f}")
    print(f"ratio mas 2 workers / axelrod 2 processes  : {rates['mas 2 workers'] / rates['axelrod 2 processes']:.2f}")
    print(f"mas speed-up from 2 workers                : {rates['mas 2 workers'] / rates['mas 1 worker']:.2f}")

    # cross-check: per-round payoffs of deterministic pairs must agree exactly
    theirs = np.asarray(axl_results.payoff_matrix)  # mean payoff per turn, row against column
    ours = mas_payoff / 200
    pairs = [(i, j) for i, a in enumerate(names) for j, b in enumerate(names) if a in DETERMINISTIC and b in DETERMINISTIC]
    agree = sum(abs(ours[i, j] - theirs[i, j]) < 1e-9 for i, j in pairs)
    print(f"deterministic pairs with identical per-round payoffs in both libraries: {agree}/{len(pairs)}")

    if args.scale:
        big = scaled(tournament, args.scale, args.repetitions)
        n = len(big.names)
        print(f"\n{args.scale}x the roster: {n} strategies, 200 rounds, self-play, {args.repetitions} repetition(s) "
              f"= {n * (n + 1) // 2 * args.repetitions} matches")
        times = {}
        for label, backend, workers in (("mas serial (in-process)", "serial", 1), ("mas 1 worker", "process", 1), ("mas 2 workers", "process", 2)):
            times[label], results = time_mas(big, backend, workers)
            print(f"{label:<26}{times[label]:>9.2f}{results.matches / times[label]:>11.1f}")
        print(f"mas speed-up from 2 workers                : {times['mas 1 worker'] / times['mas 2 workers']:.2f}")


if __name__ == "__main__":
    main()
