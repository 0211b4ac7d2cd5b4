"""Strategies that play every game: random and a fixed action."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field

from mas.agents.base import AgentView
from mas.agents.batch import BatchView
from mas.agents.scripted.base import Automaton, Classifier, ScriptedBatchRule, ScriptedPolicy, ScriptedSpec

if TYPE_CHECKING:
    from mas.games.base import GameInfo


class RandomPolicySpec(ScriptedSpec):
    type: Literal["random"] = "random"
    p: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Probability of cooperating, in games with cooperate and defect actions; "
        "other games ignore it and pick uniformly among the legal actions.",
    )


class RandomPolicy(ScriptedPolicy):
    """Random: in a game with cooperate and defect actions cooperate with probability `p`,
    else defect; in any other game pick uniformly among the legal actions. Plays every game."""

    classifier = Classifier(memory_depth=0, stochastic=True)
    batch_params = ("p",)

    @classmethod
    def automaton(cls, spec: RandomPolicySpec) -> Automaton:
        return Automaton.reactive(("random",), (spec.p,), (0,), (0,))

    def choose(self, view: AgentView) -> int:
        legal = view.legal_actions()
        caps = self.info.capabilities
        if caps.has_cooperate_defect and caps.cooperate in legal and caps.defect in legal:
            return caps.cooperate if self.uniform(view) < self.spec.p else caps.defect
        return self.pick(view, legal)

    @staticmethod
    def choose_batch(rule: ScriptedBatchRule, view: BatchView) -> np.ndarray:
        legal = view.mask != 0
        count = legal.sum(axis=1)
        caps = rule.info.capabilities
        coin = np.zeros(len(count), dtype=bool)
        if caps.has_cooperate_defect and max(caps.cooperate, caps.defect) < legal.shape[1]:
            coin = legal[:, caps.cooperate] & legal[:, caps.defect]
        draws = rule.uniform(view, coin | (count >= 2))
        flip = np.where(draws < rule.param("p", view), rule.C if rule.C is not None else -1, rule.D if rule.D is not None else -1)
        if coin.all():  # a coin flip everywhere (the dilemmas): nothing to pick
            return flip
        # pick: the index-th legal action, index = min(int(u * count), count - 1) (the only one without a draw)
        index = np.where(count >= 2, np.minimum(np.nan_to_num(draws * count).astype(np.int64), count - 1), 0)
        picked = np.where(count > 0, np.argmax(np.cumsum(legal, axis=1) > index[:, None], axis=1), -1)
        return np.where(coin, flip, picked)


class FixedActionSpec(ScriptedSpec):
    type: Literal["fixed_action"] = "fixed_action"
    action: str = Field(description="Name of the action to play every step (the first legal action when it is not legal).")

    def check_game(self, game: "GameInfo") -> None:
        names = {name for seat in game.action_names for name in seat}
        if self.action not in names:
            raise ValueError(f"action '{self.action}' is not an action of this game; actions: {list(game.action_names[0])}")


class FixedAction(ScriptedPolicy):
    """Fixed action: play the named action whenever it is legal."""

    classifier = Classifier(memory_depth=0, stochastic=False)

    def choose(self, view: AgentView) -> int:
        names = list(view.action_names)
        return names.index(self.spec.action) if self.spec.action in names else -1

    @staticmethod
    def choose_batch(rule: ScriptedBatchRule, view: BatchView) -> np.ndarray:
        wanted = [names.index(rule.spec.action) if rule.spec.action in names else -1 for names in rule.info.action_names]
        return np.asarray(wanted, dtype=np.int64)[view.seats]
