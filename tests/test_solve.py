"""Exact baselines (`mas solve`): equilibria, best responses and the social optimum against
hand computations, and each declared automaton against the strategy's own code."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from mas import registry
from mas.agents.base import Decision
from mas.scenario import load_scenario, parse_scenario
from mas.solve import equilibria as eq
from mas.solve.baselines import solve_scenario
from mas.solve.repeated import best_response
from tests.conftest import PD
from tests.test_cli import assert_one_line_error, mas
from tests.test_scripted import build, pd_game, play


def table_of(name: str) -> np.ndarray:
    scenario = load_scenario(name)
    return registry.make_game(scenario.game, len(scenario.agents)).stage_payoffs()


def profiles(found: list[eq.Equilibrium]) -> list[tuple[tuple[float, ...], ...]]:
    return [tuple(tuple(round(p, 6) for p in s) for s in e.strategies) for e in found]


# ----- equilibria of the stage game ---------------------------------------------------------
def test_prisoners_dilemma_has_one_equilibrium_mutual_defection():
    table = table_of("prisoners_dilemma")
    assert profiles(eq.pure_equilibria(table)) == [((0, 1), (0, 1))]
    assert eq.pure_equilibria(table)[0].payoffs == (1.0, 1.0)
    assert eq.mixed_equilibria(table) == []


def test_stag_hunt_two_pure_and_one_mixed_equilibrium():
    # Stag,Stag 4; Stag,Hare 0; Hare,* 3: Stag pays 4q, Hare 3 -> indifferent at q = 3/4
    table = table_of("stag_hunt")
    assert profiles(eq.pure_equilibria(table)) == [((1, 0), (1, 0)), ((0, 1), (0, 1))]
    (mixed,) = eq.mixed_equilibria(table)
    assert profiles([mixed]) == [((0.75, 0.25), (0.75, 0.25))]
    assert mixed.payoffs == pytest.approx((3.0, 3.0))


def test_chicken_two_asymmetric_pure_and_one_mixed_equilibrium():
    # Swerve pays 3q + 1(1-q), Straight 5q: indifferent at q = 1/3; payoff 5/3
    table = table_of("chicken")
    assert profiles(eq.pure_equilibria(table)) == [((1, 0), (0, 1)), ((0, 1), (1, 0))]
    (mixed,) = eq.mixed_equilibria(table)
    assert profiles([mixed]) == [((round(1 / 3, 6), round(2 / 3, 6)),) * 2]
    assert mixed.payoffs == pytest.approx((5 / 3, 5 / 3))


def test_matching_pennies_has_only_the_half_half_mixed_equilibrium():
    table = table_of("matching_pennies")
    assert eq.pure_equilibria(table) == []
    (mixed,) = eq.mixed_equilibria(table)
    assert profiles([mixed]) == [((0.5, 0.5), (0.5, 0.5))]
    assert mixed.payoffs == pytest.approx((0.0, 0.0))


def test_n_player_pure_equilibria_by_enumeration_volunteers_dilemma():
    # exactly one volunteer: nobody else wants to volunteer too, and the volunteer would
    # get `nobody` (0) instead of benefit - cost (2) by abstaining
    data = {**PD, "game": {"kind": "volunteers_dilemma", "benefit": 3, "cost": 1}, "agents": [{"id": f"p{i}", "policy": "random"} for i in range(3)]}
    scenario = parse_scenario(data)
    table = registry.make_game(scenario.game, 3).stage_payoffs()
    found = eq.pure_equilibria(table)
    assert [tuple(int(s[0]) for s in e.strategies) for e in found] == [(1, 0, 0), (0, 1, 0), (0, 0, 1)]  # volunteer = 1
    assert {e.payoffs for e in found} == {(3.0, 3.0, 2.0), (3.0, 2.0, 3.0), (2.0, 3.0, 3.0)}


# ----- best response in the repeated game -------------------------------------------------
def pd_best(strategy: str, rounds: int, continuation: float = 1.0, **params):
    spec = registry.policy_spec_model(strategy)(type=strategy, **params)
    automaton = registry.policy_class(strategy).automaton(spec)
    table = pd_game().stage_payoffs()
    return best_response(table[..., 0], automaton, 0, 1, rounds, continuation)


@pytest.mark.parametrize("strategy, value, plan", [
    ("tit_for_tat", 3 * 9 + 5, ((0, 9), (1, 1))),  # cooperate, defect in the last round
    ("grim_trigger", 3 * 9 + 5, ((0, 9), (1, 1))),
    ("pavlov", 3 * 9 + 5, ((0, 9), (1, 1))),  # exploiting it pays 5, 1, 5, 1: 3 a round
    ("always_cooperate", 5 * 10, ((1, 10),)),
    ("always_defect", 1 * 10, ((1, 10),)),
    ("tit_for_two_tats", 5 + 3 + 5 + 3 + 5 + 3 + 5 + 3 + 5 + 5, ((1, 1), (0, 1)) * 4 + ((1, 2),)),  # D, C forgiven; both last
    # it opens with D and then copies: cooperating at once (0) buys 8 rounds of 3, then 5
    ("suspicious_tit_for_tat", 0 + 3 * 8 + 5, ((0, 9), (1, 1))),
])
def test_best_response_over_ten_rounds_matches_hand_computation(strategy, value, plan):
    result = pd_best(strategy, 10)
    assert result.value == value
    assert result.plan == plan


def test_best_response_with_a_continuation_probability():
    # the shadow of the future: p = 0.9 -> cooperating with TFT is worth 3 / (1 - p) = 30
    # (the cap of 1000 rounds changes the last, negligible terms); p = 0.1 -> always defect:
    # 5 + sum_{t>=1} 0.1^t x 1 = 5.111...
    assert pd_best("tit_for_tat", 1000, 0.9).value == pytest.approx(30.0, abs=1e-9)
    short = pd_best("tit_for_tat", 1000, 0.1)
    assert short.value == pytest.approx(5 + 0.1 / 0.9) and short.plan == ((1, 1000),)


def test_best_response_to_a_random_strategy_is_the_better_expected_action():
    # random cooperating with p = 0.7 in the PD: defecting pays 0.7 x 5 + 0.3 x 1 = 3.8 a round
    result = pd_best("random", 4, p=0.7)
    assert result.value == pytest.approx(4 * 3.8) and result.first_action == 1 and result.plan == ()


class _Sequence:
    """Plays a fixed list of actions (one per round), as a PettingZoo user would."""

    def __init__(self, actions: list[int]) -> None:
        self.actions = actions

    def reset(self, seed: int) -> None:
        self.round = 0

    def act(self, views):
        action = self.actions[min(views[0].round, len(self.actions) - 1)]
        return [Decision(action)]


AUTOMATA = [("tit_for_tat", {}), ("grim_trigger", {}), ("pavlov", {}), ("always_cooperate", {}), ("always_defect", {}),
            ("tit_for_two_tats", {}), ("suspicious_tit_for_tat", {}), ("alternator", {}), ("generous_tit_for_tat", {"generosity": 0.0}),
            ("generous_tit_for_tat", {"generosity": 1.0}), ("joss", {"sneakiness": 0.0}), ("joss", {"sneakiness": 1.0}),
            ("random", {"p": 1.0}), ("random", {"p": 0.0}), ("defect_once", {}), ("defect_once", {"round": 0})]


@pytest.mark.parametrize("strategy, params", AUTOMATA)
@pytest.mark.parametrize("seat", [0, 1])
def test_declared_automaton_plays_as_the_strategy_does(strategy, params, seat):
    """The automaton's moves equal the strategy's own moves in the engine, against random
    partners' moves (so the exact baselines solve the strategy that is really played)."""
    game = pd_game()
    ids = ["p0", "p1"]
    spec = registry.policy_spec_model(strategy)(type=strategy, **params)
    automaton = registry.policy_class(strategy).automaton(spec)
    rng = np.random.default_rng(7)
    for _ in range(5):
        partner = [int(a) for a in rng.integers(0, 2, 12)]
        policies = [None, None]
        policies[seat] = build(strategy, game, ids, [seat], **params)
        policies[1 - seat] = _Sequence(partner)
        played, _ = play(game, policies, len(partner))
        state, expected = automaton.start, []
        for t, their in enumerate(partner):
            own = 0 if automaton.cooperate[state] == 1.0 else 1
            expected.append("CD"[own])
            state = automaton.next[state][own][their]
        assert "".join(played[seat]) == "".join(expected)


@pytest.mark.parametrize("strategy", ["tit_for_tat", "grim_trigger", "pavlov", "tit_for_two_tats", "suspicious_tit_for_tat", "alternator"])
@pytest.mark.parametrize("seat", [0, 1])
def test_best_response_plan_earns_its_value_against_the_real_strategy(strategy, seat):
    scenario = load_scenario("chicken")  # an asymmetric-looking table: Swerve 3/1, Straight 5/0
    game = registry.make_game(scenario.game, 2)
    table = game.stage_payoffs()
    responder = 1 - seat
    payoff = table[..., 0] if responder == 0 else table[..., 1].T
    spec = registry.policy_spec_model(strategy)(type=strategy)
    result = best_response(payoff, registry.policy_class(strategy).automaton(spec), 0, 1, 9)
    plan = [a for a, n in result.plan for _ in range(n)]
    ids = ["p0", "p1"]
    policies = [None, None]
    policies[seat] = build(strategy, game, ids, [seat])
    policies[responder] = _Sequence(plan)
    played, _ = play(game, policies, 9)
    names = game.action_names(0)
    earned = sum(table[names.index(a), names.index(b), responder] for a, b in zip(*played))
    assert earned == pytest.approx(result.value)
    # and no single-round deviation from the plan earns more (a cheap optimality check)
    automaton = registry.policy_class(strategy).automaton(spec)
    assert all(result.value >= _value_of(payoff, automaton, plan[:t] + [1 - plan[t]] + plan[t + 1:]) for t in range(9))


def _value_of(payoff, automaton, actions):
    """What the responder's `actions` earn against a deterministic automaton."""
    state, total = automaton.start, 0.0
    for a in actions:
        b = 0 if automaton.cooperate[state] == 1.0 else 1
        total += payoff[a, b]
        state = automaton.next[state][b][a]
    return total


# ----- a scenario's baselines and the CLI ---------------------------------------------------
def test_scenario_baselines_name_the_best_response_to_its_tit_for_tat():
    result = solve_scenario(load_scenario("pd_iql_vs_tft"))  # 20 rounds against tit-for-tat
    (br,) = result["best_responses"]
    assert br["responder"] == "learner" and br["value"] == 3 * 19 + 5 and br["plan"] == "C x19, D x1"
    assert result["social_optimum"] == {"per_round": 6.0, "per_episode": 120.0}


def test_scenario_without_strategies_gets_best_responses_to_the_classic_ones():
    data = {**PD, "rounds": 10, "agents": [{"id": "a", "policy": "random"}, {"id": "b", "policy": "tester"}]}
    result = solve_scenario(parse_scenario(data))
    # tester declares no automaton, random does: only the seat playing random is solved
    assert [br["against"] for br in result["best_responses"]] == ["a (random)"]
    data["agents"] = [{"id": "a", "policy": "tester"}, {"id": "b", "policy": "tester"}]
    result = solve_scenario(parse_scenario(data))
    assert [br["against"] for br in result["best_responses"]] == ["tit_for_tat", "grim_trigger", "always_cooperate", "always_defect", "pavlov"]
    assert [br["value"] for br in result["best_responses"]] == [32.0, 32.0, 50.0, 10.0, 32.0]


def test_expected_social_optimum_with_a_continuation_probability():
    data = {**PD, "rounds": {"continuation": 0.5, "max": 3}}
    result = solve_scenario(parse_scenario(data))
    assert result["rounds"]["expected"] == pytest.approx(1 + 0.5 + 0.25)
    assert result["social_optimum"]["per_episode"] == pytest.approx(6 * 1.75)


def test_without_nashpy_mixed_equilibria_are_named_as_not_computed(monkeypatch):
    monkeypatch.setitem(sys.modules, "nashpy", None)  # as if not installed: import fails
    result = solve_scenario(load_scenario("matching_pennies"))
    assert result["stage_game"]["mixed"] is None
    assert any("pip install 'mas-sim[solve]'" in n for n in result["notes"])


def test_cli_solve_text_and_json():
    text = mas("solve", "pd_iql_vs_tft")
    assert text.returncode == 0, text.stderr
    assert "learner against tft (tit_for_tat): 62" in text.stdout and "C x19, D x1" in text.stdout
    assert "pure  (D, D): 1, 1" in text.stdout
    data = json.loads(mas("solve", "matching_pennies", "--json").stdout)
    assert data["stage_game"]["pure"] == [] and data["stage_game"]["mixed"][0]["strategies"] == [[0.5, 0.5], [0.5, 0.5]]


def test_cli_solve_bad_input_is_one_line(tmp_path):
    assert_one_line_error(mas("solve", str(tmp_path / "missing.yaml")), "missing.yaml")


def test_the_one_agent_maze_is_solved_by_value_iteration():
    result = solve_scenario(load_scenario("grid_maze"))
    maze = result["maze"]
    assert maze["shortest_path"] == 10 and maze["optimal_actions"] == ["down"] * 4 + ["right"] * 6
    assert maze["gamma"] == 0.95  # the scenario's learner's discount
    assert result["stage_game"] is None and result["best_responses"] == []
