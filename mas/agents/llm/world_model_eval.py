"""`mas worldmodel RUN_DIR`: score a model as world model over a stored run's decisions.

Every stored action decision that kept its prompt (LLM agents) is replayed: the prompt's
task line becomes each prediction question (`world_model.prediction_prompt`), the model
scores the labels, and the predictions are scored against the stored steps and states
(`world_model.score_predictions`). The scores replace the run's earlier rows of the same
source ("eval:<model>") in its `predictions` table; the run's own rows stay.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from mas.agents.llm.backend import ScoreRequest
from mas.agents.llm.world_model import distribution, prediction_prompt, questions, score_predictions
from mas.errors import MasError
from mas.records import PredictionRecord

#: the most decisions one evaluation replays (bounded time; use --limit for fewer)
MAX_DECISIONS = 100_000


def evaluate_run(run_dir: Path, backend_config: Any, predict: Sequence[str] = ("actions",), limit: int | None = None,
                 batch: int = 32) -> list[PredictionRecord]:
    """Score `backend_config`'s model as world model over the stored run; writes and returns the rows."""
    from mas import registry
    from mas.agents.llm.factory import get_backend
    from mas.rundir import locked
    from mas.runner import stored_run
    from mas.store import RunStore

    scenario, _, _ = stored_run(run_dir)
    game = registry.make_game(scenario.game, len(scenario.agents)).info()
    ids = scenario.agent_ids
    with RunStore.open(run_dir) as store:
        rows = store.query("SELECT episode, step, round, agent, record FROM decisions WHERE talking = 0 ORDER BY episode, step")
        steps = store.frame("steps")
        states = store.frame("states")
    cap = min(limit or MAX_DECISIONS, MAX_DECISIONS)
    made, pending = [], []
    for episode, step, game_round, agent, text in rows:
        record = json.loads(text)
        prompt = record.get("prompt")
        if not prompt or record.get("status") == "forced":
            continue
        if len(made) >= cap:
            break
        seat = ids.index(agent)
        predictions: dict[str, Any] = {}
        made.append((episode, step, game_round, agent, predictions))
        for target, question, labels in questions(game, seat, ids, {}, predict):
            pending.append((predictions, target, labels, ScoreRequest(prediction_prompt(prompt, question, labels), tuple(labels))))
    if not made:
        raise MasError(f"{run_dir}: no stored LLM action decisions with a prompt to replay")
    backend = get_backend(backend_config)  # loaded only when there is something to score
    for start in range(0, len(pending), batch):
        chunk = pending[start:start + batch]
        for (predictions, target, labels, request), reply in zip(chunk, backend.score([c[3] for c in chunk])):
            if not reply.problem(request.candidates):
                predictions[target] = {"labels": labels, "probs": distribution(reply.logprobs)}
    actions = {(int(r.episode), int(r.step), r.agent): int(r.action) for r in steps.itertuples()}
    rewards = {(int(r.episode), int(r.step), r.agent): float(r.reward) for r in steps.itertuples()}
    summaries = {(int(r.episode), int(r.step)): json.loads(r.summary) for r in states.itertuples()}
    source = f"eval:{backend.info.model}"
    records = score_predictions(made, game, ids, actions, rewards, summaries, source)
    with locked(Path(run_dir)), RunStore.open_for_update(Path(run_dir)) as writable:
        writable.replace_predictions(source, records)
    return records


def summarise(records: Sequence[PredictionRecord]) -> pd.DataFrame:
    """Accuracy and mean log-loss per source, agent and target (kind: an agent's action or the outcome)."""
    frame = pd.DataFrame([r.__dict__ for r in records])
    if frame.empty:
        return pd.DataFrame(columns=["source", "agent", "target", "predictions", "accuracy", "log_loss"])
    grouped = frame.groupby(["source", "agent", "target"])
    return grouped.agg(predictions=("correct", "size"), accuracy=("correct", "mean"), log_loss=("log_loss", "mean")).reset_index()
