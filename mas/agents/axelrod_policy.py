"""Any strategy of the `axelrod` library as a mas policy (the `axelrod` extra).

`policy: {type: axelrod, strategy: "Tit For Tat"}` enters the library's strategy of that
name (`axelrod.all_strategies`, by its `name`) into a scenario or a tournament; it plays
through mas's engine and store like any other policy.

How it plays: one axelrod `Player` per agent (the engine builds one policy per game copy,
so also one per copy), made fresh by `reset`. Each round the player is given the previous
round as `Match.simultaneous_play` gives it: its own and the partner's last actions (the
game's cooperate action is axelrod's C, the defect action its D) are appended to its
history and to a mirror `Player` standing for the partner, then `strategy(mirror)` picks
the move. The move is decided once per round and reused by talk steps, so a stochastic
strategy draws once a round. The player is told the match attributes axelrod's `Match`
gives: the stage game (R, S, T, P) read from the game's payoff table, and the match
length from the spec (`match_length`; -1: unknown).

Randomness: stochastic strategies are seeded by `Player.set_seed` from the policy's reset
seed and the agent's index, so a run is reproducible from its seed (the draws differ from
those of an `axelrod.Match` with some seed: the two are equal in distribution, and
exactly equal for deterministic strategies).

What it plays: two-player simultaneous games whose only actions are a cooperate and a
defect action (`check_game`). Strategies that read or change their opponent's code (the
library's `inspects_source`/`manipulates_*` classifiers, e.g. Darwin) are refused: a mas
partner is only its actions.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field, field_validator

from mas.agents.base import AgentSetup, AgentView, Decision, Policy, PolicySpec, RoundMessages
from mas.agents.scripted.base import legal_or_first

if TYPE_CHECKING:
    from mas.games.base import GameInfo

_INSTALL = "pip install 'mas-sim[axelrod]'"
_CHEATS = ("inspects_source", "manipulates_source", "manipulates_state")


def _axelrod() -> Any:
    """The `axelrod` module, or a one-line ValueError naming the extra."""
    try:
        import axelrod
    except ImportError:
        raise ValueError(f"the axelrod policy needs the 'axelrod' package: {_INSTALL}") from None
    return axelrod


@functools.lru_cache(maxsize=1)
def _strategies() -> dict[str, type]:
    """Strategy name -> class, over `axelrod.all_strategies`."""
    return {cls.name: cls for cls in _axelrod().all_strategies}


def strategy_class(name: str) -> type:
    """The axelrod strategy class named `name`; a one-line ValueError (with a did-you-mean
    over the library's names) when there is none or it cannot play in mas."""
    known = _strategies()
    if name not in known:
        import difflib

        lowered = {n.lower(): n for n in known}
        close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
        hint = f" (did you mean '{lowered[close[0]]}'?)" if close else ""
        raise ValueError(f"unknown axelrod strategy '{name[:80]}'{hint}; the names are those of axelrod.all_strategies "
                         f"({len(known)} strategies)")
    cls = known[name]
    classifier = _axelrod().Classifiers
    with warnings.catch_warnings():  # the library warns when classifying a class, not an instance
        warnings.simplefilter("ignore")
        cheats = any(classifier[key](cls) for key in _CHEATS)
    if cheats:
        raise ValueError(f"axelrod strategy '{name}' reads or changes its opponent's code; a mas partner is only its actions")
    return cls


class AxelrodSpec(PolicySpec):
    """A strategy of the `axelrod` library, by name."""

    type: Literal["axelrod"] = "axelrod"
    strategy: str = Field(max_length=200, description="The strategy's name in the axelrod library, e.g. 'Tit For Tat'.")
    match_length: int = Field(
        -1,
        ge=-1,
        le=1_000_000,
        description="The match length the strategy is told (axelrod's `length` match attribute); "
        "-1: unknown, as in a match with a random end. Set it to the rounds to reproduce a "
        "tournament whose players knew the length.",
    )

    @field_validator("strategy")
    @classmethod
    def _known(cls, value: str) -> str:
        strategy_class(value)
        return value

    def check_game(self, game: "GameInfo") -> None:
        caps = game.capabilities
        if game.n_agents != 2 or game.num_actions != 2 or not caps.has_cooperate_defect or not caps.simultaneous:
            raise ValueError(f"axelrod strategies play two-player simultaneous games whose only actions are cooperate "
                             f"and defect (this {game.kind} game has {game.n_agents} players and {game.num_actions} actions)")


class AxelrodPolicy(Policy):
    """A strategy of the `axelrod` library (the `axelrod` extra), by name."""

    def __init__(self, spec: Any, game: "GameInfo", agents: Sequence[AgentSetup], agent_ids: Sequence[str]) -> None:
        super().__init__(spec, game, agents, agent_ids)
        self._axl = _axelrod()
        self._cls = strategy_class(spec.strategy)
        self.C, self.D = game.capabilities.cooperate, game.capabilities.defect
        self._game = self._stage_game(game)
        self.reset(0)

    def _stage_game(self, game: "GameInfo") -> Any:
        """axelrod's Game (R, S, T, P) from seat 0's payoffs; axelrod's default without a table."""
        table = game.stage_payoffs
        if table is None:
            return self._axl.DefaultGame
        c, d = self.C, self.D
        r, s, t, p = (float(table[a][b][0]) for a, b in ((c, c), (c, d), (d, c), (d, d)))
        return self._axl.Game(r=r, s=s, t=t, p=p)

    def reset(self, seed: int) -> None:
        self._messages = RoundMessages(self.spec.message)
        # agent -> [player, mirror of the partner, round decided, move decided]
        self._state: dict[str, list[Any]] = {}
        stochastic = self._axl.Classifiers["stochastic"]
        for index, setup in enumerate(self.agents):
            player, mirror = self._cls(), self._axl.Player()
            for p in (player, mirror):
                p.set_match_attributes(length=self.spec.match_length, game=self._game)
            if stochastic(player):
                player.set_seed(int(np.random.SeedSequence([seed, index]).generate_state(1)[0]))
            self._state[setup.agent] = [player, mirror, -1, None]

    def _partner(self, agent: str) -> str:
        return next(a for a in self.agent_ids if a != agent)

    def _move(self, view: AgentView) -> int:
        """This round's move, decided once (talk steps reuse it)."""
        state = self._state[view.agent]
        player, mirror, decided, move = state
        if decided == view.round:
            return move
        if view.last_actions is not None:  # the round before: what Match.simultaneous_play records
            a = self._axl.Action
            own = a.C if view.last_actions[view.agent] == self.C else a.D
            other = a.C if view.last_actions[self._partner(view.agent)] == self.C else a.D
            player.update_history(own, other)
            mirror.update_history(other, own)
        chosen = player.strategy(mirror)
        move = self.C if chosen == self._axl.Action.C else self.D
        state[2], state[3] = view.round, move
        return move

    def act(self, views: Sequence[AgentView]) -> list[Decision]:
        decisions = []
        for view in views:
            action = legal_or_first(view, self._move(view))
            decisions.append(Decision(action, self._messages.say(view, action)))
        return decisions
