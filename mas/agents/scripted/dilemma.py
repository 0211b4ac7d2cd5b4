"""Prisoner's-dilemma strategies: they play any game whose capabilities name a cooperate
and a defect action (the prisoner's dilemma, the volunteer's dilemma, ...).

A player "defects" when it plays anything but the cooperate action. With more than two
players the "partner" is everybody else: the partner counts as having defected when the
fraction of the others who defected is greater than the spec's `tolerance` (default 0: a
single defector counts). With two players this is the plain textbook rule whatever the
tolerance below 1. Only grim trigger, tit-for-two-tats and tester remember anything (the
partner's past moves); it is recorded once per round and cleared by `reset`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

import numpy as np

from mas.agents.base import AgentSetup, AgentView
from mas.agents.batch import BatchState, BatchView
from mas.agents.scripted.base import COOPERATE_DEFECT, Automaton, Classifier, ScriptedBatchRule, ScriptedPolicy, ScriptedSpec

if TYPE_CHECKING:
    from mas.games.base import GameInfo

BOTH = frozenset({COOPERATE_DEFECT})


def _dilemma(memory_depth: float, stochastic: bool = False, needs: frozenset[str] = BOTH, **extra: Any) -> Classifier:
    return Classifier(memory_depth=memory_depth, stochastic=stochastic, needs=needs, family="dilemma", **extra)


class _ReactiveSpec(ScriptedSpec):
    """Parameters of the strategies that react to the partner's moves."""

    tolerance: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="With more than two players, the others count as having defected when more "
        "than this fraction of them did not cooperate.",
    )


class _PDPolicy(ScriptedPolicy):
    """Helpers for the prisoner's-dilemma strategies: C/D indices and the partner's moves."""

    def __init__(self, spec: Any, game: "GameInfo", agents: Sequence[AgentSetup], agent_ids: Sequence[str]) -> None:
        super().__init__(spec, game, agents, agent_ids)
        self.C = game.capabilities.cooperate
        self.D = game.capabilities.defect

    batch_legal = True  # the batched forms play the cooperate or the defect action

    def play(self, cooperate: bool) -> int:
        return self.C if cooperate else self.D

    def partner_defected(self, view: AgentView) -> bool | None:
        """Whether the partner (the others, by `tolerance`) defected last round; None in round 0."""
        if view.last_actions is None:
            return None
        others = [a for a in self.agent_ids if a != view.agent]
        if not others:
            return False
        defectors = sum(1 for a in others if view.last_actions[a] != self.C)
        return defectors / len(others) > getattr(self.spec, "tolerance", 0.0)

    def history(self, view: AgentView) -> list[bool]:
        """The partner's past moves as defected-flags, oldest first (recorded once a round)."""
        seen_round, flags = self._memory.get(view.agent, (-1, []))
        if view.round != seen_round:
            defected = self.partner_defected(view)
            if defected is not None:
                flags = flags + [defected]
            self._memory[view.agent] = (view.round, flags)
        return flags


# ----- the batched forms (`choose_batch`): the same rules over arrays of rows -----------------
#: the memory of the strategies that remember the partner's moves: the round last recorded,
#: how many moves are recorded, the last two (1: defected) and the index of the first defection
HISTORY = MappingProxyType({"seen": -1, "n": 0, "last": 0, "before": 0, "first": -1})


def partner_defected_batch(rule: ScriptedBatchRule, view: BatchView) -> np.ndarray:
    """[K] `partner_defected` of each row (False in round 0, where it is None); computed
    once per step for the whole batch and shared by the rules of equal C and tolerance."""
    tolerance = getattr(rule.spec, "tolerance", 0.0)
    every = view.shared(("partner_defected", rule.C, tolerance), lambda state: _partner_defected(state, rule.C, tolerance))
    return every[view.copies, view.seats]


def _partner_defected(state: BatchState, cooperate: int, tolerance: float) -> np.ndarray:
    """[B, N] whether the others of each seat defected last round, by `tolerance`."""
    n = state.last_actions.shape[1]
    if n < 2:
        return np.zeros(state.last_actions.shape, dtype=bool)
    defected = state.last_actions != cooperate
    others = defected.sum(axis=1, keepdims=True) - defected
    return state.played[:, None] & (others / (n - 1) > tolerance)


def record_history(rule: ScriptedBatchRule, view: BatchView) -> "_Rows":
    """`history`, once per round: appends each row's partner move to its `HISTORY` memory;
    returns the memory of `view.rows` (by name)."""
    memory, rows = rule.memory, view.rows
    new = memory["seen"][rows] != view.round
    if new.any():
        add = new & view.played
        at = rows[add]
        flag = partner_defected_batch(rule, view)[add].astype(np.int64)
        memory["first"][at] = np.where((memory["first"][at] < 0) & (flag == 1), memory["n"][at], memory["first"][at])
        memory["before"][at] = memory["last"][at]
        memory["last"][at] = flag
        memory["n"][at] += 1
        memory["seen"][rows[new]] = view.round[new]
    return _Rows(memory, rows)


class _Rows:
    """`memory[name][rows]`, gathered when asked for."""

    def __init__(self, memory: dict[str, np.ndarray], rows: np.ndarray) -> None:
        self.memory, self.rows = memory, rows

    def __getitem__(self, name: str) -> np.ndarray:
        return self.memory[name][self.rows]


def play_batch(rule: ScriptedBatchRule, cooperate: np.ndarray) -> np.ndarray:
    return np.where(cooperate, rule.C, rule.D)


class AlwaysCooperateSpec(ScriptedSpec):
    type: Literal["always_cooperate"] = "always_cooperate"


class AlwaysCooperate(_PDPolicy):
    """Always cooperate (ALLC)."""

    classifier = _dilemma(0, needs=frozenset({"cooperate"}))
    batch_reactive = True

    @classmethod
    def automaton(cls, spec: Any) -> Automaton:
        return Automaton.reactive(("cooperate",), (1.0,), (0,), (0,))

    def choose(self, view: AgentView) -> int:
        return self.C

    @staticmethod
    def choose_batch(rule: ScriptedBatchRule, view: BatchView) -> np.ndarray:
        return np.full(len(view.rows), rule.C, dtype=np.int64)


class AlwaysDefectSpec(ScriptedSpec):
    type: Literal["always_defect"] = "always_defect"


class AlwaysDefect(_PDPolicy):
    """Always defect (ALLD)."""

    classifier = _dilemma(0, needs=frozenset({"defect"}))
    batch_reactive = True

    @classmethod
    def automaton(cls, spec: Any) -> Automaton:
        return Automaton.reactive(("defect",), (0.0,), (0,), (0,))

    def choose(self, view: AgentView) -> int:
        return self.D

    @staticmethod
    def choose_batch(rule: ScriptedBatchRule, view: BatchView) -> np.ndarray:
        return np.full(len(view.rows), rule.D, dtype=np.int64)


class TitForTatSpec(_ReactiveSpec):
    type: Literal["tit_for_tat"] = "tit_for_tat"


class TitForTat(_PDPolicy):
    """Tit for tat (Rapoport): cooperate first, then copy the partner's last move."""

    classifier = _dilemma(1)
    batch_reactive = True

    @classmethod
    def automaton(cls, spec: Any) -> Automaton:
        return Automaton.reactive(("partner cooperated", "partner defected"), (1.0, 0.0), (0, 0), (1, 1))

    def choose(self, view: AgentView) -> int:
        return self.play(not self.partner_defected(view))

    @staticmethod
    def choose_batch(rule: ScriptedBatchRule, view: BatchView) -> np.ndarray:
        return play_batch(rule, ~partner_defected_batch(rule, view))


class TitForTwoTatsSpec(_ReactiveSpec):
    type: Literal["tit_for_two_tats"] = "tit_for_two_tats"


class TitForTwoTats(_PDPolicy):
    """Tit for two tats: cooperate unless the partner defected in each of the last two rounds."""

    classifier = _dilemma(2)

    @classmethod
    def automaton(cls, spec: Any) -> Automaton:
        return Automaton.reactive(("no defection", "one defection", "two defections"), (1.0, 1.0, 0.0), (0, 0, 0), (1, 2, 2))

    def choose(self, view: AgentView) -> int:
        past = self.history(view)
        return self.play(not (len(past) >= 2 and past[-1] and past[-2]))

    batch_memory = HISTORY

    @staticmethod
    def choose_batch(rule: ScriptedBatchRule, view: BatchView) -> np.ndarray:
        past = record_history(rule, view)
        return play_batch(rule, ~((past["n"] >= 2) & (past["last"] == 1) & (past["before"] == 1)))


class GenerousTitForTatSpec(_ReactiveSpec):
    type: Literal["generous_tit_for_tat"] = "generous_tit_for_tat"
    generosity: float = Field(0.1, ge=0.0, le=1.0, description="Probability of forgiving a defection (cooperating anyway).")


class GenerousTitForTat(_PDPolicy):
    """Generous tit for tat (Nowak & Sigmund): tit for tat, but answer a defection with
    cooperation with probability `generosity`."""

    classifier = _dilemma(1, stochastic=True)
    batch_params = ("generosity",)

    @classmethod
    def automaton(cls, spec: Any) -> Automaton:
        return Automaton.reactive(("partner cooperated", "partner defected"), (1.0, spec.generosity), (0, 0), (1, 1))

    def choose(self, view: AgentView) -> int:
        if not self.partner_defected(view):
            return self.C
        return self.play(self.uniform(view) < self.spec.generosity)

    @staticmethod
    def choose_batch(rule: ScriptedBatchRule, view: BatchView) -> np.ndarray:
        defected = partner_defected_batch(rule, view)
        forgive = rule.uniform(view, defected) < rule.param("generosity", view)  # NaN (no draw) compares False
        return play_batch(rule, ~defected | forgive)


class GrimTriggerSpec(_ReactiveSpec):
    type: Literal["grim_trigger"] = "grim_trigger"


class GrimTrigger(_PDPolicy):
    """Grim trigger: cooperate until the partner defects once, then defect for ever."""

    classifier = _dilemma(math.inf)

    @classmethod
    def automaton(cls, spec: Any) -> Automaton:
        return Automaton.reactive(("cooperating", "triggered"), (1.0, 0.0), (0, 1), (1, 1))

    def choose(self, view: AgentView) -> int:
        return self.play(not any(self.history(view)))

    batch_memory = HISTORY

    @staticmethod
    def choose_batch(rule: ScriptedBatchRule, view: BatchView) -> np.ndarray:
        return play_batch(rule, record_history(rule, view)["first"] < 0)


class PavlovSpec(_ReactiveSpec):
    type: Literal["pavlov"] = "pavlov"


class Pavlov(_PDPolicy):
    """Pavlov, win-stay lose-shift (Nowak & Sigmund): cooperate first; then cooperate if
    both players made the same move last round (CC or DD), else defect (CD or DC)."""

    classifier = _dilemma(1)
    batch_reactive = True

    @classmethod
    def automaton(cls, spec: Any) -> Automaton:
        # the state is the move it plays: cooperate after equal moves, defect after unequal ones
        same = ((0, 1), (1, 0))
        return Automaton(("cooperate", "defect"), (1.0, 0.0), (same, same))

    def choose(self, view: AgentView) -> int:
        partner_defected = self.partner_defected(view)
        if partner_defected is None:
            return self.C
        i_defected = view.last_actions[view.agent] != self.C
        return self.play(i_defected == partner_defected)

    @staticmethod
    def choose_batch(rule: ScriptedBatchRule, view: BatchView) -> np.ndarray:
        partner = partner_defected_batch(rule, view)
        me = view.own_last != rule.C
        return play_batch(rule, ~view.played | (me == partner))


class SuspiciousTitForTatSpec(_ReactiveSpec):
    type: Literal["suspicious_tit_for_tat"] = "suspicious_tit_for_tat"


class SuspiciousTitForTat(_PDPolicy):
    """Suspicious tit for tat: defect first, then copy the partner's last move."""

    classifier = _dilemma(1)
    batch_reactive = True

    @classmethod
    def automaton(cls, spec: Any) -> Automaton:
        return Automaton.reactive(("partner cooperated", "partner defected"), (1.0, 0.0), (0, 0), (1, 1), start=1)

    def choose(self, view: AgentView) -> int:
        defected = self.partner_defected(view)
        return self.play(defected is not None and not defected)

    @staticmethod
    def choose_batch(rule: ScriptedBatchRule, view: BatchView) -> np.ndarray:
        return play_batch(rule, view.played & ~partner_defected_batch(rule, view))


class AlternatorSpec(ScriptedSpec):
    type: Literal["alternator"] = "alternator"


class Alternator(_PDPolicy):
    """Alternator: C, D, C, D, ... (cooperate in even rounds, defect in odd ones)."""

    classifier = _dilemma(0, makes_use_of=frozenset({"round"}))

    @classmethod
    def automaton(cls, spec: Any) -> Automaton:
        return Automaton.reactive(("even round", "odd round"), (1.0, 0.0), (1, 0), (1, 0))

    def choose(self, view: AgentView) -> int:
        return self.play(view.round % 2 == 0)

    @staticmethod
    def choose_batch(rule: ScriptedBatchRule, view: BatchView) -> np.ndarray:
        return play_batch(rule, view.round % 2 == 0)


class DefectOnceSpec(ScriptedSpec):
    type: Literal["defect_once"] = "defect_once"
    round: int = Field(2, ge=0, le=1_000_000, description="The round (counted from 0) of the one defection.")


class DefectOnce(_PDPolicy):
    """Defect once: cooperate in every round but one, `round` (counted from 0), where it
    defects whatever happened (a probe for how a partner answers a single defection)."""

    classifier = _dilemma(0, makes_use_of=frozenset({"round"}))

    @classmethod
    def automaton(cls, spec: Any) -> Automaton:
        # one state per round up to the defection, then "after" for ever
        k = spec.round
        states = tuple(f"round {r}" for r in range(k + 1)) + ("after",)
        after = tuple(min(s + 1, k + 1) for s in range(k + 2))
        return Automaton.reactive(states, tuple(0.0 if s == k else 1.0 for s in range(k + 2)), after, after)

    def choose(self, view: AgentView) -> int:
        return self.play(view.round != self.spec.round)

    @staticmethod
    def choose_batch(rule: ScriptedBatchRule, view: BatchView) -> np.ndarray:
        return play_batch(rule, view.round != rule.spec.round)


class JossSpec(_ReactiveSpec):
    type: Literal["joss"] = "joss"
    sneakiness: float = Field(0.1, ge=0.0, le=1.0, description="Probability of defecting after the partner cooperated.")


class Joss(_PDPolicy):
    """Joss (Axelrod's first tournament): cooperate first; after the partner cooperated,
    cooperate with probability 1 - `sneakiness` (0.9), else defect; after the partner
    defected, always defect (a sneaky tit for tat)."""

    classifier = _dilemma(1, stochastic=True)
    batch_params = ("sneakiness",)

    @classmethod
    def automaton(cls, spec: Any) -> Automaton:
        return Automaton.reactive(("first round", "partner cooperated", "partner defected"), (1.0, 1.0 - spec.sneakiness, 0.0), (1, 1, 1), (2, 2, 2))

    def choose(self, view: AgentView) -> int:
        if self.partner_defected(view):
            return self.D
        if view.last_actions is None:
            return self.C
        return self.play(self.uniform(view) >= self.spec.sneakiness)

    @staticmethod
    def choose_batch(rule: ScriptedBatchRule, view: BatchView) -> np.ndarray:
        defected = partner_defected_batch(rule, view)
        draws = rule.uniform(view, view.played & ~defected)
        return play_batch(rule, ~view.played | (~defected & (draws >= rule.param("sneakiness", view))))


class TesterSpec(_ReactiveSpec):
    type: Literal["tester"] = "tester"


class Tester(_PDPolicy):
    """Tester (Axelrod, The Evolution of Cooperation, ch. 2): defect on the first move to
    probe. If the partner ever defects, apologise by cooperating once, then play tit for
    tat for the rest of the game. Otherwise cooperate on moves 2 and 3 and then defect on
    every other move (moves 4, 6, 8, ...: rounds 3, 5, 7, ... counted from 0), exploiting
    a partner that never retaliates."""

    classifier = _dilemma(math.inf, makes_use_of=frozenset({"round"}))

    def choose(self, view: AgentView) -> int:
        past = self.history(view)
        if True in past:
            if view.round == past.index(True) + 1:
                return self.C  # the apology, right after the first defection seen
            return self.play(not past[-1])
        if view.round == 0:
            return self.D
        return self.play(view.round < 3 or view.round % 2 == 0)

    batch_memory = HISTORY

    @staticmethod
    def choose_batch(rule: ScriptedBatchRule, view: BatchView) -> np.ndarray:
        past = record_history(rule, view)
        r = view.round
        probing = np.where(r == 0, False, (r < 3) | (r % 2 == 0))
        retaliating = np.where(r == past["first"] + 1, True, past["last"] == 0)
        return play_batch(rule, np.where(past["first"] >= 0, retaliating, probing))
