"""Copies of the engine with one generator each play exactly the episodes a batch of one
plays with those generators; a group's instances in all copies decide in one `act_many`."""

from __future__ import annotations

import copy

import numpy as np

from mas.episode import EpisodeEngine
from mas.scenario import parse_scenario

SIGNALS = {
    "name": "signals_continuation",
    "game": {"kind": "private_signals", "signals": ["left", "right"]},  # draws signals every round
    "rounds": {"continuation": 0.7, "max": 12},  # and a continuation draw per copy
    "comms": {"mode": "broadcast", "talk_rounds": 1, "max_length": 20},
    "agents": [{"id": "ann", "policy": {"type": "random", "message": "r$round"}}, {"id": "bo", "policy": "random"}],
}


def play(engine: EpisodeEngine, rng, episodes: list[int]) -> list[list[tuple]]:
    """Per copy: every action step's (actions, rewards, signals) and every message, in order."""
    if isinstance(rng, list):  # one generator per copy
        engine.reset(rng[0], episodes=episodes, rngs=rng)
    else:
        engine.reset(rng, episodes=episodes)
    out: list[list[tuple]] = [[] for _ in episodes]
    while engine.active.any():
        before = engine.state["signal"].copy()
        moved = engine.step()
        for c in np.flatnonzero(moved.active):
            said = tuple((m.sender, m.text) for m in moved.messages[c])
            if moved.talking:
                out[c].append(("talk", said))
            else:
                out[c].append((tuple(moved.actions[c]), tuple(moved.rewards[c]), tuple(before[c]), said))
    return out


def test_copies_with_own_generators_match_one_at_a_time() -> None:
    scenario = parse_scenario(copy.deepcopy(SIGNALS), source="test")
    episodes = [3, 4, 5, 6]
    seeds = [11, 12, 13, 14]
    alone = [play(EpisodeEngine(scenario, seed=2), np.random.default_rng(s), [e])[0] for s, e in zip(seeds, episodes)]
    together = play(EpisodeEngine(scenario, batch_size=4, seed=2), [np.random.default_rng(s) for s in seeds], episodes)
    assert together == alone
    assert len({len(t) for t in alone}) > 1  # the copies really end at different rounds


def test_the_groups_of_one_policy_class_decide_for_every_live_copy_in_one_call(monkeypatch) -> None:
    from mas import registry
    from mas.agents.scripted.any_game import RandomPolicy

    calls: list[int] = []

    class CountingRandom(RandomPolicy):
        @classmethod
        def act_many(cls, policies, views):
            calls.append(len(policies))
            return super().act_many(policies, views)

    real = registry.policy_class
    monkeypatch.setattr(registry, "policy_class", lambda name: CountingRandom if name == "random" else real(name))
    engine = EpisodeEngine(parse_scenario(copy.deepcopy(SIGNALS), source="test"), batch_size=3)
    rngs = [np.random.default_rng(s) for s in (1, 2, 3)]
    engine.reset(rngs[0], rngs=rngs)
    engine.step()
    assert calls == [6]  # two groups (ann's spec differs from bo's) of one class, all three copies each: one call
