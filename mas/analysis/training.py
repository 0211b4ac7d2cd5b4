"""Training curves of `mas train` runs, read from what the trainer leaves in its run
directory. This module is the contract between trainers and analysis.

The contract (CSV, preferred; `mas train` writes it as `curves.csv`): a file named one of
`CURVE_FILES` in the run directory or in its direct sub-directories, with a header row and
one row per logging point:

    step                    required; environment steps so far (increasing)
    seed                    optional; the master seed of the training run
    episode_return_mean     mean episode return over the learners (the reward curve);
                            derived from return/<agent> columns when absent
    cooperation_rate        optional; mean cooperation in the logging window
    eval_return/<agent>     optional; greedy evaluation returns, averaged into
                            eval_return_mean (likewise eval_cooperation/<agent> into
                            eval_cooperation_mean)
    <anything else>         any numeric column (losses, epsilon, entropy, ...)

Each file is one training curve (`curve` column, numbered in file order). Bands "over
seeds" are taken across the curves of one directory, so put the seeds of one experiment in
sub-directories of one directory (`mas train ... --seed 1 --out runs/exp/s1`, `--seed 2
--out runs/exp/s2`) and analyse `runs/exp`.

TensorBoard event files (`events.out.tfevents.*`) are read when no CSV is present (with the
`tensorboard` package): every scalar tag becomes a column and `step` is the event step.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from mas.errors import StoreError
from mas.analysis.metrics import mean_ci

CURVE_FILES = ("curves.csv", "training.csv", "progress.csv", "train.csv")
RETURN_COLUMNS = ("episode_return_mean", "return_mean", "episode_return", "charts/episodic_return", "return")
COOPERATION_COLUMNS = ("cooperation_rate", "cooperation")
EVAL_RETURN_COLUMNS = ("eval_return_mean",)
EVAL_COOPERATION_COLUMNS = ("eval_cooperation_mean",)
#: llm-ppo / llm-mappo write `kl` (to the frozen base model) and `entropy` per update
KL_COLUMNS = ("kl", "approx_kl")
ENTROPY_COLUMNS = ("entropy",)


def curve_files(run_dir: Path) -> list[Path]:
    """CSV curve files in `run_dir` and its direct sub-directories, in sorted order."""
    found = []
    for directory in [run_dir, *sorted(p for p in run_dir.iterdir() if p.is_dir())] if run_dir.is_dir() else []:
        found += [directory / name for name in CURVE_FILES if (directory / name).is_file()]
    return found


def event_files(run_dir: Path) -> list[Path]:
    """TensorBoard event files anywhere under `run_dir` (sorted)."""
    return sorted(run_dir.rglob("events.out.tfevents.*")) if run_dir.is_dir() else []


def has_training(run_dir: Path) -> bool:
    """Whether `run_dir` holds training curves this module can read."""
    return bool(curve_files(run_dir) or event_files(run_dir))


def read_curves(run_dir: Path) -> pd.DataFrame:
    """All training curves of a run directory as one long table with a `seed` column.

    Raises StoreError naming the file when a curve file is unreadable or has no `step`.
    Returns an empty DataFrame when the directory holds no curves.
    """
    run_dir = Path(run_dir)
    frames = []
    for number, path in enumerate(curve_files(run_dir)):
        try:
            frame = pd.read_csv(path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise StoreError(f"{path}: not a readable training-curve CSV ({str(exc).splitlines()[0]})") from None
        if "step" not in frame.columns:
            raise StoreError(f"{path}: training-curve CSV has no 'step' column (found: {', '.join(map(str, frame.columns))})")
        frames.append(frame.assign(curve=number))
    if not frames and event_files(run_dir):
        frames = [_read_events(path).assign(curve=number) for number, path in enumerate(event_files(run_dir))]
    if not frames:
        return pd.DataFrame()
    curves = pd.concat([_with_means(f) for f in frames], ignore_index=True)
    curves["step"] = pd.to_numeric(curves["step"], errors="coerce")
    if "seed" not in curves.columns:
        curves["seed"] = curves["curve"]
    return curves.dropna(subset=["step"]).sort_values(["curve", "step"]).reset_index(drop=True)


def _with_means(frame: pd.DataFrame) -> pd.DataFrame:
    """Add the mean-over-agents columns the contract derives from per-agent columns."""
    for target, prefix in (("episode_return_mean", "return/"), ("eval_return_mean", "eval_return/"),
                           ("eval_cooperation_mean", "eval_cooperation/")):
        columns = [c for c in frame.columns if str(c).startswith(prefix)]
        if target not in frame.columns and columns:
            frame[target] = frame[columns].apply(pd.to_numeric, errors="coerce").mean(axis=1, skipna=False)
    return frame


def _read_events(path: Path) -> pd.DataFrame:
    """Scalars of one TensorBoard event file as a wide table (step, one column per tag)."""
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:
        raise StoreError(f"{path}: reading TensorBoard logs needs the 'tensorboard' package (pip install tensorboard)") from None
    accumulator = EventAccumulator(str(path), size_guidance={"scalars": 0})
    try:
        accumulator.Reload()
    except Exception as exc:  # tensorboard raises several kinds for a damaged file
        raise StoreError(f"{path}: not a readable TensorBoard event file ({exc.__class__.__name__})") from None
    series = {
        tag: pd.Series({e.step: e.value for e in accumulator.Scalars(tag)}, name=tag)
        for tag in accumulator.Tags().get("scalars", [])
    }
    if not series:
        return pd.DataFrame(columns=["step"])
    wide = pd.concat(series.values(), axis=1).sort_index()
    wide.index.name = "step"
    return wide.reset_index()


def pick_column(curves: pd.DataFrame, candidates: tuple[str, ...]) -> str | None:
    """The first of `candidates` present in `curves` with at least one number."""
    for name in candidates:
        if name in curves.columns and pd.to_numeric(curves[name], errors="coerce").notna().any():
            return name
    return None


def band(curves: pd.DataFrame, metric: str, confidence: float = 0.95, points: int = 200) -> pd.DataFrame:
    """Mean of `metric` across curves (seeds) at each step with a Student-t band (columns
    step, mean, low, high, n).

    When all curves logged at the same steps, those steps are used; otherwise every curve
    is interpolated linearly onto `points` evenly spaced steps over the range all cover.
    """
    frame = curves[["curve", "step", metric]].copy()
    frame[metric] = pd.to_numeric(frame[metric], errors="coerce")
    frame = frame.dropna()
    if frame.empty:
        return pd.DataFrame(columns=["step", "mean", "low", "high", "n"])
    per_seed = {curve: group.groupby("step")[metric].mean() for curve, group in frame.groupby("curve")}
    step_sets = [tuple(s.index) for s in per_seed.values()]
    if len(set(step_sets)) == 1:
        grid = np.asarray(step_sets[0], dtype=float)
        values = np.vstack([s.to_numpy(dtype=float) for s in per_seed.values()])
    else:
        start = max(s.index.min() for s in per_seed.values())
        stop = min(s.index.max() for s in per_seed.values())
        if stop < start:
            raise StoreError(f"training curves of '{metric}': the seeds' step ranges do not overlap")
        grid = np.linspace(start, stop, points)
        values = np.vstack([np.interp(grid, s.index.to_numpy(dtype=float), s.to_numpy(dtype=float)) for s in per_seed.values()])
    rows = []
    for step, column in zip(grid, values.T):
        ci = mean_ci(column.tolist(), confidence)
        rows.append({"step": step, "mean": ci.mean, "low": ci.low, "high": ci.high, "n": ci.n})
    return pd.DataFrame(rows)


def final_value(curves: pd.DataFrame, metric: str) -> float:
    """Mean over curves (seeds) of each curve's last logged value of `metric` (NaN if none)."""
    frame = curves[["curve", "step", metric]].copy()
    frame[metric] = pd.to_numeric(frame[metric], errors="coerce")
    last = frame.dropna().sort_values("step").groupby("curve")[metric].last()
    return float(last.mean()) if len(last) else math.nan
