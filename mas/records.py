"""Typed records: what playing produces and the store keeps, as frozen values.

The engine's steps become these records (`mas.runner`, tournament matches), the store
writes them by column name (each field is a column of the table of the same meaning),
and analysis reads the tables. Nothing passes positional tuples between modules.

- `StepRecord`: one agent's executed action in one action step.
- `mas.comms.Message`: one message, delivered or not (the messages table).
- `DecisionRecord`: how a policy decided (an LLM agent's prompt, reply, distribution);
  `status` is a closed set (`DecisionStatus`) that the LLM policy writes and the metrics read.
- `StateRecord`: the game's full summary after an action step (hidden parts included:
  the store is for analysis, never for agents).
- `PredictionRecord`: one world-model prediction scored against what happened
  (`mas.agents.llm.world_model`).
- `EpisodeRecord`: one episode's totals and all of the above, written in one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from mas.comms import Message


class DecisionStatus(str, Enum):
    """How a policy's action came about (the closed set of `DecisionRecord.status`).

    ok: the policy's own valid choice; retried: valid after a correction; forced: only
    one action was legal; fallback: the policy could not decide and a declared default
    was played (a fact to count, never a choice); replayed: read back from a recorded run.
    """

    OK = "ok"
    RETRIED = "retried"
    FORCED = "forced"
    FALLBACK = "fallback"
    REPLAYED = "replayed"

    @classmethod
    def of(cls, record: Mapping[str, Any] | None) -> "DecisionStatus | None":
        """The status a decision record declares (None: a record without one)."""
        value = (record or {}).get("status")
        return cls(value) if value is not None else None


#: statuses whose action was not the agent's own valid choice
NOT_CHOSEN = frozenset({DecisionStatus.FALLBACK})


@dataclass(frozen=True)
class StepRecord:
    """One agent's executed (legal) action in one action step."""

    episode: int
    step: int
    round: int
    agent: str
    action: int
    action_name: str
    illegal: bool
    reward: float
    cooperation: float | None
    reward_model: float | None = None  # the reward model's weighted component (`mas.reward_model`)


@dataclass(frozen=True)
class DecisionRecord:
    """How a policy decided for one agent at one step (talk or action)."""

    episode: int
    step: int
    round: int
    agent: str
    talking: bool
    status: DecisionStatus | None
    record: Mapping[str, Any]

    @classmethod
    def of(cls, episode: int, step: int, round: int, agent: str, talking: bool, record: Mapping[str, Any]) -> "DecisionRecord":
        """The record of a policy's decision, its status read from the record."""
        return cls(episode, step, round, agent, talking, DecisionStatus.of(record), record)


@dataclass(frozen=True)
class StateRecord:
    """The game's summary after one action step."""

    episode: int
    step: int
    round: int
    summary: Mapping[str, Any]


@dataclass(frozen=True)
class PredictionRecord:
    """One prediction an agent made before acting, scored against what happened.

    `target` is what was predicted: an opponent's id (its action) or "outcome"; `predicted`
    the most likely label, `actual` what happened, `probability` the probability given to
    it, `correct` whether the most likely label happened, `log_loss` = -ln(probability).
    `source` is "live" (predicted while playing) or "eval:<model>" (`mas worldmodel`).
    """

    episode: int
    step: int
    round: int
    agent: str
    target: str
    predicted: str
    actual: str
    probability: float
    correct: bool
    log_loss: float
    source: str = "live"


@dataclass(frozen=True)
class Usage:
    """One agent's LLM cost and reliability over an episode."""

    tokens: int = 0
    decisions: int = 0
    outputs: int = 0
    invalid: int = 0
    fallbacks: int = 0


@dataclass(frozen=True)
class EpisodeRecord:
    """Everything one episode produced (see the module docstring)."""

    episode: int
    seed: int
    rounds: int = 0
    steps: int = 0
    terminated: bool = False
    truncated: bool = False
    returns: Mapping[str, float] = field(default_factory=dict)
    cooperation: Mapping[str, float | None] = field(default_factory=dict)
    step_records: tuple[StepRecord, ...] = ()
    state_records: tuple[StateRecord, ...] = ()
    messages: tuple[Message, ...] = ()
    decisions: tuple[DecisionRecord, ...] = ()
    usage: Mapping[str, Usage] = field(default_factory=dict)
    predictions: tuple[PredictionRecord, ...] = ()

    def totals_only(self) -> "EpisodeRecord":
        """The same episode without its per-step records (what stays in memory)."""
        return EpisodeRecord(self.episode, self.seed, self.rounds, self.steps, self.terminated, self.truncated,
                             dict(self.returns), dict(self.cooperation), usage=dict(self.usage))


def add_usage(usage: Mapping[str, Usage], agent: str, record: Mapping[str, Any], talking: bool) -> dict[str, Usage]:
    """`usage` with one decision record's cost and reliability added to `agent`'s totals
    (records without "tokens" are not model decisions and change nothing)."""
    out = dict(usage)
    tokens = record.get("tokens")
    if not isinstance(tokens, Mapping):
        return out
    old = out.get(agent, Usage())
    acting = not talking
    out[agent] = Usage(
        tokens=old.tokens + int(tokens.get("prompt", 0)) + int(tokens.get("completion", 0)),
        decisions=old.decisions + int(acting),
        outputs=old.outputs + int(record.get("outputs", 0)),
        invalid=old.invalid + int(record.get("invalid", 0)),
        fallbacks=old.fallbacks + int(acting and DecisionStatus.of(record) in NOT_CHOSEN),
    )
    return out
