"""Every scripted strategy's batched form acts exactly as its per-copy instances.

Property test over random histories: the strategy under test plays some seats of several
copies (each copy with its own policy seed) while the other seats play random actions
from outside; an engine with batched policies and one without must choose the same
action in every copy at every step (talk steps included: a round's draw is reused).
Self-play puts the strategy in every seat, where one per-copy instance (one random
stream) decides for several seats.
"""

from __future__ import annotations

import numpy as np
import pytest

from mas import registry
from mas.agents.scripted.base import ScriptedPolicy
from mas.episode import EpisodeEngine
from mas.scenario import load_scenario, parse_scenario

#: games to try each strategy in (it plays those whose capabilities it needs)
GAMES = ["prisoners_dilemma", "volunteers_dilemma", "public_goods", "commons", "bargaining", "matching_pennies"]
#: parameters a spec needs, and variations of the defaults, per strategy
PARAMS = {
    "fixed_action": [{"action": "D"}, {"action": "contribute 10 / punish player 2"}, {"action": "harvest 2"}, {"action": "reject"}, {"action": "C"}],
    "fixed_quota": [{"amount": 3.0}],
    "generous_tit_for_tat": [{}, {"generosity": 0.6}],
    "joss": [{}, {"sneakiness": 0.5}],
    "random": [{}, {"p": 0.3}],
    "conditional_cooperator": [{}, {"punish_free_riders": True, "initial": 0.5}],
    "tit_for_tat": [{}, {"tolerance": 0.4}],
    "grim_trigger": [{}, {"tolerance": 0.4}],
}
#: scripted strategies that read their inbox or speak: they decide copy by copy
PER_COPY_ONLY = {"honest_speaker", "literal_listener", "signal_teller"}


def scripted_names() -> list[str]:
    return sorted(n for n in registry.POLICIES if issubclass(registry.policy_class(n), ScriptedPolicy))


def scenario_for(game: str, spec: dict, seats: list[int], n: int, talk: bool):
    base = load_scenario(game).to_dict()
    agents = [{"id": f"a{i}", "policy": spec if i in seats else "random"} for i in range(n)]
    base.update(agents=agents, rounds=9)
    base.pop("rounds_continuation", None)
    if talk:
        base["comms"] = {"mode": "broadcast", "talk_rounds": 1}
    try:
        return parse_scenario(base)
    except Exception:  # the strategy (or the filler) does not play this game
        return None


def play(scenario, external: list[str], batched: bool, seed: int) -> list[np.ndarray]:
    copies = 5
    engine = EpisodeEngine(scenario, copies, external, batch_policies=batched)
    engine.reset(np.random.default_rng(seed), episodes=[0] * copies, seeds=[seed + 17 * c for c in range(copies)])
    moves = np.random.default_rng(seed + 1)
    out = []
    while engine.active.any():
        outside = moves.integers(0, engine.info.num_actions, size=(copies, len(external)))
        t = engine.step(outside)
        if not t.talking:
            out.append(np.where(t.active[:, None], t.actions, -9))
        else:  # what batched rules decided in a talk step is not executed: compare the next one
            out.append(t.rounds.copy())
    return out


def test_every_scripted_strategy_but_the_talkers_has_a_batched_form():
    names = scripted_names()
    batched = {n for n in names if registry.policy_class(n).choose_batch is not None}
    assert set(names) - batched == PER_COPY_ONLY


@pytest.mark.parametrize("name", sorted(set(scripted_names()) - PER_COPY_ONLY))
def test_batched_act_equals_per_copy_act_on_random_histories(name):
    played = 0
    for game in GAMES:
        n = 3 if game in ("volunteers_dilemma", "public_goods", "commons") else 2
        for params in PARAMS.get(name, [{}]):
            spec = {"type": name, **params}
            for seats, talk in (([0], False), (list(range(n)), True)):
                scenario = scenario_for(game, spec, seats, n, talk)
                if scenario is None:
                    continue
                external = [a for i, a in enumerate(scenario.agent_ids) if i not in seats]
                for seed in (3, 11):
                    one = play(scenario, external, batched=False, seed=seed)
                    many = play(scenario, external, batched=True, seed=seed)
                    assert len(one) == len(many)
                    for step, (a, b) in enumerate(zip(one, many)):
                        np.testing.assert_array_equal(a, b, err_msg=f"{spec} in {game}, seats {seats}, step {step}")
                played += 1
    assert played >= 2  # it played in at least one game, alone and in self-play


def test_batched_rules_restart_with_their_copies_under_auto_reset():
    # training's vector env: copies restart one by one, each new episode reseeds its streams
    base = load_scenario("prisoners_dilemma").to_dict()
    base.update(rounds={"continuation": 0.7, "max": 9},
                agents=[{"id": "me", "policy": "always_cooperate"}, {"id": "them", "policy": {"type": "joss", "sneakiness": 0.4}}])
    scenario = parse_scenario(base)
    runs = []
    for batched in (False, True):
        engine = EpisodeEngine(scenario, 6, ["me"], seed=5, auto_reset=True, batch_policies=batched)
        engine.reset(np.random.default_rng(2))
        moves = np.random.default_rng(3)
        runs.append([engine.step(moves.integers(0, 2, size=(6, 1))) for _ in range(60)])
    restarts = sum(int(t.done.sum()) for t in runs[0])
    assert restarts > 20
    for one, many in zip(*runs):
        np.testing.assert_array_equal(one.actions, many.actions)
        np.testing.assert_array_equal(one.episodes, many.episodes)


def test_streams_hashed_together_or_one_by_one_get_the_same_seeds(monkeypatch) -> None:
    """A rule's streams that start drawing in one step get their seeds in one numpy hash when
    there are many (`HASHED_TOGETHER`), else one `child_seed` each: the same values."""
    import mas.policy_batch as policy_batch
    from mas.sweep import play_copies

    scenario = load_scenario("scenarios/prisoners_dilemma.yaml")
    data = scenario.model_dump()
    data["agents"][1]["policy"] = {"type": "random"}
    scenario = type(scenario).model_validate(data)
    seeds = list(range(40))

    def played(together: int) -> np.ndarray:
        monkeypatch.setattr(policy_batch, "HASHED_TOGETHER", together)
        engine = EpisodeEngine(scenario, len(seeds), batch_policies=True)
        return play_copies(engine, seeds, keep_actions=True).actions

    together, one_by_one = played(1), played(10**6)
    assert np.array_equal(together, one_by_one)
    assert len({tuple(copy) for copy in together[:, :, 1].T.tolist()}) > 30  # the copies' draws differ
