"""Fuzz every built-in scenario and tournament file with a long budget and print figures.

    python benchmarks/fuzz_scenarios.py --cases 5000

Runs the mutations of tests/fuzz.py (drop, duplicate, retype, rename, nest; huge, negative,
NaN and infinite numbers; long and odd strings) through the library's validate path, and
plays one episode of each small valid scripted mutant. Any mutant that ends in anything
but a valid scenario or a clean one-line error, or goes over the time or memory bound,
stops the run with Hypothesis's shrunk example. Prints: cases tried, clean errors, valid
files, episodes played, wall time, the slowest case and the peak traced memory of one case
and of the whole process. (The same check runs in the test suite with a small budget;
`MAS_FUZZ_EXAMPLES=5000 pytest tests/test_fuzz_scenarios.py` runs the long one there.)
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hypothesis import HealthCheck, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests import fuzz  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=5000, help="mutants in all (split evenly over the files)")
    parser.add_argument("--seed", type=int, default=0, help="Hypothesis seed (fixed for reproducibility)")
    args = parser.parse_args()

    files = [(p, False, False) for p in fuzz.SCENARIO_FILES]
    files += [(p, True, inline) for p in fuzz.TOURNAMENT_FILES for inline in (False, True)]
    per_file = max(1, args.cases // len(files))
    counts: Counter[str] = Counter()
    slowest = (0.0, "")
    peak_case = 0
    start = time.perf_counter()
    for path, tournament, inline in files:
        base = fuzz.load_base(path, inline=inline)

        @settings(
            max_examples=per_file, deadline=None, database=None, derandomize=False,
            suppress_health_check=list(HealthCheck),
        )
        @given(data=st.data())
        def run(data: st.DataObject) -> None:
            nonlocal slowest, peak_case
            mutant = data.draw(fuzz.mutant(base))
            with tempfile.TemporaryDirectory() as tmp:
                file = Path(tmp) / "mutant.yaml"
                file.write_text(fuzz.dump(mutant), encoding="utf-8")
                outcome = fuzz.check(file, tournament=tournament, play_dir=Path(tmp) / "run")
            counts["cases"] += 1
            counts["clean errors" if outcome.error else "valid"] += 1
            counts["episodes played"] += outcome.played
            if outcome.seconds > slowest[0]:
                slowest = (outcome.seconds, f"{path.name}")
            peak_case = max(peak_case, outcome.peak_bytes)

        seed(args.seed)(run)()
        print(f"  {path.name}{' (inline)' if inline else ''}: {counts['cases']} cases so far", flush=True)
    wall = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"cases tried:        {counts['cases']}")
    print(f"clean errors:       {counts['clean errors']}")
    print(f"valid files:        {counts['valid']} ({counts['episodes played']} played for one episode)")
    print(f"wall time:          {wall:.1f} s ({1000 * wall / max(counts['cases'], 1):.1f} ms a case)")
    print(f"slowest case:       {slowest[0] * 1000:.0f} ms ({slowest[1]})")
    print(f"peak memory:        {peak_case / 2**20:.1f} MiB traced in one case; {rss:.0f} MiB process RSS")


if __name__ == "__main__":
    main()
