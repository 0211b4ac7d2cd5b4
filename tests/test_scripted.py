"""Scripted policies: golden transcripts built by hand from the textbook definitions."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

from mas import registry
from mas.agents import scripted as S
from mas.agents.base import AgentSetup, AgentView
from mas.episode import EpisodeEngine
from mas.games.base import Capabilities, GameInfo
from mas.games.normal_form import NormalFormConfig, NormalFormGame
from mas.scenario import parse_scenario

PD_PAYOFFS = {"C,C": [3, 3], "C,D": [0, 5], "D,C": [5, 0], "D,D": [1, 1]}


def pd_game(n: int = 2) -> NormalFormGame:
    if n == 2:
        return NormalFormGame(NormalFormConfig(actions=["C", "D"], payoffs=PD_PAYOFFS, cooperate="C", defect="D"), 2)
    # N-player PD: a table is only needed for rewards; use a payoff that counts cooperators
    table = np.zeros((2,) * n + (n,))
    for idx in np.ndindex(*(2,) * n):
        cooperators = idx.count(0)
        table[idx] = [2 * cooperators / n + (1 if a == 1 else 0) for a in idx]
    return NormalFormGame(NormalFormConfig(actions=["C", "D"], payoffs=table.tolist(), cooperate="C", defect="D"), n)


def build(name: str, game, ids: list[str], seats: list[int], **params):
    spec = registry.policy_spec_model(name)(type=name, **params)
    spec.check_game(game.info())
    cls = registry.policy_class(name)
    return cls(spec, game.info(), [AgentSetup(ids[s], s) for s in seats], ids)


def view_for(game, state, seat, ids, round_, last_actions, last_rewards, talking=False, inbox=()):
    return AgentView(
        agent=ids[seat],
        seat=seat,
        observation=game.observe(state)[0, seat],
        action_mask=game.action_mask(state)[0, seat],
        action_names=tuple(game.action_names(seat)),
        round=round_,
        talking=talking,
        inbox=inbox,
        last_actions=last_actions,
        last_rewards=last_rewards,
        summary=game.view_summary(state, 0, seat),
    )


def play(game, policies, steps: int, *, seed: int = 0, talk: bool = False, inbox=None):
    """Drive `game` (batch of one) on the episode engine with one policy per seat (played
    from outside, as a PettingZoo user would) for `steps` action steps.

    Returns the action names played, per seat, and the decisions. With `talk`, every
    action step is preceded by a talk step of the same round, whose choice must match.
    `inbox(round)` may replace what each seat finds in its inbox at the action step.
    """
    n = game.n_agents
    ids = [f"p{i}" for i in range(n)]
    scenario = parse_scenario({
        "name": "harness", "game": game.config.model_dump(mode="json"), "rounds": steps,
        "agents": [{"id": a, "policy": "random"} for a in ids],
        "comms": {"mode": "broadcast" if talk else "off", "talk_rounds": 1},
    })
    engine = EpisodeEngine(scenario, external=ids)
    for policy in policies:
        policy.reset(seed)
    engine.reset(np.random.default_rng(seed), episodes=[0])
    played: list[list[str]] = [[] for _ in range(n)]
    decisions, said = [], None
    while engine.active[0]:
        views = engine.views(0)
        if not engine.talking and inbox:
            views = [dataclasses.replace(view, inbox=box) for view, box in zip(views, inbox(int(engine.rounds[0])))]
        step = [policies[s].act([views[s]])[0] for s in range(n)]
        actions = np.array([[d.action for d in step]], dtype=np.int64)
        if engine.talking:
            said = step
            engine.step(actions, [{a: d.message for a, d in zip(ids, step)}])
            continue
        if said is not None:
            assert [d.action for d in said] == [d.action for d in step]
        decisions.append(step)
        assert all(engine.mask[0, s, a] for s, a in enumerate(actions[0])), "illegal action"
        for s in range(n):
            played[s].append(game.action_names(s)[actions[0, s]])
        engine.step(actions)
    return played, decisions


def duel(a: str, b: str, rounds: int = 6, a_params=None, b_params=None, **kw) -> tuple[str, str]:
    """Two PD strategies against each other; the transcripts as strings like "CCDC"."""
    game = pd_game()
    ids = ["p0", "p1"]
    pa = build(a, game, ids, [0], **(a_params or {}))
    pb = build(b, game, ids, [1], **(b_params or {}))
    played, _ = play(game, [pa, pb], rounds, **kw)
    return "".join(played[0]), "".join(played[1])


# ----- the registry ------------------------------------------------------------------
def test_every_registered_policy_exists_with_a_typed_spec():
    for name, (spec_path, class_path, _extra) in registry.POLICIES.items():
        spec_model = registry.policy_spec_model(name)
        assert spec_model.model_fields["type"].default == name
        if class_path.startswith("mas.agents.scripted."):
            assert issubclass(registry.policy_class(name), S.ScriptedPolicy)
        for field, info in spec_model.model_fields.items():
            if field != "type":
                assert info.description, f"{name}.{field} has no description"


# ----- prisoner's dilemma golden transcripts --------------------------------------------
@pytest.mark.parametrize(
    "a, b, expected",
    [
        ("tit_for_tat", "alternator", ("CCDCDC", "CDCDCD")),
        ("grim_trigger", "alternator", ("CCDDDD", "CDCDCD")),
        ("tit_for_two_tats", "always_defect", ("CCDDDD", "DDDDDD")),
        ("tit_for_two_tats", "alternator", ("CCCCCC", "CDCDCD")),
        ("pavlov", "always_defect", ("CDCDCD", "DDDDDD")),
        ("pavlov", "pavlov", ("CCCCCC", "CCCCCC")),
        ("pavlov", "suspicious_tit_for_tat", ("CDDCDD", "DCDDCD")),  # a 3-cycle
        ("suspicious_tit_for_tat", "tit_for_tat", ("DCDCDC", "CDCDCD")),
        ("tit_for_tat", "tit_for_tat", ("CCCCCC", "CCCCCC")),
        ("always_cooperate", "always_defect", ("CCCCCC", "DDDDDD")),
        ("grim_trigger", "always_cooperate", ("CCCCCC", "CCCCCC")),
        ("tit_for_tat", "defect_once", ("CCCDCC", "CCDCCC")),  # one defection in round 2, answered once
        ("grim_trigger", "defect_once", ("CCCDDD", "CCDCCC")),
    ],
)
def test_pd_golden_transcripts(a, b, expected):
    assert duel(a, b) == expected


def test_talk_steps_do_not_change_play_or_memory():
    # a talk step before every action step must not double-count history (TFTT, grim)
    assert duel("tit_for_two_tats", "always_defect", talk=True) == ("CCDDDD", "DDDDDD")
    assert duel("grim_trigger", "alternator", talk=True) == ("CCDDDD", "CDCDCD")
    # and a random strategy announces in the talk step what it then plays (asserted in play)
    duel("random", "generous_tit_for_tat", rounds=40, b_params={"generosity": 0.5}, talk=True, seed=3)


def test_generous_tit_for_tat_extremes():
    assert duel("generous_tit_for_tat", "alternator", a_params={"generosity": 0.0}) == duel("tit_for_tat", "alternator")
    assert duel("generous_tit_for_tat", "always_defect", a_params={"generosity": 1.0})[0] == "CCCCCC"
    # in between it sometimes forgives and sometimes retaliates
    moves = duel("generous_tit_for_tat", "always_defect", rounds=200, a_params={"generosity": 0.3}, seed=1)[0]
    assert moves[0] == "C" and 0.15 < moves[1:].count("C") / 199 < 0.45


def test_random_is_seeded_and_roughly_p():
    one = duel("random", "always_cooperate", rounds=2000, a_params={"p": 0.3}, seed=7)[0]
    two = duel("random", "always_cooperate", rounds=2000, a_params={"p": 0.3}, seed=7)[0]
    other = duel("random", "always_cooperate", rounds=2000, a_params={"p": 0.3}, seed=8)[0]
    assert one == two and one != other
    assert abs(one.count("C") / 2000 - 0.3) < 0.04
    assert duel("random", "always_cooperate", a_params={"p": 1.0})[0] == "CCCCCC"
    assert duel("random", "always_cooperate", a_params={"p": 0.0})[0] == "DDDDDD"


def test_reset_clears_memory():
    game = pd_game()
    ids = ["p0", "p1"]
    grim = build("grim_trigger", game, ids, [0])
    d = build("always_defect", game, ids, [1])
    assert "".join(play(game, [grim, d], 3)[0][0]) == "CDD"
    assert "".join(play(game, [grim, d], 3)[0][0]) == "CDD"  # play() resets: starts with C again


def test_one_policy_decides_for_many_agents_at_once():
    game = pd_game(3)
    ids = ["p0", "p1", "p2"]
    tft = build("tit_for_tat", game, ids, [0, 1, 2])
    state = game.reset(1, np.random.default_rng(0))
    last = {"p0": 0, "p1": 0, "p2": 1}
    views = [view_for(game, state, s, ids, 1, last, None) for s in range(3)]
    # p0 and p1 see p2's defection; p2 sees two cooperators
    assert [d.action for d in tft.act(views)] == [1, 1, 0]


def test_n_player_tit_for_tat_with_tolerance():
    # p0 plays TFT against an always-defector and an always-cooperator: half the others defect
    game = pd_game(3)
    ids = ["p0", "p1", "p2"]
    for tolerance, expected in [(0.0, "CDDD"), (0.4, "CDDD"), (0.5, "CCCC"), (0.9, "CCCC")]:
        policies = [
            build("tit_for_tat", game, ids, [0], tolerance=tolerance),
            build("always_defect", game, ids, [1]),
            build("always_cooperate", game, ids, [2]),
        ]
        played, _ = play(game, policies, 4)
        assert "".join(played[0]) == expected, tolerance
    # grim trigger with two defectors out of two: defects whatever the tolerance below 1
    policies = [build("grim_trigger", game, ids, [0], tolerance=0.9)] + [build("always_defect", game, ids, [1, 2])] * 2
    assert "".join(play(game, policies, 3)[0][0]) == "CDD"


def test_templated_message():
    game = pd_game()
    ids = ["p0", "p1"]
    a = build("alternator", game, ids, [0], message="round $round: $action by $agent ($other)")
    b = build("always_defect", game, ids, [1])
    _, decisions = play(game, [a, b], 2)
    assert [step[0].message for step in decisions] == ["round 1: C by p0 ($other)", "round 2: D by p0 ($other)"]
    assert decisions[0][1].message == ""


def test_pd_strategies_reject_games_without_cooperate_and_defect():
    plain = NormalFormGame(NormalFormConfig(actions=["C", "D"], payoffs=PD_PAYOFFS), 2)
    for name in ["tit_for_tat", "always_cooperate", "pavlov", "alternator", "grim_trigger"]:
        with pytest.raises(ValueError, match="needs a game that offers (distinct cooperate and defect|a cooperate) action"):
            registry.policy_spec_model(name)(type=name).check_game(plain.info())
    only_c = NormalFormGame(NormalFormConfig(actions=["C", "D"], payoffs=PD_PAYOFFS, cooperate="C"), 2)
    S.AlwaysCooperateSpec().check_game(only_c.info())  # needs only the cooperate action
    with pytest.raises(ValueError, match="defect"):
        S.AlwaysDefectSpec().check_game(only_c.info())
    # random plays anything: uniform over the legal actions
    S.RandomPolicySpec().check_game(plain.info())
    played, _ = play(plain, [build("random", plain, ["p0", "p1"], [s]) for s in range(2)], 200, seed=2)
    assert 60 < played[0].count("C") < 140


def test_fixed_action():
    game = pd_game()
    ids = ["p0", "p1"]
    assert duel("fixed_action", "always_cooperate", a_params={"action": "D"})[0] == "DDDDDD"
    with pytest.raises(ValueError, match="'X' is not an action"):
        S.FixedActionSpec(action="X").check_game(game.info())
    with pytest.raises(Exception):
        S.FixedActionSpec()  # the action is required


# ----- fakes: the game-specific rules with hand-computed numbers --------------------------
def fake_view(seat: int, legal: list[int], summary: dict, n_actions: int, *, agent=None, round_=0, inbox=()):
    mask = np.zeros(n_actions, dtype=np.int8)
    mask[legal] = 1
    return AgentView(
        agent=agent or f"p{seat}",
        seat=seat,
        observation=np.zeros(1, dtype=np.float32),
        action_mask=mask,
        action_names=tuple(f"a{i}" for i in range(n_actions)),
        round=round_,
        inbox=tuple(inbox),
        summary=summary,
    )


def make(cls, spec, game, n):
    ids = [f"p{i}" for i in range(n)]
    return cls(spec, game, [AgentSetup(a, i) for i, a in enumerate(ids)], ids)


def fake_info(kind: str, n: int, n_actions: int, **constants) -> GameInfo:
    """A game described only by what a policy may know (no rule engine behind it)."""
    names = tuple(f"a{i}" for i in range(n_actions))
    return GameInfo(kind=kind, n_agents=n, num_actions=n_actions, obs_dim=1, state_dim=1, action_names=(names,) * n,
                    rules=("",) * n, capabilities=Capabilities(), constants=constants)


def fake_commons(n=3):
    return fake_info("commons", n, 11, amounts=tuple(np.arange(11.0)), capacity=100.0)


@pytest.mark.parametrize("stock, expected", [(60.0, 3), (80.0, 10), (50.0, 0), (20.0, 0), (100.0, 10), (59.0, 3)])
def test_sustainable_harvester(stock, expected):
    # share = max(0, stock - 50) / 3: 60 -> 3.33 -> 3; 80 -> 10; 100 -> 16.7 -> capped at 10; 59 -> 3
    game = fake_commons()
    policy = make(S.SustainableHarvester, S.SustainableHarvesterSpec(), game, 3)
    view = fake_view(1, list(range(11)), {"stock": stock, "collapsed": False, "last_harvests": None}, 11)
    assert policy.act([view])[0].action == expected


def test_fixed_quota():
    game = fake_commons()
    for amount, expected in [(3.2, 3), (3.7, 4), (99.0, 10), (0.0, 0)]:
        policy = make(S.FixedQuota, S.FixedQuotaSpec(amount=amount), game, 3)
        assert policy.act([fake_view(0, list(range(11)), {"stock": 5.0}, 11)])[0].action == expected
    with pytest.raises(ValueError, match="needs a game that offers amounts and capacity"):
        S.FixedQuotaSpec(amount=1).check_game(pd_game().info())


def fake_public_goods(n=4):
    # amounts 0, 2.5, 5, 7.5, 10
    return fake_info("public_goods", n, 5, amounts=tuple(np.linspace(0, 10, 5)), endowment=10.0, punish_nobody=0)


def test_conditional_cooperator_contributions():
    game = fake_public_goods()
    contribute = list(range(5))
    cc = make(S.ConditionalCooperator, S.ConditionalCooperatorSpec(), game, 4)
    first = {"phase": "contribute", "last_contributions": None}
    assert cc.act([fake_view(0, contribute, first, 5)])[0].action == 4  # initial 1.0 -> 10
    half = make(S.ConditionalCooperator, S.ConditionalCooperatorSpec(initial=0.4), game, 4)
    assert half.act([fake_view(0, contribute, first, 5)])[0].action == 2  # 4 -> nearest 5
    # others gave 10, 0, 5 -> mean 5 -> level 2; own contribution (0) is not counted
    later = {"phase": "contribute", "last_contributions": [0.0, 10.0, 0.0, 5.0]}
    assert cc.act([fake_view(0, contribute, later, 5)])[0].action == 2
    # others 2.5, 2.5, 0 -> mean 1.67 -> nearest 2.5 (level 1)
    low = {"phase": "contribute", "last_contributions": [10.0, 2.5, 2.5, 0.0]}
    assert cc.act([fake_view(0, contribute, low, 5)])[0].action == 1


def test_conditional_cooperator_and_free_rider_punish_steps():
    game = fake_public_goods()
    punish_legal = [0, 1, 3, 4]  # seat 1 cannot punish itself (action 2)
    step = {"phase": "punish", "last_contributions": [10.0, 10.0, 0.0, 7.5]}  # mean 6.875
    assert make(S.ConditionalCooperator, S.ConditionalCooperatorSpec(), game, 4).act(
        [fake_view(1, punish_legal, step, 5)]
    )[0].action == 0
    punisher = make(S.ConditionalCooperator, S.ConditionalCooperatorSpec(punish_free_riders=True), game, 4)
    assert punisher.act([fake_view(1, punish_legal, step, 5)])[0].action == 3  # punish seat 2
    fair = {"phase": "punish", "last_contributions": [10.0, 10.0, 5.0, 7.5]}  # 5 >= 0.5 * 8.125
    assert punisher.act([fake_view(1, punish_legal, fair, 5)])[0].action == 0
    rider = make(S.FreeRider, S.FreeRiderSpec(), game, 4)
    assert rider.act([fake_view(1, punish_legal, step, 5)])[0].action == 0
    assert rider.act([fake_view(1, list(range(5)), {"phase": "contribute", "last_contributions": None}, 5)])[0].action == 0


def fake_bargaining(units=10):
    return fake_info("bargaining", 2, 4 + units, wait=0, accept=1, reject=2, offer0=3, units=units)


OFFERS = [3 + j for j in range(11)]


@pytest.mark.parametrize(
    "name, params, legal, offer, expected",
    [
        ("fair_bargainer", {}, [0], None, 0),  # idle: wait
        ("fair_bargainer", {}, OFFERS, None, 3 + 5),  # opens with half
        ("fair_bargainer", {}, [1] + OFFERS, 5, 1),  # 5 >= 0.5 * 10: accept
        ("fair_bargainer", {}, [1] + OFFERS, 4, 3 + 5),  # too little: counter with half
        ("fair_bargainer", {}, [1, 2], 4, 2),  # deadline: reject
        ("fair_bargainer", {"threshold": 0.3}, [1, 2], 3, 1),
        ("greedy_bargainer", {}, OFFERS, None, 3 + 1),  # offers 1
        ("greedy_bargainer", {}, [1] + OFFERS, 5, 3 + 1),  # 5 < ceil(6): counter
        ("greedy_bargainer", {}, [1] + OFFERS, 6, 1),
        ("greedy_bargainer", {}, [1, 2], 5, 2),
        ("greedy_bargainer", {"offer": 3, "accept_at_least": 4}, [1] + OFFERS, 4, 1),
        ("greedy_bargainer", {"offer": 3, "accept_at_least": 4}, OFFERS, None, 3 + 3),
    ],
)
def test_bargainers(name, params, legal, offer, expected):
    game = fake_bargaining()
    spec = registry.policy_spec_model(name)(type=name, **params)
    policy = make(registry.policy_class(name), spec, game, 2)
    summary = {"offers_made": 0 if offer is None else 1, "mover": 0, "offer": offer, "agreed": False, "shares": None}
    assert policy.act([fake_view(0, legal, summary, 14)])[0].action == expected


def test_fair_bargainer_odd_units_rounds_up_and_greedy_checks_units():
    game = fake_bargaining(units=5)
    fair = make(S.FairBargainer, S.FairBargainerSpec(), game, 2)
    assert fair.act([fake_view(0, [3 + j for j in range(6)], {"offer": None}, 9)])[0].action == 3 + 3
    with pytest.raises(ValueError, match="more than the 5 units"):
        S.GreedyBargainerSpec(offer=6).check_game(game)


def fake_signalling(n=3, vocabulary=("blip", "blop", "blup", "blap")):
    return fake_info("signalling", n, 5, wait=0, speaker=0, targets=("red", "green", "blue"), vocabulary=vocabulary)


def test_honest_speaker_and_literal_listener():
    game = fake_signalling()
    speaker = make(S.HonestSpeaker, S.HonestSpeakerSpec(), game, 3)
    signal = {"phase": "signal", "target": "blue", "signal": None, "last_success": None}
    assert speaker.act([fake_view(0, [1, 2, 3, 4], signal, 5)])[0].action == 3  # "say blup"
    assert speaker.act([fake_view(0, [0], {**signal, "phase": "pick"}, 5)])[0].action == 0

    listener = make(S.LiteralListener, S.LiteralListenerSpec(), game, 3)
    pick = {"phase": "pick", "target": "red", "signal": "blop", "last_success": None}  # target must be ignored
    assert listener.act([fake_view(1, [1, 2, 3], pick, 5)])[0].action == 2  # blop -> green
    assert listener.act([fake_view(1, [0], {**pick, "phase": "signal"}, 5)])[0].action == 0
    said = [SimpleNamespace(text="It's the BLUE one!")]
    assert listener.act([fake_view(1, [1, 2, 3], pick, 5, inbox=said)])[0].action == 3  # words beat the signal
    vague = [SimpleNamespace(text="blue"), SimpleNamespace(text="red or green?")]
    assert listener.act([fake_view(1, [1, 2, 3], pick, 5, inbox=vague)])[0].action == 3  # latest clear one
    none = [SimpleNamespace(text="bluest reddish")]
    assert listener.act([fake_view(1, [1, 2, 3], pick, 5, inbox=none)])[0].action == 2  # no whole word: signal
    # no word known: a random legal target, the same for the same seed
    unknown = {**pick, "signal": "blap"}
    picks = []
    for seed in (0, 0):
        listener.reset(seed)
        picks.append([listener.act([fake_view(1, [1, 2, 3], unknown, 5, round_=r)])[0].action for r in range(30)])
    assert picks[0] == picks[1] and set(picks[0]) == {1, 2, 3}
    # the honest speaker placed in a listener's seat picks at random, never WAIT
    assert {speaker.act([fake_view(2, [1, 2, 3], pick, 5, round_=r)])[0].action for r in range(30)} == {1, 2, 3}


def test_honest_speaker_needs_enough_words():
    game = fake_signalling(vocabulary=("blip", "blop"))
    with pytest.raises(ValueError, match="2 words, 3 targets"):
        S.HonestSpeakerSpec().check_game(game)
    with pytest.raises(ValueError, match="needs a game that offers speaker and targets and vocabulary and wait"):
        S.LiteralListenerSpec().check_game(pd_game().info())


def test_always_legal_on_masked_choices():
    # TFT on a view whose mask forbids C (never happens in a PD, but the fallback is general)
    game = pd_game()
    tft = build("tit_for_tat", game, ["p0", "p1"], [0])
    view = fake_view(0, [1], {}, 2)
    assert tft.act([view])[0].action == 1


# ----- the real games, where their modules exist ---------------------------------------------
def test_real_public_goods():
    pg = pytest.importorskip("mas.games.public_goods")
    game = pg.PublicGoodsGame(pg.PublicGoodsConfig(endowment=10, levels=5, punishment=True), 3)
    ids = ["p0", "p1", "p2"]
    policies = [
        build("conditional_cooperator", game, ids, [0], punish_free_riders=True),
        build("conditional_cooperator", game, ids, [1]),
        build("free_rider", game, ids, [2]),
    ]
    played, decisions = play(game, policies, 6)
    actions = [[d.action for d in step] for step in decisions]
    # round 1: 10, 10, 0; p0 punishes p2 (0 < 0.5 * 6.67); round 2: others' means 5, 5 -> 5
    assert actions[0] == [4, 4, 0]
    assert actions[1] == [3, 0, 0]
    assert actions[2] == [2, 2, 0]
    assert actions[3] == [3, 0, 0]  # 0 < 0.5 * 3.33
    # round 3: others' means (5+0)/2 = 2.5 -> level 1
    assert actions[4] == [1, 1, 0]


def test_real_commons():
    cm = pytest.importorskip("mas.games.commons")
    game = cm.CommonsGame(cm.CommonsConfig(capacity=100, max_harvest=10, levels=11, initial_stock=60), 3)
    ids = ["p0", "p1", "p2"]
    policies = [build("sustainable_harvester", game, ids, [s]) for s in range(2)]
    policies.append(build("fixed_quota", game, ids, [2], amount=7.4))
    _, decisions = play(game, policies, 3)
    # stock 60 -> share 3.33 -> 3; the quota is 7; remaining 60 - 13 = 47 regrows to 71.91
    assert [d.action for d in decisions[0]] == [3, 3, 7]
    # stock 71.91 -> share 7.30 -> 7
    assert [d.action for d in decisions[1]] == [7, 7, 7]


def test_real_bargaining():
    bg = pytest.importorskip("mas.games.bargaining")
    ids = ["p0", "p1"]
    game = bg.BargainingGame(bg.BargainingConfig(units=10, max_offers=4), 2)
    fair = [build("fair_bargainer", game, ids, [s]) for s in range(2)]
    played, _ = play(game, fair, 10)
    assert played == [["offer 5 of 10", "wait"], ["wait", "accept"]]
    greedy = [build("greedy_bargainer", game, ids, [s]) for s in range(2)]
    played, _ = play(game, greedy, 10)
    # both insist on 1 unit for the other until the deadline, where the responder rejects
    assert played[0] == ["offer 1 of 10", "wait", "offer 1 of 10", "wait", "reject"]
    assert played[1] == ["wait", "offer 1 of 10", "wait", "offer 1 of 10", "wait"]
    mixed = [build("greedy_bargainer", game, ids, [0]), build("fair_bargainer", game, ids, [1], threshold=0.1)]
    assert play(game, mixed, 10)[0][1] == ["wait", "accept"]


def test_real_signalling():
    sg = pytest.importorskip("mas.games.signalling")
    game = sg.SignallingGame(sg.SignallingConfig(targets=["red", "green", "blue"]), 3)
    ids = ["p0", "p1", "p2"]
    policies = [build("honest_speaker", game, ids, [0])] + [build("literal_listener", game, ids, [s]) for s in (1, 2)]
    _, decisions = play(game, policies, 20, seed=4)
    # honest speaker + literal listeners always succeed: every pick step pays the full reward
    for step in decisions[1::2]:
        assert step[0].action == 0 and step[1].action == step[2].action != 0
    # with a random speaker and NL hints naming the target, listeners follow the words
    rand = [build("random", game, ids, [0])] + policies[1:]
    hint = lambda r: [(), (SimpleNamespace(text="pick green"),), ()]
    _, decisions = play(game, rand, 10, seed=5, inbox=hint)
    assert all(step[1].action == 2 for step in decisions[1::2])
    S.HonestSpeakerSpec().check_game(game.info())
    S.FixedActionSpec(action="pick red").check_game(game.info())
    S.FixedActionSpec(action="say " + game.vocabulary[0]).check_game(game.info())


def test_random_plays_every_real_game():
    from mas.games.bargaining import BargainingConfig, BargainingGame
    from mas.games.commons import CommonsConfig, CommonsGame
    from mas.games.public_goods import PublicGoodsConfig, PublicGoodsGame
    from mas.games.signalling import SignallingConfig, SignallingGame

    games = [PublicGoodsGame(PublicGoodsConfig(), 3), CommonsGame(CommonsConfig(), 3),
             BargainingGame(BargainingConfig(), 2), SignallingGame(SignallingConfig(), 3), pd_game()]
    for game in games:
        ids = [f"p{i}" for i in range(game.n_agents)]
        policy = build("random", game, ids, list(range(game.n_agents)))
        played, _ = play(game, [policy] * game.n_agents, 12, seed=1)  # play() also checks legality
        assert all(len(seat) > 0 for seat in played), type(game).__name__
        # random, not a fixed choice: some seat plays more than one action
        assert any(len(set(seat)) > 1 for seat in played), type(game).__name__
