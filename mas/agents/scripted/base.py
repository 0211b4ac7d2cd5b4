"""What every scripted strategy shares: the policy base, its classifier and small helpers.

A scripted strategy is a `ScriptedPolicy` whose `choose(view) -> action index` applies one
fixed rule. Conventions shared by all of them:

- Legal moves: a rule names the action it wants; if that action is masked out (an idle
  turn, a phase where it means nothing) the first legal action is played instead, so
  e.g. an agent whose turn it is not plays WAIT.
- Messages: a decision carries `render_message(spec.message, view, action)` once per
  round: in the round's talk steps when the scenario has them (the action step that
  follows is silent, as an LLM agent's is), else with the action. In a talk-only step the
  policy returns its usual choice, so "$action" names what it will do.
- Randomness: one `numpy.random.default_rng(seed)` per policy, re-made by `reset(seed)`.
  A rule draws at most one uniform number per agent per round, in the order of the views,
  and that draw is reused by every step of the same round (talk steps and the action
  step), so what an agent announces is what it then plays.
- What it knows of the game: the read-only `GameInfo` (`self.info`): capabilities (e.g.
  the cooperate and defect actions) and public constants (e.g. harvest amounts), never
  the rule engine.

Every strategy class carries a `Classifier` (like the Axelrod library's): how many past
rounds it remembers, whether it is random, and what the game must offer (`needs`). A
spec's `check_game` is derived from `needs`, so a strategy plays every game that offers
what it needs, whatever the game's kind.

A strategy of a two-player cooperate/defect game may also declare its rule as a small
`Automaton` over memory states (`ScriptedPolicy.automaton(spec)`), which the exact
baselines (`mas.solve`) use to find the best response to it by value iteration.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from mas.agents.base import AgentSetup, AgentView, Decision, Policy, PolicySpec, RoundMessages
from mas.agents.batch import BatchRule, BatchView
from mas.agents.batch import legal_or_first as legal_or_first_batch

if TYPE_CHECKING:
    from mas.games.base import GameInfo

#: a `needs` entry that asks for both a cooperate and a distinct defect action
COOPERATE_DEFECT = "cooperate_defect"
#: how a missing need reads in an error
_WORDS = {COOPERATE_DEFECT: "distinct cooperate and defect actions", "cooperate": "a cooperate action", "defect": "a defect action"}


@dataclass(frozen=True)
class Classifier:
    """What a strategy is, in the Axelrod library's terms.

    Attributes:
        memory_depth: how many past rounds the rule looks back on (0: none, `math.inf`:
            the whole game). What the current state shows (the stock, the offer on the
            table, the heard word) is not memory.
        stochastic: whether the rule draws random numbers (False: the same views give the
            same actions under every seed).
        needs: what the game must offer: capability names of `Capabilities` (e.g.
            "cooperate", "defect"), `COOPERATE_DEFECT` (both, distinct), or keys of the
            game's public `constants` (e.g. "amounts").
        family: the game family the rule was written for ("dilemma", "any", ...).
        makes_use_of: which parts of a view it reads besides the last actions, e.g.
            "summary", "inbox", "round".
    """

    memory_depth: float
    stochastic: bool
    needs: frozenset[str] = frozenset()
    family: str = "any"
    makes_use_of: frozenset[str] = frozenset()

    def missing(self, info: "GameInfo") -> list[str]:
        """The entries of `needs` that `info`'s game does not offer, sorted."""
        caps = info.capabilities
        out = []
        for name in sorted(self.needs):
            if name == COOPERATE_DEFECT:
                offered = caps.has_cooperate_defect
            elif hasattr(caps, name):
                value = getattr(caps, name)
                offered = value is not None and value is not False and value != ()
            else:
                offered = name in info.constants
            if not offered:
                out.append(name)
        return out

    def describe(self) -> str:
        """One line for `mas list`: memory, stochastic, needs."""
        depth = "inf" if math.isinf(self.memory_depth) else f"{self.memory_depth:g}"
        needs = ", ".join(sorted(self.needs)) or "nothing"
        return f"memory {depth}, {'stochastic' if self.stochastic else 'deterministic'}, needs {needs}"


@dataclass(frozen=True)
class Automaton:
    """A cooperate/defect strategy of a two-player repeated game as a finite machine.

    The strategy is in one memory state per round; in state s it cooperates with
    probability `cooperate[s]` (else defects), and after the round it moves to
    `next[s][own][partner]`, where `own` and `partner` are 1 when that player defected
    (played anything but the cooperate action) in the round, else 0.

    Attributes:
        states: a name per memory state.
        cooperate: per state, the probability of cooperating.
        next: per state, the next state indexed [own defected][partner defected].
        start: the state of the first round.
    """

    states: tuple[str, ...]
    cooperate: tuple[float, ...]
    next: tuple[tuple[tuple[int, int], tuple[int, int]], ...]
    start: int = 0

    @classmethod
    def reactive(cls, states: tuple[str, ...], cooperate: tuple[float, ...], after_c: tuple[int, ...],
                 after_d: tuple[int, ...], start: int = 0) -> "Automaton":
        """A machine whose next state depends only on the partner's move: `after_c[s]` after
        the partner cooperated in state s, `after_d[s]` after it defected."""
        table = tuple(((c, d), (c, d)) for c, d in zip(after_c, after_d))
        return cls(states, cooperate, table, start)


class ScriptedSpec(PolicySpec):
    """Base of every scripted strategy's spec: the game must offer what the strategy's
    classifier `needs` (the strategy class is found through the registry by `type`)."""

    def classifier(self) -> Classifier:
        from mas import registry

        return registry.policy_class(self.type).classifier  # type: ignore[attr-defined]

    def check_game(self, game: "GameInfo") -> None:
        missing = self.classifier().missing(game)
        if missing:
            words = [_WORDS.get(n, n) for n in missing]
            raise ValueError(f"needs a game that offers {' and '.join(words)} (this {game.kind} game does not)")


def legal_or_first(view: AgentView, action: int) -> int:
    """`action` if it is legal in `view`, else the first legal action."""
    mask = view.action_mask
    if 0 <= action < len(mask) and mask[action]:
        return int(action)
    legal = np.flatnonzero(mask)
    return int(legal[0]) if len(legal) else 0


def nearest_level(amounts: Sequence[float], target: float, view: AgentView) -> int:
    """The legal action whose amount is nearest `target` (ties: the smaller amount)."""
    options = [a for a in view.legal_actions() if a < len(amounts)]
    if not options:
        return -1
    return min(options, key=lambda a: (abs(float(amounts[a]) - target), float(amounts[a])))


class ScriptedPolicy(Policy):
    """Base of every scripted policy: subclasses write `choose(view) -> action index` and
    declare a `classifier`."""

    classifier: ClassVar[Classifier]
    #: strategies act on arrays over copies (`mas.policy_batch`), so a batch's memory limits
    #: it: a batch costs a fixed time per round and a small one per copy (18,150 classic
    #: matches: 1.14 s of CPU in batches of 4,096, 0.97 s in batches of 9,075; per match
    #: flat from 9,075 to 20,000), and `mas.tournament.batch.MAX_ACTION_CELLS` binds first
    #: for 200 rounds
    tournament_copies: ClassVar[int] = 1 << 15

    def __init__(self, spec: Any, game: "GameInfo", agents: Sequence[AgentSetup], agent_ids: Sequence[str]) -> None:
        super().__init__(spec, game, agents, agent_ids)
        self.reset(0)

    def reset(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self._draws: dict[str, tuple[int, float]] = {}  # agent -> (round, uniform draw)
        self._memory: dict[str, Any] = {}  # agent -> whatever the rule remembers
        self._messages = RoundMessages(self.spec.message)

    def act(self, views: Sequence[AgentView]) -> list[Decision]:
        decisions = []
        for view in views:
            action = legal_or_first(view, self.choose(view))
            decisions.append(Decision(action, self._messages.say(view, action)))
        return decisions

    @classmethod
    def automaton(cls, spec: Any) -> Automaton | None:
        """This rule (with `spec`'s parameters) as an `Automaton` of a two-player
        cooperate/defect game, or None when it is not declared as one."""
        return None

    @abstractmethod
    def choose(self, view: AgentView) -> int:
        """The action the rule wants (it may be illegal; `act` falls back to a legal one)."""

    #: the rule over arrays, when the strategy offers it: (rule, view) -> [K] wanted
    #: actions, exactly what `choose` would want for each row (`ScriptedBatchRule`)
    choose_batch: ClassVar[Any] = None
    #: `choose_batch` only names actions in range (e.g. cooperate or defect): where every
    #: action is legal, no fallback is needed
    batch_legal: ClassVar[bool] = False
    #: the [R] int64 memory arrays the batched rule keeps: name -> value after a reset
    batch_memory: ClassVar[Mapping[str, int]] = MappingProxyType({})
    #: `choose_batch` reads only the rows' played flags, last actions and masks (no memory,
    #: no draws, no round, no summary): `BatchRule.reactive`
    batch_reactive: ClassVar[bool] = False

    @classmethod
    def batch_rule(cls, spec: Any, game: "GameInfo", agent_ids: Sequence[str], seats: np.ndarray,
                   streams: np.ndarray, params: Mapping[str, np.ndarray] | None = None) -> "ScriptedBatchRule | None":
        if cls.choose_batch is None or spec.message:  # messages are rendered copy by copy
            return None
        return ScriptedBatchRule(cls, spec, game, agent_ids, seats, streams, params)

    def uniform(self, view: AgentView) -> float:
        """This agent's uniform draw in [0, 1) for this round (drawn on first use)."""
        cached = self._draws.get(view.agent)
        if cached is None or cached[0] != view.round:
            cached = (view.round, float(self.rng.random()))
            self._draws[view.agent] = cached
        return cached[1]

    def pick(self, view: AgentView, options: Sequence[int]) -> int:
        """One of `options` uniformly at random (no draw when there is one option)."""
        if not options:
            return -1
        if len(options) == 1:
            return int(options[0])
        return int(options[min(int(self.uniform(view) * len(options)), len(options) - 1)])


class ScriptedBatchRule(BatchRule):
    """A scripted strategy over many rows: its `choose_batch` with the legal fallback of
    `act`; the memory arrays of `batch_memory` live in `memory`."""

    def __init__(self, strategy: type[ScriptedPolicy], spec: Any, info: "GameInfo", agent_ids: Sequence[str],
                 seats: np.ndarray, streams: np.ndarray, params: Mapping[str, np.ndarray] | None = None) -> None:
        super().__init__(spec, info, agent_ids, seats, streams, params)
        self.strategy = strategy
        self.reactive = strategy.batch_reactive and not strategy.batch_memory
        caps = info.capabilities
        self.C, self.D = caps.cooperate, caps.defect
        self.memory = {name: np.full(len(self.seats), start, dtype=np.int64) for name, start in strategy.batch_memory.items()}
        self._single: ScriptedPolicy | None = None

    def reset_rows(self, rows: np.ndarray) -> None:
        for name, start in self.strategy.batch_memory.items():
            self.memory[name][rows] = start

    def single(self) -> ScriptedPolicy:
        """One per-copy instance (for `choose_rowwise`)."""
        if self._single is None:
            self._single = self.strategy(self.spec, self.info, [AgentSetup(self.agent_ids[0], 0)], self.agent_ids)
        return self._single

    def act(self, view: BatchView) -> np.ndarray:
        actions = self.strategy.choose_batch(self, view)
        if self.strategy.batch_legal and view.all_legal:  # nothing to fall back from
            return actions
        return legal_or_first_batch(view, actions)


def choose_rowwise(rule: ScriptedBatchRule, view: BatchView) -> np.ndarray:
    """`choose` row by row on a per-copy instance: the batched form of strategies that
    keep no memory and draw nothing, and read the summary (a row costs one small view,
    far less than the engine's full per-copy views)."""
    policy = rule.single()
    summaries = view.summaries()
    names = rule.info.action_names
    out = np.empty(len(view.rows), dtype=np.int64)
    for k, seat in enumerate(view.seats.tolist()):
        last = dict(zip(rule.agent_ids, view.last_actions[k].tolist())) if view.played[k] else None
        out[k] = policy.choose(AgentView(
            agent=rule.agent_ids[seat], seat=seat, observation=_NO_OBSERVATION, action_mask=view.mask[k],
            action_names=names[seat], round=int(view.round[k]), talking=view.talking, last_actions=last,
            summary=summaries[k],
        ))
    return out


_NO_OBSERVATION = np.zeros(0, dtype=np.float32)
