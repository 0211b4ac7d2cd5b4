"""Every scripted strategy carries an Axelrod-style classifier, and what it declares holds:
its `needs` decide which games it plays (whatever their kind), a deterministic strategy
plays the same under every seed, and a strategy of memory depth d ignores what happened
more than d rounds ago."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mas import registry
from mas.agents.base import AgentSetup, AgentView
from mas.agents.scripted import Classifier, ScriptedPolicy
from mas.games.base import Game

SCRIPTED = [name for name, (_, cls, _) in registry.POLICIES.items() if cls.startswith("mas.agents.scripted.")]
#: required parameters of the strategies that have some
PARAMS = {"fixed_action": {"action": "C"}, "fixed_quota": {"amount": 3.0}}
#: a game for every family: the registry's example configs
GAMES = {kind: registry.game_config_model(kind) for kind in registry.GAMES}


def example_game(kind: str, n: int = 2) -> Game:
    model = GAMES[kind]
    return registry.make_game(model.example() if hasattr(model, "example") else model(), n)


def playable_game(name: str) -> Game:
    """The first registered game (2 players) the strategy's spec accepts."""
    spec = registry.policy_spec_model(name)(type=name, **PARAMS.get(name, {}))
    for kind in sorted(GAMES):
        game = example_game(kind)
        try:
            spec.check_game(game.info())
        except ValueError:
            continue
        return game
    raise AssertionError(f"{name} plays no registered game")


def random_views(game: Game, rounds: int, seed: int, seat: int = 0) -> list[AgentView]:
    """The views of `seat` over `rounds` steps of uniformly random legal play."""
    rng = np.random.default_rng(seed)
    ids = [f"p{i}" for i in range(game.n_agents)]
    state = game.reset(1, rng)
    views, last = [], None
    for r in range(rounds):
        mask = game.action_mask(state)[0]
        views.append(AgentView(agent=ids[seat], seat=seat, observation=game.observe(state)[0, seat], action_mask=mask[seat],
                               action_names=tuple(game.action_names(seat)), round=r, last_actions=last,
                               summary=game.view_summary(state, 0, seat)))
        actions = np.array([[rng.choice(np.flatnonzero(m)) for m in mask]])
        state = game.step(state, actions, rng).state
        last = {ids[s]: int(actions[0, s]) for s in range(game.n_agents)}
    return views


def policy(name: str, game: Game, seat: int = 0) -> ScriptedPolicy:
    spec = registry.policy_spec_model(name)(type=name, **PARAMS.get(name, {}))
    ids = [f"p{i}" for i in range(game.n_agents)]
    return registry.policy_class(name)(spec, game.info(), [AgentSetup(ids[seat], seat)], ids)


def actions(p: ScriptedPolicy, views: list[AgentView], seed: int) -> list[int]:
    p.reset(seed)
    return [p.act([v])[0].action for v in views]


@pytest.mark.parametrize("name", SCRIPTED)
def test_every_scripted_strategy_declares_a_classifier(name: str) -> None:
    cls = registry.policy_class(name)
    assert isinstance(getattr(cls, "classifier", None), Classifier), f"{name} declares no classifier"
    c = cls.classifier
    assert c.memory_depth >= 0 and (math.isinf(c.memory_depth) or c.memory_depth == int(c.memory_depth))
    assert c.describe().startswith("memory ")
    playable_game(name)  # its needs are met by some registered game


@pytest.mark.parametrize("name", [n for n in SCRIPTED if not registry.policy_class(n).classifier.stochastic])
def test_deterministic_strategies_play_the_same_under_every_seed(name: str) -> None:
    game = playable_game(name)
    for seat in range(game.n_agents):
        for history in range(3):
            views = random_views(game, 12, seed=history, seat=seat)
            p = policy(name, game, seat)
            assert actions(p, views, seed=1) == actions(p, views, seed=2) == actions(p, views, seed=3)


@pytest.mark.parametrize("name", ["random", "generous_tit_for_tat", "joss"])
def test_stochastic_strategies_do_vary_with_the_seed(name: str) -> None:
    assert registry.policy_class(name).classifier.stochastic
    game = playable_game(name)
    views = random_views(game, 40, seed=0)
    p = policy(name, game)
    assert len({tuple(actions(p, views, seed)) for seed in range(5)}) > 1


DILEMMA = [n for n in SCRIPTED if registry.policy_class(n).classifier.family == "dilemma"
           and not registry.policy_class(n).classifier.stochastic and not math.isinf(registry.policy_class(n).classifier.memory_depth)]


@pytest.mark.parametrize("name", DILEMMA)
def test_memory_depth_bounds_what_a_strategy_remembers(name: str) -> None:
    """Two histories that agree on the last `memory_depth` rounds lead to the same move."""
    depth = int(registry.policy_class(name).classifier.memory_depth)
    game = example_game("normal_form")
    rng = np.random.default_rng(7)
    for _ in range(20):
        early_a, early_b = rng.integers(0, 2, (2, 8, 2))
        recent = rng.integers(0, 2, (depth, 2))
        finals = []
        for early in (early_a, early_b):
            joint = np.concatenate([early, recent])
            views = [AgentView(agent="p0", seat=0, observation=np.zeros(game.obs_dim, np.float32),
                               action_mask=np.ones(2, np.int8), action_names=("C", "D"), round=r,
                               last_actions=None if r == 0 else {"p0": int(joint[r - 1, 0]), "p1": int(joint[r - 1, 1])})
                     for r in range(len(joint) + 1)]
            finals.append(actions(policy(name, game), views, seed=0)[-1])
        assert finals[0] == finals[1], f"{name}: the move depends on rounds older than {depth}"


def test_a_strategy_with_infinite_memory_does_remember() -> None:
    # the check above would pass for grim trigger too if its depth were wrong; its depth is infinite
    game = example_game("normal_form")
    defect_once = [AgentView(agent="p0", seat=0, observation=np.zeros(game.obs_dim, np.float32), action_mask=np.ones(2, np.int8),
                             action_names=("C", "D"), round=r,
                             last_actions=None if r == 0 else {"p0": 0, "p1": 1 if r == 1 else 0}) for r in range(10)]
    assert actions(policy("grim_trigger", game), defect_once, 0)[-1] == 1  # still punishing 9 rounds later
    assert actions(policy("tit_for_tat", game), defect_once, 0)[-1] == 0  # memory 1: forgiven


def test_check_game_comes_from_needs_not_from_the_kind() -> None:
    from mas.agents.scripted import COOPERATE_DEFECT

    assert COOPERATE_DEFECT in registry.policy_class("tit_for_tat").classifier.needs
    volunteer = example_game("volunteers_dilemma", 3)
    for name in ("tit_for_tat", "grim_trigger", "pavlov", "always_defect"):
        registry.policy_spec_model(name)(type=name).check_game(volunteer.info())
    with pytest.raises(ValueError, match="needs a game that offers amounts and capacity"):
        registry.policy_spec_model("fixed_quota")(type="fixed_quota", amount=1).check_game(volunteer.info())
