"""The "yes share" metric: the fraction of action steps in which an agent played action 0."""

from __future__ import annotations


def yes_share(run) -> float | None:  # noqa: ANN001 (a mas.analysis.load.Run)
    steps = run.steps
    return float((steps["action"] == 0).mean()) if len(steps) else None
