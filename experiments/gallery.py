"""What every experiment of the gallery shares: its command line, training one seed through
`mas.training.run.train`, running seeds on workers, intervals across seeds, and writing the
results table (Markdown + CSV) and the figure next to it.

Each experiment folder holds its scenario files and a `run.py` with `main(argv) -> dict`:
`--quick` runs a small budget (the test suite's), the default the full one; the results
go to `--out` (default: the experiment's folder for the full budget, `<folder>/quick/` for
`--quick`, which git ignores).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:  # run as `python experiments/x/run.py` from anywhere
    sys.path.insert(0, str(REPO))


def parse(argv: Sequence[str] | None, description: str, seeds: int, quick_seeds: int, folder: Path,
          extra: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    """The options every experiment takes (and those `extra` adds); `args.out` is resolved to a folder."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="small budget (seconds; what the test suite runs)")
    parser.add_argument("--seeds", type=int, default=None, help=f"seeds per setting (default {seeds}; {quick_seeds} with --quick)")
    parser.add_argument("--workers", type=int, default=1, help="processes running seeds in parallel (default 1)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu: these learners are small)")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default: the experiment folder; <folder>/quick with --quick)")
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    if args.seeds is None:
        args.seeds = quick_seeds if args.quick else seeds
    if args.seeds < 1 or args.workers < 1:
        parser.error("--seeds and --workers must be at least 1")
    args.out = Path(args.out) if args.out else (folder / "quick" if args.quick else folder)
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def scenario(path: Path, **fields: Any) -> Any:
    """A scenario file of the experiment, with `--set`-style field overrides."""
    from mas.overrides import load_with_sets

    return load_with_sets(path, [f"{k}={v}" for k, v in fields.items()])


def train_seed(path: Path, algo: str, steps: int, seed: int, device: str = "cpu", overrides: dict[str, Any] | None = None,
               final_episodes: int = 0, read: Callable[[Path, Any], Any] | None = None, **fields: Any) -> Any:
    """Train the learners of the scenario at `path` for one seed in a temporary run
    directory and return `read(run_dir, result)` (default: the final greedy evaluation)."""
    from mas.training.run import train

    with tempfile.TemporaryDirectory(prefix="mas-exp-") as tmp:
        result = train(scenario(path, **fields), algo, steps, seed, Path(tmp) / "run", device=device, eval_every=steps,
                       eval_episodes=8, final_episodes=final_episodes, overrides=overrides, tensorboard=False)
        return read(result.out_dir, result) if read else dict(result.final_eval)


def run_seeds(fn: Callable[..., Any], jobs: Iterable[dict[str, Any]], workers: int = 1) -> list[Any]:
    """`fn(**job)` for every job, in order; on `workers` processes when more than one."""
    jobs = list(jobs)
    if workers <= 1 or len(jobs) <= 1:
        return [fn(**job) for job in jobs]
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        return list(pool.map(_call, [(fn, job) for job in jobs]))


def run_settings(fn: Callable[..., Any], settings: dict[str, dict[str, Any]], seeds: int, workers: int = 1) -> dict[str, list[Any]]:
    """`fn(**job, seed=s)` for every setting (label -> job) and seed 0..seeds-1: label -> per-seed results."""
    values = run_seeds(fn, [dict(job, seed=s) for job in settings.values() for s in range(seeds)], workers)
    return {label: values[i * seeds:(i + 1) * seeds] for i, label in enumerate(settings)}


def _call(item: tuple[Callable[..., Any], dict[str, Any]]) -> Any:
    fn, job = item
    return fn(**job)


# ----- intervals -------------------------------------------------------------------------
def share_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float, float]:
    """A share k/n with its 95% Wilson interval (sound at 0/n and n/n, unlike mean +- t*sd)."""
    if n <= 0:
        return math.nan, math.nan, math.nan
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return p, max(0.0, centre - half), min(1.0, centre + half)


def mean_interval(values: Sequence[float], low: float = -math.inf, high: float = math.inf) -> tuple[float, float, float]:
    """Mean over seeds with its 95% Student-t interval, clipped to [low, high] (the range
    the quantity can take: a t-interval over few seeds can reach past it)."""
    from mas.analysis.metrics import mean_ci

    ci = mean_ci(list(values))
    return ci.mean, max(low, ci.low), min(high, ci.high)


def fmt(value: tuple[float, float, float] | float, digits: int = 2) -> str:
    """`mean [low, high]` (or a plain number)."""
    if isinstance(value, tuple):
        mean, low, high = value
        return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"
    return f"{value:.{digits}f}"


# ----- outputs ---------------------------------------------------------------------------
def write_results(out: Path, title: str, rows: list[dict[str, Any]], notes: str = "", data: dict[str, Any] | None = None) -> Path:
    """`results.md` (a Markdown table under `title`, then `notes`), `results.csv` and,
    when given, `results.json` with the raw per-seed data."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    frame.to_csv(out / "results.csv", index=False)
    cols = list(frame.columns)
    lines = [f"# {title}", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    if notes:
        lines += ["", notes.strip()]
    if os.path.exists(out / "figure.png"):
        lines += ["", "![figure](figure.png)"]
    (out / "results.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if data is not None:
        (out / "results.json").write_text(json.dumps(data, indent=1, default=float), encoding="utf-8")
    return out / "results.md"


def figure(ncols: int = 1, width: float = 6.4, height: float = 4.0) -> tuple[Any, list[Any]]:
    """A matplotlib Figure (no pyplot state) with `ncols` axes side by side."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    return fig, [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]


def save(fig: Any, out: Path) -> Path:
    fig.savefig(out / "figure.png", dpi=110)
    return out / "figure.png"
