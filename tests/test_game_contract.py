"""Contract tests over the game registry (not only over scenario files): every registered
game declares consistent capabilities, hides private summary keys from other seats, gives
policies a read-only description, and passes PettingZoo's API test in an env."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test

import mas
from mas import registry
from mas.games.base import Game, GameInfo
from mas.scenario import parse_scenario

KINDS = sorted(registry.GAMES)


def example_config(kind: str):
    model = registry.game_config_model(kind)
    return model.example() if hasattr(model, "example") else model()


def example_games(kind: str) -> list[Game]:
    """The game with its default config, for every player count in 2..3 it accepts."""
    games = []
    for n in (2, 3):
        try:
            games.append(registry.make_game(example_config(kind), n))
        except ValueError:
            continue
    assert games, f"{kind}: no example game for 2 or 3 players"
    return games


def states(game: Game, steps: int = 4) -> list[dict]:
    """States of 4 copies over a few steps of uniformly random legal play."""
    rng = np.random.default_rng(0)
    state = game.reset(4, rng)
    out = [state]
    for _ in range(steps):
        mask = game.action_mask(state)
        actions = np.array([[rng.choice(np.flatnonzero(m)) for m in copy] for copy in mask])
        state = game.step(state, actions, rng).state
        out.append(state)
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_capabilities_are_consistent(kind: str) -> None:
    for game in example_games(kind):
        caps = game.capabilities
        for index in (caps.cooperate, caps.defect):
            assert index is None or 0 <= index < game.num_actions
        assert len(caps.roles) in (0, game.n_agents)
        for s in states(game):
            summary = game.summary(s, 0)
            assert set(caps.private) <= set(summary), f"{kind}: private keys missing from the summary"
            cooperation = game.cooperation(s, np.zeros((4, game.n_agents), dtype=np.int64))
            assert (cooperation is not None) == caps.cooperation_measure
        optimum = game.social_optimum()
        assert (optimum is not None) == caps.social_optimum
        info = game.info()
        assert info.kind == kind and len(info.action_names) == len(info.rules) == len(info.aliases) == game.n_agents
        assert info.task.strip(), f"{kind}: no task sentence"
        if caps.symmetric:  # exchanging seats changes nothing: the same action names for every seat
            assert len(set(info.action_names)) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_views_hide_private_keys_from_other_seats(kind: str) -> None:
    for game in example_games(kind):
        private = game.capabilities.private
        for s in states(game):
            full = game.summary(s, 0)
            for seat in range(game.n_agents):
                view = game.view_summary(s, 0, seat)
                for key, seats in private.items():
                    assert (key in view) == (seat in seats), f"{kind}: seat {seat} and private key {key}"
                assert {k: v for k, v in full.items() if k not in private} == {k: v for k, v in view.items() if k not in private}


def test_the_signalling_target_is_private_to_the_speaker() -> None:
    # the registry-wide test above needs a game that declares a private key to mean anything
    assert any(registry.make_game(example_config(k), 2).capabilities.private for k in KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_pettingzoo_parallel_api_on_every_game(kind: str) -> None:
    n = example_games(kind)[0].n_agents
    data = {
        "name": f"contract_{kind}", "game": example_config(kind).model_dump(mode="json"), "rounds": 6,
        "agents": [{"id": f"a{i}", "policy": "random"} for i in range(n)],
        "comms": {"mode": "broadcast", "talk_rounds": 1, "max_length": 40},
    }
    parallel_api_test(mas.make_env(parse_scenario(data)), num_cycles=30)


def _reachable(value, depth: int = 0, seen: set | None = None):
    """Every object reachable from `value` through attributes, containers and closures."""
    seen = set() if seen is None else seen
    if id(value) in seen or depth > 6:
        return
    seen.add(id(value))
    yield value
    children: list = []
    if isinstance(value, dict) or hasattr(value, "items") and callable(value.items):
        try:
            children = [*value.keys(), *value.values()]
        except TypeError:
            children = []
    elif isinstance(value, (list, tuple, set, frozenset)):
        children = list(value)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        children = [getattr(value, f.name) for f in dataclasses.fields(value)]
    if hasattr(value, "func") and hasattr(value, "args"):  # functools.partial
        children += [value.func, *value.args, *value.keywords.values()]
    if hasattr(value, "__self__"):  # a bound method holds its object
        children.append(value.__self__)
    if getattr(value, "__closure__", None):
        children += [cell.cell_contents for cell in value.__closure__]
    for child in children:
        yield from _reachable(child, depth + 1, seen)


@pytest.mark.parametrize("kind", KINDS)
def test_the_info_a_policy_gets_holds_no_rule_engine(kind: str) -> None:
    for game in example_games(kind):
        info = game.info()
        assert isinstance(info, GameInfo)
        leaked = [type(obj).__name__ for obj in _reachable(info) if isinstance(obj, Game) or isinstance(obj, np.ndarray)]
        assert not leaked, f"{kind}: GameInfo reaches {leaked}"
        with pytest.raises(dataclasses.FrozenInstanceError):
            info.kind = "other"  # type: ignore[misc]


def test_a_policy_is_built_with_the_info_not_the_game() -> None:
    from mas.episode import EpisodeEngine

    for group in EpisodeEngine(mas.load_scenario("signalling")).groups[0]:
        assert isinstance(group.policy.info, GameInfo)
        assert not any(isinstance(v, Game) for v in vars(group.policy).values())
