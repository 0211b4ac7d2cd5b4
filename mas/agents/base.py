"""The policy interface: one object decides for many agents at once.

Batching is the point: an LLM policy answers a whole step in one model call, so `act`
takes the views of every agent the policy controls and returns one decision each. The
runner groups agents by policy and calls `act` once per group per step.
"""

from __future__ import annotations

import string
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from mas.agents.batch import BatchRule
    from mas.comms import Message
    from mas.games.base import GameInfo


class PolicySpec(BaseModel):
    """Base of every policy's scenario parameters. Subclasses add `type: Literal[...]`
    (the registry name) and their own fields."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    message: str = Field(
        "",
        description="A fixed message sent every step when the scenario lets agents talk; "
        "$round, $agent and $action are filled in.",
    )

    def check_game(self, game: "GameInfo") -> None:
        """Raise ValueError (one line, naming the problem) if this policy cannot play the
        game `game` describes; called when a scenario is validated."""


@dataclass(frozen=True)
class AgentView:
    """Everything one agent may know at one step, as plain data.

    Attributes:
        agent: the agent's id.
        seat: its index in the game (0..N-1).
        observation: the game's numeric observation vector.
        action_mask: int8 legal-action mask.
        action_names: names of the actions, by index.
        round: index of the current game round (0-based).
        talking: True in a talk-only step, where the action is ignored and only the
            message counts.
        inbox: messages delivered to this agent since its last step.
        last_actions: the previous round's action index of every agent (None in round 0).
        last_rewards: the previous round's reward of every agent (None in round 0).
        summary: the game's small summary of the current state (e.g. the resource stock).
        rules: the rules in words (only when a policy in the run asked for text).
        situation: the current situation in words (idem).
        persona: the agent's persona text from the scenario, if any.
        message_limit: the longest message the agent may send, in characters (0 when
            communication is off).
    """

    agent: str
    seat: int
    observation: np.ndarray
    action_mask: np.ndarray
    action_names: tuple[str, ...]
    round: int
    talking: bool = False
    inbox: tuple["Message", ...] = ()
    last_actions: Mapping[str, int] | None = None
    last_rewards: Mapping[str, float] | None = None
    summary: Mapping[str, Any] = field(default_factory=dict)
    rules: str = ""
    situation: str = ""
    persona: str = ""
    message_limit: int = 0

    def legal_actions(self) -> list[int]:
        """Indices of the legal actions."""
        return [int(i) for i in np.flatnonzero(self.action_mask)]


@dataclass(frozen=True)
class Decision:
    """A policy's choice for one agent: an action index, an optional message, and an
    optional record of how it was made (prompt, raw output, distribution...)."""

    action: int
    message: str = ""
    record: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class AgentSetup:
    """The static facts a policy is built with for each agent it controls."""

    agent: str
    seat: int
    persona: str = ""


class Policy(ABC):
    """Decides for a set of agents. Subclasses set `needs_text` when they read
    `AgentView.rules`/`situation`, so the env renders text only when someone reads it."""

    needs_text: bool = False
    #: the most tournament matches this policy plays at once, as the copies of one engine
    #: (`mas.tournament.batch`); 0: one match at a time (a policy costly to build per copy)
    tournament_copies: ClassVar[int] = 0
    #: whether its decisions in a copy are the same whatever other copies play beside it;
    #: False where calls are packed across copies and the packed numbers differ from a
    #: single call's at float precision (a language model's batched forward pass): then a
    #: tournament plays each match in the same batch on any number of workers and on resume
    batch_invariant: ClassVar[bool] = True

    def __init__(self, spec: Any, game: "GameInfo", agents: Sequence[AgentSetup], agent_ids: Sequence[str]) -> None:
        """Args:
        spec: the validated policy spec from the scenario (a pydantic model).
        game: the read-only description of the game being played (`Game.info()`: action
            names, rules, capabilities, public constants), never the rule engine.
        agents: the agents this policy controls.
        agent_ids: every agent id in seat order (to read `last_actions` of others).
        """
        self.spec = spec
        self.info = game
        self.agents = list(agents)
        self.agent_ids = list(agent_ids)

    def reset(self, seed: int) -> None:
        """Start a new episode; `seed` fixes any randomness of the policy."""

    @abstractmethod
    def act(self, views: Sequence[AgentView]) -> list[Decision]:
        """One decision per view, in the same order."""

    #: spec fields that may differ between the rows of one batched rule: specs equal but for
    #: these share a rule, and each row reads its own value (`BatchRule.param`)
    batch_params: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def batch_rule(cls, spec: Any, game: "GameInfo", agent_ids: Sequence[str], seats: np.ndarray,
                   streams: np.ndarray, params: Mapping[str, np.ndarray] | None = None) -> "BatchRule | None":
        """The optional batched form of this policy for `spec` over many (copy, seat) rows
        (`mas.agents.batch`), `params` each row's values of `batch_params` (default: the
        spec's); None: the policy decides copy by copy."""
        return None

    @classmethod
    def act_many(cls, policies: Sequence["Policy"], views: Sequence[Sequence[AgentView]]) -> list[list[Decision]]:
        """`policies[i].act(views[i])` for instances of this class that decide at the same
        step (one per engine copy); a subclass may answer them together (one model call)."""
        return [policy.act(v) for policy, v in zip(policies, views)]


class RoundMessages:
    """A templated message said once per round: in the round's talk steps when the
    scenario has them (the action step after them is silent, as an LLM agent's is), else
    with the action. One per policy instance; `reset` with the policy."""

    def __init__(self, template: str) -> None:
        self.template = template
        self.reset()

    def reset(self) -> None:
        self._talked: dict[str, int] = {}  # agent -> the last round it spoke in a talk step

    def say(self, view: AgentView, action: int) -> str:
        if not self.template:
            return ""
        if view.talking:
            self._talked[view.agent] = view.round
        elif self._talked.get(view.agent) == view.round:
            return ""
        return render_message(self.template, view, action)


def render_message(template: str, view: AgentView, action: int) -> str:
    """Fill a scripted message template; `$round`, `$agent`, `$action` are known and
    anything else is left as written (string.Template: no code, no attribute access)."""
    if not template:
        return ""
    values = {"round": str(view.round + 1), "agent": view.agent, "action": view.action_names[action]}
    return string.Template(template).safe_substitute(values)
