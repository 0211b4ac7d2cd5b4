"""`curves.csv` of a training run (the contract `mas.analysis.training` reads) and the
step log that fills it.

Columns: step (environment steps), seed, wall_s, episodes (finished since the last row),
episode_return_mean (their mean return over learners) and return/<agent>, cooperation_rate
of the learners' actions (where the game defines cooperation), the algorithm's losses, and
at evaluation rows eval_return/<agent>, eval_cooperation/<agent>, and eval_success in the
signalling game. TensorBoard scalars go to `tb/` when the `tensorboard` package is installed.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


class CurveWriter:
    """`curves.csv` written row by row (flushed), plus TensorBoard scalars when available."""

    def __init__(self, out_dir: Path, columns: list[str], use_tensorboard: bool) -> None:
        self.path = out_dir / "curves.csv"
        self.columns = columns
        self._file = self.path.open("w", newline="", encoding="utf-8")
        self._csv = csv.DictWriter(self._file, fieldnames=columns, restval="", extrasaction="ignore")
        self._csv.writeheader()
        self._file.flush()
        self.tb = None
        if use_tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(log_dir=str(out_dir / "tb"))
            except ImportError:
                self.tb = None

    def write(self, row: dict[str, Any]) -> None:
        self._csv.writerow({k: _fmt(v) for k, v in row.items()})
        self._file.flush()
        if self.tb is not None:
            for key, value in row.items():
                if key not in ("step", "seed", "wall_s") and isinstance(value, (int, float)) and not math.isnan(value):
                    self.tb.add_scalar(key, value, int(row["step"]))

    def close(self) -> None:
        self._file.close()
        if self.tb is not None:
            try:
                self.tb.close()
            except OSError as exc:  # raised from TensorBoard's writer thread, without a file name
                raise OSError(exc.errno, exc.strerror, str(self.path.parent / "tb")) from exc


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return value


def has_cooperation(game: Any) -> bool:
    """Whether the game measures cooperation (probed on one fresh copy)."""
    state = game.reset(1, np.random.default_rng(0))
    return game.cooperation(state, np.zeros((1, game.n_agents), dtype=np.int64)) is not None


def curve_columns(metrics: Sequence[str], learners: Sequence[str], game: Any, success: bool = True) -> list[str]:
    """The header of `curves.csv` for a learner reporting `metrics` on `game`; `success`:
    whether its evaluation reports the signalling game's eval_success."""
    has_coop = has_cooperation(game)
    cols = ["step", "seed", "wall_s", "episodes", "episode_return_mean"] + [f"return/{a}" for a in learners]
    cols += ["cooperation_rate"] if has_coop else []
    cols += list(metrics)
    cols += [f"eval_return/{a}" for a in learners]
    if has_coop:
        cols += [f"eval_cooperation/{a}" for a in learners]
    if success and game.capabilities.success_measure:
        cols.append("eval_success")
    return cols


class StepLog:
    """Forwards to a vector env and keeps what the curves report from *every* step (MAPPO
    takes a whole rollout of steps per iteration): returns of finished episodes and the
    learners' cooperation."""

    def __init__(self, env: Any) -> None:
        self.env = env
        self._finished: list[np.ndarray] = []
        self._coop = [0.0, 0.0]  # sum, count

    def __getattr__(self, name: str) -> Any:  # num_envs, obs_dim, game, ... of the env
        return getattr(self.env, name)

    def step(self, actions: Any) -> Any:
        step = self.env.step(actions)
        if len(step.finished_returns):
            self._finished.append(step.finished_returns)
        if step.cooperation is not None:
            self._coop[0] += float(np.nansum(step.cooperation))
            self._coop[1] += float(np.sum(~np.isnan(step.cooperation)))
        return step

    def flush(self, names: Sequence[str]) -> dict[str, Any]:
        """The curve columns since the last flush, then start over."""
        finished = np.concatenate(self._finished) if self._finished else np.zeros((0, len(names)))
        row: dict[str, Any] = {"episodes": len(finished)}
        row["episode_return_mean"] = float(finished.mean()) if len(finished) else float("nan")
        for i, agent in enumerate(names):
            row[f"return/{agent}"] = float(finished[:, i].mean()) if len(finished) else float("nan")
        if self._coop[1] > 0:
            row["cooperation_rate"] = self._coop[0] / self._coop[1]
        self._finished, self._coop = [], [0.0, 0.0]
        return row
