"""The LLM as world model: predict what comes next before acting, and be scored on it.

With `world_model` on an LLM agent (`{type: llm, world_model: {predict: [actions, outcome]}}`,
or `world_model: true` for the opponents' actions alone), before each action the model
scores, by likelihood of a prediction prompt, the possible next actions of every other
agent ("What will bob play this round?") and, where the game offers a small discrete set,
the round's outcome: the game's own `GameInfo.outcomes` (the commons: the stock level after
the round) or, in a game with a stage payoff table, the agent's own payoff this round. The
prediction prompt is the action prompt with its last line (the task) replaced by the
question, so it knows exactly what the agent knows. The distributions go into the decision
record (`predictions`).

After the episode each prediction is scored against what happened (`score_predictions`):
the most likely label's accuracy and the log-loss -ln p(actual), one `PredictionRecord` per
prediction, stored in the `predictions` table. `mas worldmodel RUN_DIR` scores any stored
run's LLM decisions the same way with another model (`evaluate_run`).

With `plan: true` the agent does not score its own actions: it plays the legal action with
the best expected payoff under its own predictions of the others (independent across
agents), from `GameInfo.stage_payoffs` or the game's `round_payoff` (the commons' catch under
rationing), and records every action's expected payoff.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mas.games.base import GameInfo
from mas.records import PredictionRecord

#: the most joint actions of the others a planner enumerates (each a product of predictions)
MAX_JOINT = 100_000
#: probabilities below this count as this in log-loss (a finite loss for a "certain" miss)
MIN_PROBABILITY = 1e-12
OUTCOME = "outcome"


class WorldModelSpec(BaseModel):
    """What an LLM agent predicts before it acts, and whether it plans on it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    predict: list[Literal["actions", "outcome"]] = Field(
        default_factory=lambda: ["actions"], min_length=1,
        description="actions: every other agent's next action; outcome: the round's outcome (where the game has a small set).",
    )
    plan: bool = Field(False, description="Play the action with the best expected payoff under the predictions (needs actions).")

    @model_validator(mode="after")
    def _plan_needs_actions(self) -> "WorldModelSpec":
        if self.plan and "actions" not in self.predict:
            raise ValueError("plan: true needs 'actions' in predict (the plan weighs the others' predicted actions)")
        return self

    def check_game(self, game: GameInfo) -> None:
        """One-line errors when the game cannot give what is asked."""
        if "outcome" in self.predict and game.outcomes is None and game.stage_payoffs is None:
            raise ValueError("world_model.predict: this game has no small set of outcomes to predict; predict [actions]")
        if self.plan:
            if payoff_function(game) is None:
                raise ValueError("world_model.plan: this game's payoffs cannot be computed from its public rules")
            joint = game.num_actions ** (game.n_agents - 1)
            if joint > MAX_JOINT:
                raise ValueError(f"world_model.plan: {joint:,} joint actions of the others to weigh (at most {MAX_JOINT:,})")


def coerce(value: Any) -> Any:
    """`world_model: true` means the default spec, `false` none."""
    if value is True:
        return {}
    if value is False:
        return None
    return value


# ----- what is predicted ------------------------------------------------------------------
def payoff_labels(game: GameInfo, seat: int) -> list[str]:
    """The distinct payoffs of `seat` in the stage table, as labels (ascending)."""
    table = np.asarray(game.stage_payoffs, dtype=float)[..., seat]
    return [f"{v:g}" for v in sorted(set(table.ravel().tolist()))]


def questions(game: GameInfo, seat: int, agent_ids: Sequence[str], summary: Mapping[str, Any],
              predict: Sequence[str]) -> list[tuple[str, str, list[str]]]:
    """(target, question, labels) of every prediction `seat` makes: each other agent's action
    (labels in its action order), then the outcome."""
    out = []
    if "actions" in predict:
        for other, agent in enumerate(agent_ids):
            if other != seat:
                out.append((agent, f"Before you choose: what will {agent} play this round?",
                            game.action_labels(other, summary)))
    if "outcome" in predict:
        if game.outcomes is not None:
            out.append((OUTCOME, game.outcomes.question, list(game.outcomes.labels)))
        elif game.stage_payoffs is not None:
            out.append((OUTCOME, "Before you choose: what payoff will you get this round?", payoff_labels(game, seat)))
    return out


def prediction_prompt(prompt: Sequence[Mapping[str, str]], question: str, labels: Sequence[str]) -> tuple[dict[str, str], ...]:
    """The action prompt with its last line (the task) replaced by the question."""
    messages = [dict(m) for m in prompt]
    last = messages[-1]
    lines = last["content"].rstrip().split("\n")
    lines[-1] = f"{question} Reply with exactly one of: {', '.join(labels)}."
    last["content"] = "\n".join(lines)
    return tuple(messages)


def distribution(logprobs: Sequence[float]) -> list[float]:
    """Softmax of log-likelihoods (temperature 1)."""
    values = np.asarray(logprobs, dtype=float)
    weights = np.exp(values - values.max())
    return (weights / weights.sum()).tolist()


# ----- planning ---------------------------------------------------------------------------
def payoff_function(game: GameInfo) -> Any:
    """(summary, joint [K, N]) -> payoffs [K, N]: the game's `round_payoff`, else a lookup in
    its stage table; None when neither exists."""
    if game.round_payoff is not None:
        return game.round_payoff
    if game.stage_payoffs is None:
        return None
    table = np.asarray(game.stage_payoffs, dtype=float)
    return lambda summary, joint: table[tuple(joint.T)]


def expected_payoffs(game: GameInfo, seat: int, summary: Mapping[str, Any], options: Sequence[int],
                     predicted: Mapping[int, Sequence[float]]) -> list[float]:
    """`seat`'s expected payoff of each own action in `options`, the others playing
    independently by `predicted` (seat -> probability of each of its actions)."""
    payoff = payoff_function(game)
    others = [s for s in range(game.n_agents) if s != seat]
    choices = [[a for a, p in enumerate(predicted[s]) if p > 0] for s in others]
    combos = np.array(list(itertools.product(*choices)), dtype=np.int64).reshape(-1, len(others))
    weights = np.ones(len(combos))
    for column, s in enumerate(others):
        weights *= np.asarray(predicted[s], dtype=float)[combos[:, column]]
    out = []
    for action in options:
        joint = np.zeros((len(combos), game.n_agents), dtype=np.int64)
        joint[:, others] = combos
        joint[:, seat] = action
        out.append(float(weights @ np.asarray(payoff(summary, joint), dtype=float)[:, seat]))
    return out


# ----- scoring ----------------------------------------------------------------------------
def score(prediction: Mapping[str, Any], actual: str) -> tuple[str, float, bool, float]:
    """(predicted label, probability of `actual`, correct, log-loss) of one stored prediction
    ({"labels": [...], "probs": [...]}); an actual label it did not list has probability 0."""
    labels, probs = list(prediction["labels"]), [float(p) for p in prediction["probs"]]
    best = labels[int(np.argmax(probs))]
    p = probs[labels.index(actual)] if actual in labels else 0.0
    return best, p, best == actual, -math.log(max(p, MIN_PROBABILITY))


def actual_outcome(game: GameInfo, seat: int, reward: float | None, summary: Mapping[str, Any] | None) -> str | None:
    """The label of what happened: the game's outcome class of the summary after the round,
    else the agent's payoff (the nearest stage-table label)."""
    if game.outcomes is not None:
        return game.outcomes.classify(summary) if summary is not None else None
    if reward is None or game.stage_payoffs is None:
        return None
    labels = payoff_labels(game, seat)
    return min(labels, key=lambda label: abs(float(label) - reward))


def score_predictions(decisions: Sequence[tuple[int, int, int, str, Mapping[str, Any]]], game: GameInfo,
                      agent_ids: Sequence[str], actions: Mapping[tuple[int, int, str], int],
                      rewards: Mapping[tuple[int, int, str], float], summaries: Mapping[tuple[int, int], Mapping[str, Any]],
                      source: str = "live") -> list[PredictionRecord]:
    """Score stored predictions against what happened.

    Args:
        decisions: (episode, step, round, agent, predictions) of each action decision that predicted.
        actions, rewards: (episode, step, agent) -> the executed action index / the game's reward.
        summaries: (episode, step) -> the game's summary after that step.
    """
    seats = {a: s for s, a in enumerate(agent_ids)}
    out = []
    for episode, step, game_round, agent, predictions in decisions:
        for target, prediction in predictions.items():
            if target == OUTCOME:
                actual = actual_outcome(game, seats[agent], rewards.get((episode, step, agent)), summaries.get((episode, step)))
            else:
                index = actions.get((episode, step, target))
                labels = prediction["labels"]
                actual = labels[index] if index is not None and index < len(labels) else None
            if actual is None:
                continue
            best, p, correct, loss = score(prediction, actual)
            out.append(PredictionRecord(episode, step, game_round, agent, target, best, actual, p, correct, loss, source))
    return out


def episode_predictions(game: GameInfo, agent_ids: Sequence[str], decisions: Sequence[Any], steps: Sequence[Any],
                        states: Sequence[Any]) -> list[PredictionRecord]:
    """The scored live predictions of one played episode (typed `mas.records` of it)."""
    made = [(d.episode, d.step, d.round, d.agent, d.record["predictions"])
            for d in decisions if not d.talking and d.record.get("predictions")]
    if not made:
        return []
    actions = {(s.episode, s.step, s.agent): s.action for s in steps}
    rewards = {(s.episode, s.step, s.agent): s.reward for s in steps}
    summaries = {(s.episode, s.step): s.summary for s in states}
    return score_predictions(made, game, agent_ids, actions, rewards, summaries)
