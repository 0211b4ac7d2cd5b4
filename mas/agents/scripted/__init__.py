"""Scripted policies: the textbook strategies of each game family, as fixed rules, one
module per family (see `base` for the conventions they share and their `Classifier`).

The names are re-exported here so `mas.agents.scripted.TitForTat` keeps working.
"""

from mas.agents.scripted.any_game import FixedAction, FixedActionSpec, RandomPolicy, RandomPolicySpec
from mas.agents.scripted.bargaining import FairBargainer, FairBargainerSpec, GreedyBargainer, GreedyBargainerSpec
from mas.agents.scripted.base import COOPERATE_DEFECT, Automaton, Classifier, ScriptedPolicy, ScriptedSpec, legal_or_first, nearest_level
from mas.agents.scripted.commons import FixedQuota, FixedQuotaSpec, SustainableHarvester, SustainableHarvesterSpec
from mas.agents.scripted.dilemma import (
    Alternator, AlternatorSpec, AlwaysCooperate, AlwaysCooperateSpec, AlwaysDefect, AlwaysDefectSpec, GenerousTitForTat,
    GenerousTitForTatSpec, GrimTrigger, GrimTriggerSpec, Joss, JossSpec, Pavlov, PavlovSpec, SuspiciousTitForTat,
    SuspiciousTitForTatSpec, Tester, TesterSpec, TitForTat, TitForTatSpec, TitForTwoTats, TitForTwoTatsSpec,
)
from mas.agents.scripted.public_goods import ConditionalCooperator, ConditionalCooperatorSpec, FreeRider, FreeRiderSpec
from mas.agents.scripted.signalling import HonestSpeaker, HonestSpeakerSpec, LiteralListener, LiteralListenerSpec, named_target

__all__ = [name for name in dir() if not name.startswith("_")]
