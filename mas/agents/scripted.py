"""Scripted policies: the textbook strategies of each game family, as fixed rules.

Every policy here is a `Policy` whose `act` applies one rule to each view it is given.
Conventions shared by all of them:

- Legal moves: a rule names the action it wants; if that action is masked out (an idle
  turn, a phase where it means nothing) the first legal action is played instead, so
  e.g. an agent whose turn it is not plays WAIT.
- Messages: every decision carries `render_message(spec.message, view, action)`; in a
  talk-only step the policy returns its usual choice, so "$action" names what it will do.
- Randomness: one `numpy.random.default_rng(seed)` per policy, re-made by `reset(seed)`.
  A rule draws at most one uniform number per agent per round, in the order of the views,
  and that draw is reused by every step of the same round (talk steps and the action
  step), so what an agent announces is what it then plays.
- Memory: only grim trigger, tit-for-two-tats and tester remember anything (the partner's past
  moves); it is recorded once per round and cleared by `reset`.

Prisoner's-dilemma strategies need a `normal_form` game with both `cooperate` and
`defect` actions named. A player "defects" when it plays anything but the cooperate
action. With more than two players the "partner" is everybody else: the partner counts as
having defected when the fraction of the others who defected is greater than the spec's
`tolerance` (default 0: a single defector counts). With two players this is the plain
textbook rule whatever the tolerance below 1.
"""

from __future__ import annotations

import math
import re
from abc import abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from mas.agents.base import AgentSetup, AgentView, Decision, Policy, PolicySpec, render_message

if TYPE_CHECKING:
    from mas.comms import Message
    from mas.games.base import Game


# ----- shared machinery ---------------------------------------------------------------
def legal_or_first(view: AgentView, action: int) -> int:
    """`action` if it is legal in `view`, else the first legal action."""
    mask = view.action_mask
    if 0 <= action < len(mask) and mask[action]:
        return int(action)
    legal = np.flatnonzero(mask)
    return int(legal[0]) if len(legal) else 0


def _require_kind(game: "Game", kind: str) -> None:
    found = getattr(game, "kind", "")
    if found != kind:
        raise ValueError(f"needs a {kind} game, not {found or type(game).__name__}")


class ScriptedPolicy(Policy):
    """Base of every scripted policy: subclasses write `choose(view) -> action index`."""

    def __init__(self, spec: Any, game: "Game", agents: Sequence[AgentSetup], agent_ids: Sequence[str]) -> None:
        super().__init__(spec, game, agents, agent_ids)
        self.reset(0)

    def reset(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self._draws: dict[str, tuple[int, float]] = {}  # agent -> (round, uniform draw)
        self._memory: dict[str, Any] = {}  # agent -> whatever the rule remembers

    def act(self, views: Sequence[AgentView]) -> list[Decision]:
        decisions = []
        for view in views:
            action = legal_or_first(view, self.choose(view))
            decisions.append(Decision(action, render_message(self.spec.message, view, action)))
        return decisions

    @abstractmethod
    def choose(self, view: AgentView) -> int:
        """The action the rule wants (it may be illegal; `act` falls back to a legal one)."""

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


# ----- prisoner's-dilemma family (normal_form with cooperate and defect) -----------------
class _PDSpec(PolicySpec):
    """Check shared by the prisoner's-dilemma strategies."""

    needs: ClassVar[tuple[str, ...]] = ("cooperate", "defect")

    def check_game(self, game: "Game") -> None:
        missing = [name for name in self.needs if getattr(game, name, None) is None]
        if getattr(game, "kind", "") != "normal_form" or missing:
            raise ValueError(f"needs a normal_form game with {' and '.join(self.needs)} action(s) named")
        if len(self.needs) == 2 and game.cooperate == game.defect:
            raise ValueError("cooperate and defect must be different actions")


class _ReactiveSpec(_PDSpec):
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

    def __init__(self, spec: Any, game: "Game", agents: Sequence[AgentSetup], agent_ids: Sequence[str]) -> None:
        super().__init__(spec, game, agents, agent_ids)
        self.C = getattr(game, "cooperate", None)
        self.D = getattr(game, "defect", None)

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


class AlwaysCooperateSpec(_PDSpec):
    type: Literal["always_cooperate"] = "always_cooperate"
    needs: ClassVar[tuple[str, ...]] = ("cooperate",)


class AlwaysCooperate(_PDPolicy):
    """Always cooperate (ALLC)."""

    def choose(self, view: AgentView) -> int:
        return self.C


class AlwaysDefectSpec(_PDSpec):
    type: Literal["always_defect"] = "always_defect"
    needs: ClassVar[tuple[str, ...]] = ("defect",)


class AlwaysDefect(_PDPolicy):
    """Always defect (ALLD)."""

    def choose(self, view: AgentView) -> int:
        return self.D


class TitForTatSpec(_ReactiveSpec):
    type: Literal["tit_for_tat"] = "tit_for_tat"


class TitForTat(_PDPolicy):
    """Tit for tat (Rapoport): cooperate first, then copy the partner's last move."""

    def choose(self, view: AgentView) -> int:
        return self.play(not self.partner_defected(view))


class TitForTwoTatsSpec(_ReactiveSpec):
    type: Literal["tit_for_two_tats"] = "tit_for_two_tats"


class TitForTwoTats(_PDPolicy):
    """Tit for two tats: cooperate unless the partner defected in each of the last two rounds."""

    def choose(self, view: AgentView) -> int:
        past = self.history(view)
        return self.play(not (len(past) >= 2 and past[-1] and past[-2]))


class GenerousTitForTatSpec(_ReactiveSpec):
    type: Literal["generous_tit_for_tat"] = "generous_tit_for_tat"
    generosity: float = Field(0.1, ge=0.0, le=1.0, description="Probability of forgiving a defection (cooperating anyway).")


class GenerousTitForTat(_PDPolicy):
    """Generous tit for tat (Nowak & Sigmund): tit for tat, but answer a defection with
    cooperation with probability `generosity`."""

    def choose(self, view: AgentView) -> int:
        if not self.partner_defected(view):
            return self.C
        return self.play(self.uniform(view) < self.spec.generosity)


class GrimTriggerSpec(_ReactiveSpec):
    type: Literal["grim_trigger"] = "grim_trigger"


class GrimTrigger(_PDPolicy):
    """Grim trigger: cooperate until the partner defects once, then defect for ever."""

    def choose(self, view: AgentView) -> int:
        return self.play(not any(self.history(view)))


class PavlovSpec(_ReactiveSpec):
    type: Literal["pavlov"] = "pavlov"


class Pavlov(_PDPolicy):
    """Pavlov, win-stay lose-shift (Nowak & Sigmund): cooperate first; then cooperate if
    both players made the same move last round (CC or DD), else defect (CD or DC)."""

    def choose(self, view: AgentView) -> int:
        partner_defected = self.partner_defected(view)
        if partner_defected is None:
            return self.C
        i_defected = view.last_actions[view.agent] != self.C
        return self.play(i_defected == partner_defected)


class SuspiciousTitForTatSpec(_ReactiveSpec):
    type: Literal["suspicious_tit_for_tat"] = "suspicious_tit_for_tat"


class SuspiciousTitForTat(_PDPolicy):
    """Suspicious tit for tat: defect first, then copy the partner's last move."""

    def choose(self, view: AgentView) -> int:
        defected = self.partner_defected(view)
        return self.play(defected is not None and not defected)


class AlternatorSpec(_PDSpec):
    type: Literal["alternator"] = "alternator"


class Alternator(_PDPolicy):
    """Alternator: C, D, C, D, ... (cooperate in even rounds, defect in odd ones)."""

    def choose(self, view: AgentView) -> int:
        return self.play(view.round % 2 == 0)


class JossSpec(_ReactiveSpec):
    type: Literal["joss"] = "joss"
    sneakiness: float = Field(0.1, ge=0.0, le=1.0, description="Probability of defecting after the partner cooperated.")


class Joss(_PDPolicy):
    """Joss (Axelrod's first tournament): cooperate first; after the partner cooperated,
    cooperate with probability 1 - `sneakiness` (0.9), else defect; after the partner
    defected, always defect (a sneaky tit for tat)."""

    def choose(self, view: AgentView) -> int:
        if self.partner_defected(view):
            return self.D
        if view.last_actions is None:
            return self.C
        return self.play(self.uniform(view) >= self.spec.sneakiness)


class TesterSpec(_ReactiveSpec):
    type: Literal["tester"] = "tester"


class Tester(_PDPolicy):
    """Tester (Axelrod, The Evolution of Cooperation, ch. 2): defect on the first move to
    probe. If the partner ever defects, apologise by cooperating once, then play tit for
    tat for the rest of the game. Otherwise cooperate on moves 2 and 3 and then defect on
    every other move (moves 4, 6, 8, ...: rounds 3, 5, 7, ... counted from 0), exploiting
    a partner that never retaliates."""

    def choose(self, view: AgentView) -> int:
        past = self.history(view)
        if True in past:
            if view.round == past.index(True) + 1:
                return self.C  # the apology, right after the first defection seen
            return self.play(not past[-1])
        if view.round == 0:
            return self.D
        return self.play(view.round < 3 or view.round % 2 == 0)


# ----- any game --------------------------------------------------------------------------
class RandomPolicySpec(PolicySpec):
    type: Literal["random"] = "random"
    p: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Probability of cooperating, in normal_form games with cooperate and defect named; "
        "other games ignore it and pick uniformly among the legal actions.",
    )


class RandomPolicy(ScriptedPolicy):
    """Random: in a prisoner's dilemma cooperate with probability `p`, else defect; in any
    other game pick uniformly among the legal actions. Plays every game."""

    def choose(self, view: AgentView) -> int:
        legal = view.legal_actions()
        game = self.game
        if getattr(game, "kind", "") == "normal_form":
            C, D = getattr(game, "cooperate", None), getattr(game, "defect", None)
            if C is not None and D is not None and C != D and C in legal and D in legal:
                return C if self.uniform(view) < self.spec.p else D
        return self.pick(view, legal)


class FixedActionSpec(PolicySpec):
    type: Literal["fixed_action"] = "fixed_action"
    action: str = Field(description="Name of the action to play every step (the first legal action when it is not legal).")

    def check_game(self, game: "Game") -> None:
        names = {name for seat in range(game.n_agents) for name in game.action_names(seat)}
        if self.action not in names:
            raise ValueError(f"action '{self.action}' is not an action of this game; actions: {game.action_names(0)}")


class FixedAction(ScriptedPolicy):
    """Fixed action: play the named action whenever it is legal."""

    def choose(self, view: AgentView) -> int:
        names = list(view.action_names)
        return names.index(self.spec.action) if self.spec.action in names else -1


# ----- public goods ----------------------------------------------------------------------
def nearest_level(amounts: np.ndarray, target: float, view: AgentView) -> int:
    """The legal action whose amount is nearest `target` (ties: the smaller amount)."""
    options = [a for a in view.legal_actions() if a < len(amounts)]
    if not options:
        return -1
    return min(options, key=lambda a: (abs(float(amounts[a]) - target), float(amounts[a])))


class _PublicGoodsSpec(PolicySpec):
    def check_game(self, game: "Game") -> None:
        _require_kind(game, "public_goods")


class ConditionalCooperatorSpec(_PublicGoodsSpec):
    type: Literal["conditional_cooperator"] = "conditional_cooperator"
    initial: float = Field(1.0, ge=0.0, le=1.0, description="First-round contribution, as a fraction of the endowment.")
    punish_free_riders: bool = Field(
        False,
        description="In punish steps, punish the lowest contributor among the others if they gave "
        "less than half the mean contribution (else punish nobody).",
    )


class ConditionalCooperator(ScriptedPolicy):
    """Conditional cooperator (Fischbacher, Gaechter & Fehr): contribute `initial` of the
    endowment first, then match the others - contribute the level nearest the mean of the
    others' last contributions. In punish steps punish nobody, or with
    `punish_free_riders` the lowest contributor among the others (lowest seat on a tie)
    when they gave less than half the mean contribution of all players."""

    def choose(self, view: AgentView) -> int:
        last = view.summary.get("last_contributions")
        if view.summary.get("phase") == "punish":
            return self._punish(view, last)
        if last is None:
            target = self.spec.initial * self.game.config.endowment
        else:
            target = float(np.mean([c for seat, c in enumerate(last) if seat != view.seat]))
        return nearest_level(self.game.amounts, target, view)

    def _punish(self, view: AgentView, last: Sequence[float] | None) -> int:
        nobody = self.game.PUNISH_NOBODY
        if not self.spec.punish_free_riders or last is None:
            return nobody
        others = [seat for seat in range(len(last)) if seat != view.seat]
        lowest = min(others, key=lambda seat: (last[seat], seat))
        return 1 + lowest if last[lowest] < 0.5 * float(np.mean(last)) else nobody


class FreeRiderSpec(_PublicGoodsSpec):
    type: Literal["free_rider"] = "free_rider"


class FreeRider(ScriptedPolicy):
    """Free rider: contribute nothing (the lowest level), never punish."""

    def choose(self, view: AgentView) -> int:
        if view.summary.get("phase") == "punish":
            return self.game.PUNISH_NOBODY
        return nearest_level(self.game.amounts, 0.0, view)


# ----- commons ---------------------------------------------------------------------------
class _CommonsSpec(PolicySpec):
    def check_game(self, game: "Game") -> None:
        _require_kind(game, "commons")


class FixedQuotaSpec(_CommonsSpec):
    type: Literal["fixed_quota"] = "fixed_quota"
    amount: float = Field(ge=0.0, description="Harvest every round the harvest level nearest this amount.")


class FixedQuota(ScriptedPolicy):
    """Fixed quota: harvest the same amount every round, whatever the stock."""

    def choose(self, view: AgentView) -> int:
        return nearest_level(self.game.amounts, self.spec.amount, view)


class SustainableHarvesterSpec(_CommonsSpec):
    type: Literal["sustainable_harvester"] = "sustainable_harvester"


class SustainableHarvester(ScriptedPolicy):
    """Sustainable harvester: keep the stock near half the capacity (where logistic growth
    is fastest) by taking its 1/N share of the surplus, max(0, stock - capacity / 2) / N,
    rounded down to a harvest level (the smallest level when none is that small)."""

    def choose(self, view: AgentView) -> int:
        stock = float(view.summary.get("stock", 0.0))
        share = max(0.0, stock - self.game.config.capacity / 2) / self.game.n_agents
        amounts = self.game.amounts
        options = [a for a in view.legal_actions() if a < len(amounts)]
        if not options:
            return -1
        below = [a for a in options if float(amounts[a]) <= share + 1e-9]
        if below:
            return max(below, key=lambda a: (float(amounts[a]), -a))
        return min(options, key=lambda a: (float(amounts[a]), a))


# ----- bargaining ------------------------------------------------------------------------
class _BargainingSpec(PolicySpec):
    def check_game(self, game: "Game") -> None:
        _require_kind(game, "bargaining")


class _Bargainer(ScriptedPolicy):
    """Shared rule: accept an offer that is good enough; otherwise make (or counter with)
    the own offer; at the deadline, where no counter-offer is possible, reject.
    The policy reads the legal actions to know its role: only WAIT legal = not its turn;
    offers but no ACCEPT = first mover; ACCEPT legal = responding to `summary["offer"]`."""

    def __init__(self, spec: Any, game: "Game", agents: Sequence[AgentSetup], agent_ids: Sequence[str]) -> None:
        super().__init__(spec, game, agents, agent_ids)
        self.WAIT = getattr(game, "WAIT", 0)
        self.ACCEPT = getattr(game, "ACCEPT", 1)
        self.REJECT = getattr(game, "REJECT", 2)
        self.OFFER0 = getattr(game, "OFFER0", 3)
        self.units = int(game.config.units)

    @abstractmethod
    def my_offer(self) -> int:
        """Units this policy offers to the other player."""

    @abstractmethod
    def acceptable(self, offer: int) -> bool:
        """Whether an offer of `offer` units to this agent is good enough."""

    def choose(self, view: AgentView) -> int:
        legal = view.legal_actions()
        offer = view.summary.get("offer")
        if self.ACCEPT in legal and offer is not None and self.acceptable(int(offer)):
            return self.ACCEPT
        offers = [a for a in legal if a >= self.OFFER0]
        if offers:  # the legal offer nearest the wanted one
            wanted = self.OFFER0 + self.my_offer()
            return min(offers, key=lambda a: (abs(a - wanted), a))
        if self.REJECT in legal:
            return self.REJECT
        return self.WAIT


class FairBargainerSpec(_BargainingSpec):
    type: Literal["fair_bargainer"] = "fair_bargainer"
    threshold: float = Field(0.5, ge=0.0, le=1.0, description="Accept an offer of at least this fraction of the units.")


class FairBargainer(_Bargainer):
    """Fair bargainer: offer half the units (rounded up, so two fair bargainers agree at
    once), accept any offer of at least `threshold` x units, else counter-offer half; at
    the deadline reject an offer below the threshold."""

    def my_offer(self) -> int:
        return (self.units + 1) // 2

    def acceptable(self, offer: int) -> bool:
        return offer >= self.spec.threshold * self.units - 1e-9


class GreedyBargainerSpec(_BargainingSpec):
    type: Literal["greedy_bargainer"] = "greedy_bargainer"
    offer: int = Field(1, ge=0, description="Units offered to the other player (keeping the rest).")
    accept_at_least: int | None = Field(
        None, ge=0, description="Accept offers of at least this many units; default ceil(0.6 x units)."
    )

    def check_game(self, game: "Game") -> None:
        super().check_game(game)
        units = int(game.config.units)
        if self.offer > units:
            raise ValueError(f"offer {self.offer} is more than the {units} units on the table")
        if self.accept_at_least is not None and self.accept_at_least > units:
            raise ValueError(f"accept_at_least {self.accept_at_least} is more than the {units} units on the table")


class GreedyBargainer(_Bargainer):
    """Greedy bargainer (hard-liner): offer only `offer` units, accept only offers of at
    least `accept_at_least` units (default ceil(0.6 x units)), otherwise repeat its own
    offer; at the deadline reject anything below that."""

    def my_offer(self) -> int:
        return min(self.spec.offer, self.units)

    def acceptable(self, offer: int) -> bool:
        at_least = self.spec.accept_at_least
        if at_least is None:
            at_least = math.ceil(0.6 * self.units)
        return offer >= at_least


# ----- signalling ------------------------------------------------------------------------
class _SignallingSpec(PolicySpec):
    def check_game(self, game: "Game") -> None:
        _require_kind(game, "signalling")


class _Signaller(ScriptedPolicy):
    """Seat 0 speaks, the others listen; action 0 is WAIT and action 1 + k means word k
    (speaker) or target k (listener)."""

    def __init__(self, spec: Any, game: "Game", agents: Sequence[AgentSetup], agent_ids: Sequence[str]) -> None:
        super().__init__(spec, game, agents, agent_ids)
        self.WAIT = getattr(game, "WAIT", 0)
        self.speaker = getattr(game, "SPEAKER", 0)

    def choices(self, view: AgentView) -> list[int]:
        """The legal non-WAIT actions (empty on an idle turn)."""
        return [a for a in view.legal_actions() if a != self.WAIT]


class HonestSpeakerSpec(_SignallingSpec):
    type: Literal["honest_speaker"] = "honest_speaker"

    def check_game(self, game: "Game") -> None:
        super().check_game(game)
        words, targets = len(game.vocabulary), len(game.targets)
        if words < targets:
            raise ValueError(f"needs at least as many words as targets ({words} words, {targets} targets)")


class HonestSpeaker(_Signaller):
    """Honest speaker: as the speaker, say vocabulary[k] for target k (a fixed, truthful
    code). Placed in a listener's seat it picks uniformly among the legal targets."""

    def choose(self, view: AgentView) -> int:
        options = self.choices(view)
        if not options:
            return self.WAIT
        target = view.summary.get("target")
        if view.seat == self.speaker and target in self.game.targets:
            return 1 + list(self.game.targets).index(target)
        return self.pick(view, options)


class LiteralListenerSpec(_SignallingSpec):
    type: Literal["literal_listener"] = "literal_listener"


class LiteralListener(_Signaller):
    """Literal listener: take words at their face value. Pick the one target named by the
    latest inbox message that names exactly one target (natural language wins), else
    target k when the heard word is vocabulary[k], else a uniformly random legal target.
    It never reads `summary["target"]`. Placed in the speaker's seat it says a random word."""

    def choose(self, view: AgentView) -> int:
        options = self.choices(view)
        if not options or view.seat == self.speaker:
            return self.pick(view, options) if options else self.WAIT
        targets = list(self.game.targets)
        named = named_target(view.inbox, targets)
        if named is not None:
            return 1 + named
        word = view.summary.get("signal")
        vocabulary = list(self.game.vocabulary)
        if word in vocabulary and vocabulary.index(word) < len(targets):
            return 1 + vocabulary.index(word)
        return self.pick(view, options)


def named_target(inbox: Sequence["Message"], targets: Sequence[str]) -> int | None:
    """Index of the target named by the latest message that names exactly one target
    (whole words, any case; a name inside a longer mentioned name does not count)."""
    for message in reversed(inbox):
        text = getattr(message, "text", str(message))
        found = [
            name
            for name in targets
            if re.search(rf"(?<![A-Za-z0-9]){re.escape(name)}(?![A-Za-z0-9])", text, flags=re.IGNORECASE)
        ]
        found = [n for n in found if not any(n != m and n.lower() in m.lower() for m in found)]
        if len(found) == 1:
            return list(targets).index(found[0])
    return None
