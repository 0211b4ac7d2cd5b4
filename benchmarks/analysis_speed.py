"""How long analysis takes compared with playing the run it analyses.

Plays the commons scenario (8 agents, 50 rounds) for a number of episodes, then times
loading the store, the metric summary, the standard figures (PNG + SVG) and the HTML
report, and prints each as seconds and as a ratio to the time the run took to play.

    python benchmarks/analysis_speed.py [--episodes 100] [--scenario commons]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import mas
from mas.analysis.figures import write_figures
from mas.analysis.load import load_run
from mas.analysis.report import write_report
from mas.analysis.summary import summarize
from mas.runner import run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--scenario", default="commons")
    args = parser.parse_args()
    scenario = mas.load_scenario(args.scenario)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        start = time.perf_counter()
        run(scenario, episodes=args.episodes, seed=0, out_dir=out)
        play = time.perf_counter() - start
        timings = {}
        start = time.perf_counter()
        loaded = load_run(out)
        timings["load_run"] = time.perf_counter() - start
        start = time.perf_counter()
        summarize(loaded)
        timings["summarize"] = time.perf_counter() - start
        start = time.perf_counter()
        files = write_figures([loaded], Path(tmp) / "figures")
        timings[f"figures ({len(files)} files)"] = time.perf_counter() - start
        start = time.perf_counter()
        report = write_report(loaded, Path(tmp) / "report.html")
        timings["report (20 episodes shown)"] = time.perf_counter() - start
        size = report.stat().st_size
    rows = len(loaded.steps)
    print(f"{args.scenario}: {args.episodes} episodes, {rows} step rows, {len(loaded.messages)} message rows")
    print(f"  play (mas run)               {play:7.2f} s   1.00x")
    for name, seconds in timings.items():
        print(f"  {name:<28} {seconds:7.2f} s   {seconds / play:5.2f}x of play   {1e6 * seconds / max(rows, 1):7.1f} us/step row")
    print(f"  report size {size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
